"""The table of ``allocsnap compare-kernels``: two kernels over a fleet, per group."""

from __future__ import annotations

from allocsnap import analysis
from allocsnap.present.render import Column, Report


def compare_kernels_report(result: analysis.KernelsResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap compare-kernels``."""
    r = result
    header = [
        f"A: {r.kernel_a} on {len(r.hosts_a):,} hosts",
        f"B: {r.kernel_b} on {len(r.hosts_b):,} hosts",
    ]
    if r.matching is not None:
        header.append(f"paired: {r.matching.summary()}")
    header.append(
        f"tested: Mann-Whitney U over hosts, Benjamini-Hochberg q <= {r.alpha:g}: "
        f"{r.flagged('more'):,} more on B, {r.flagged('less'):,} less"
    )
    columns = [
        Column("delta_bytes", "Δmedian", "delta_size"),
        Column("median_a", "median A", "size"),
        Column("median_b", "median B", "size"),
        Column("effect", "effect", "number"),
        Column("p_value", "p", "probability"),
        Column("q_value", "q", "probability"),
        Column("verdict", "verdict"),
        Column("status", "status"),
        Column("key", "call site" if grouping.by == "tag" else grouping.by),
    ]
    footer = []
    if r.groups > r.rows.num_rows:
        footer.append(f"{r.groups - r.rows.num_rows} more groups (use --top 0 to show all)")
    info = {
        "kernel_a": r.kernel_a,
        "kernel_b": r.kernel_b,
        "hosts_a": list(r.hosts_a),
        "hosts_b": list(r.hosts_b),
        "by": grouping.by,
        "alpha": r.alpha,
        "groups": r.groups,
        "more": r.flagged("more"),
        "less": r.flagged("less"),
    }
    return Report(rows=r.rows, columns=columns, header=header, footer=footer, info=info)
