"""The tables of the window analyses (leaks, growth, top, outliers, history): rows, columns, the
window's header and warnings, and sparklines."""

from __future__ import annotations

import pyarrow as pa

from allocsnap import analysis
from allocsnap.present.render import Column, Report, plural
from allocsnap.units import format_size

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int], width: int = 40) -> str:
    """Return ``values`` as at most ``width`` block characters, lowest to highest of the row."""
    if not values:
        return ""
    if len(values) > width:  # mean of equal slices, so a long series keeps its shape
        cut = [round(i * len(values) / width) for i in range(width + 1)]
        values = [round(sum(values[a:b]) / (b - a)) for a, b in zip(cut, cut[1:], strict=False)]
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[0] * len(values)
    scale = (len(SPARKS) - 1) / (high - low)
    return "".join(SPARKS[round((v - low) * scale)] for v in values)


def window_header(epochs: analysis.Epochs) -> list[str]:
    """Return the lines that say what a window covers and what a reader must be told."""
    e = epochs
    hosts = window_hosts(e)
    lines = [
        f"window: {analysis.taken_at_text(e.first_at)} -> {analysis.taken_at_text(e.last_at)}, "
        f"{e.snapshots:,} snapshots in {plural(e.counting, 'epoch')}"
        + (f" of {len(hosts):,} hosts" if len(hosts) > 1 else "")
    ]
    return lines + [f"warning: {w}" for w in e.warnings]


def window_hosts(epochs: analysis.Epochs) -> list[str]:
    """Return the hosts with counting snapshots in a window, sorted."""
    counting = epochs.rows.filter(pa.compute.greater(epochs.rows["snapshots"], 0))
    return sorted(set(counting["host"].to_pylist()))


def epochs_info(epochs: analysis.Epochs) -> dict[str, object]:
    """Return a window's epochs for JSON output."""
    return {
        "window": {
            "first_at": epochs.first_at,
            "last_at": epochs.last_at,
            "snapshots": epochs.snapshots,
            "hosts": window_hosts(epochs),
        },
        "epochs": epochs.rows.to_pylist(),
        "warnings": list(epochs.warnings),
    }


def _scaled_floor(epochs: analysis.Epochs, s: analysis.LeakSettings) -> str:
    """Return what the growth floor is in the window's epochs too short for ``min_growth`` at
    ``min_rate`` (queries/leaks.sql lowers it to the rate floor times their hours), or ''."""
    full_hours = s.min_growth / s.min_rate if s.min_rate > 0 else float("inf")
    spans = [
        (r["last_at"] - r["first_at"]).total_seconds() / 3600
        for r in epochs.rows.select(["first_at", "last_at"]).to_pylist()
        if r["first_at"] is not None and r["last_at"] is not None
    ]
    if not any(hours < full_hours for hours in spans):
        return ""
    lowest = format_size(s.min_rate * min(spans))
    return f" (less in an epoch under {full_hours:.3g} h: the rate × its hours, {lowest} here)"


def leaks_report(result: analysis.LeaksResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap leaks``: candidates ranked by slope, with reasons."""
    s = result.settings
    header = window_header(result.epochs)
    header.append(
        f"floors: {format_size(s.min_rate)}/hour and {format_size(s.min_growth)} of growth"
        f"{_scaled_floor(result.epochs, s)}; "
        f"Mann–Kendall confidence {100 * s.min_confidence:g}%, "
        + (
            f"up to {s.max_points} points per epoch"
            if s.max_points
            else "every point of each epoch"
        )
    )
    if result.fleet:
        return _fleet_report(result, grouping, header)
    rows = result.rows.append_column(
        "confidence_pct", pa.compute.multiply(result.rows["confidence"], 100.0)
    )
    columns = [
        Column("bytes_per_hour", "rate/hour", "delta_size"),
        Column("growth_bytes", "growth", "delta_size"),
        Column("first_bytes", "first", "size"),
        Column("last_bytes", "last", "size"),
        Column("confidence_pct", "conf", "pct"),
        Column("epoch", "epoch"),
        Column("key", "call site" if grouping.by == "tag" else grouping.by),
        Column("reason", "why"),
    ]
    hosts = window_hosts(result.epochs)
    if len(hosts) > 1 and grouping.by != "host":
        columns.insert(5, Column("hosts", "hosts", "count"))
        header.append(
            f"fleet: {len(hosts):,} hosts in the window; 'hosts' counts those where the "
            f"{'call site' if grouping.by == 'tag' else grouping.by} leaks (--fleet: one row each)"
        )
    footer = []
    if result.found > result.rows.num_rows:
        footer.append(f"{result.found - result.rows.num_rows} more leaks (use --top 0 to show all)")
    if result.found == 0:
        footer.append("no leaks found")
    verdicts = pa.compute.value_counts(result.others["verdict"]).to_pylist()
    if verdicts:
        counts = ", ".join(
            f"{v['counts']} {v['values']}"
            for v in sorted(verdicts, key=lambda v: (-v["counts"], v["values"]))
        )
        footer.append(f"grew past the floors but not judged leaks: {counts}")
    short = result.others.filter(pa.compute.equal(result.others["verdict"], "too few points"))
    if short.num_rows:
        footer.append(
            f"{plural(short.num_rows, 'series')} grew but with fewer than {s.min_points} "
            "points a trend test cannot be confident: see 'allocsnap top' and 'allocsnap growth'"
        )
    info = {
        **epochs_info(result.epochs),
        "by": grouping.by,
        "settings": vars(s),
        "found": result.found,
        "not_leaks": result.others.to_pylist(),
    }
    return Report(rows=rows, columns=columns, header=header, footer=footer, info=info)


def _fleet_report(
    result: analysis.LeaksResult, grouping: analysis.Grouping, header: list[str]
) -> Report:
    """Return ``leaks --fleet``: one row per key, the hosts it leaks on."""
    columns = [
        Column("hosts", "hosts", "count"),
        Column("of_hosts", "of", "count"),
        Column("median_bytes_per_hour", "median/hour", "delta_size"),
        Column("max_bytes_per_hour", "max/hour", "delta_size"),
        Column("growth_bytes", "growth", "delta_size"),
        Column("key", "call site" if grouping.by == "tag" else grouping.by),
        Column("leaking_hosts", "leaking on", "list"),
    ]
    footer = []
    if result.found > result.rows.num_rows:
        footer.append(
            f"{result.found - result.rows.num_rows} more leak (use --top 0 to show all)"
            if result.found - result.rows.num_rows == 1
            else f"{result.found - result.rows.num_rows} more leaks (use --top 0 to show all)"
        )
    if result.found == 0:
        footer.append("no leaks found")
    info = {
        **epochs_info(result.epochs),
        "by": grouping.by,
        "settings": vars(result.settings),
        "found": result.found,
    }
    return Report(rows=result.rows, columns=columns, header=header, footer=footer, info=info)


def growth_report(result: analysis.WindowResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap growth``: median against median, as rates."""
    header = window_header(result.epochs)
    if result.rows.num_rows:
        first = result.rows.slice(0, 1).to_pylist()[0]
        header.append(
            f"medians of A (around {analysis.taken_at_text(first['median_at_a'])}) against B "
            f"(around {analysis.taken_at_text(first['median_at_b'])})"
        )
    columns = [
        Column("bytes_per_hour", "rate/hour", "delta_size"),
        Column("delta_bytes", "Δmedian", "delta_size"),
        Column("delta_pct", "Δ%", "delta_pct"),
        Column("median_a", "median A", "size"),
        Column("median_b", "median B", "size"),
        Column("key", "call site" if grouping.by == "tag" else grouping.by),
    ]
    if len(window_hosts(result.epochs)) > 1 and grouping.by != "host":
        columns.insert(5, Column("host", "host"))
    footer = [] if result.rows.num_rows else ["no changes"]
    info = {**epochs_info(result.epochs), "by": grouping.by}
    return Report(rows=result.rows, columns=columns, header=header, footer=footer, info=info)


def top_report(result: analysis.WindowResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap top``: the largest movers, up and down."""
    columns = [
        Column("delta_bytes", "Δbytes", "delta_size"),
        Column("bytes_per_hour", "Δ/hour", "delta_size"),
        Column("delta_pct", "Δ%", "delta_pct"),
        Column("first_bytes", "first", "size"),
        Column("last_bytes", "last", "size"),
        Column("epoch", "epoch"),
        Column("key", "call site" if grouping.by == "tag" else grouping.by),
    ]
    footer = [] if result.rows.num_rows else ["no changes"]
    info = {**epochs_info(result.epochs), "by": grouping.by}
    return Report(
        rows=result.rows,
        columns=columns,
        header=window_header(result.epochs),
        footer=footer,
        info=info,
    )


def outliers_report(result: analysis.OutliersResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap outliers``: per group, the hosts that stand out."""
    s = result.settings
    header = window_header(result.epochs)
    header.append(
        f"scores: distance from the hosts' median in units of 1.4826 x MAD, at least "
        f"{format_size(s.min_gap)}/{s.min_score:g} (bytes) and {format_size(s.min_rate)}/hour/"
        f"{s.min_score:g} (growth); an outlier scores {s.min_score:g}+; groups on "
        f"{s.min_hosts}+ hosts"
    )
    columns = [
        Column("score", "score", "number"),
        Column("bytes", "bytes", "size"),
        Column("median_bytes", "median", "size"),
        Column("bytes_score", "z", "number"),
        Column("bytes_per_hour", "rate/hour", "delta_size"),
        Column("median_bytes_per_hour", "median", "delta_size"),
        Column("rate_score", "z", "number"),
        Column("hosts", "hosts", "count"),
        Column("host", "host"),
        Column("key", "call site" if grouping.by == "tag" else grouping.by),
    ]
    rows = result.rows
    for name in ("score", "bytes_score", "rate_score"):
        rounded = pa.compute.add(pa.compute.round(rows[name], 1), 0.0)  # no "-0.0"
        rows = rows.set_column(rows.schema.get_field_index(name), name, rounded)
    footer = []
    shown = int(pa.compute.sum(rows["outlier"].cast(pa.int64())).as_py() or 0)
    if result.found > shown:
        footer.append(f"{result.found - shown} more outliers (use --top 0 to show all)")
    if result.found == 0:
        footer.append("no outliers")
    info = {
        **epochs_info(result.epochs),
        "by": grouping.by,
        "settings": vars(s),
        "found": result.found,
    }
    return Report(rows=rows, columns=columns, header=header, footer=footer, info=info)


def history_report(
    result: analysis.WindowResult, grouping: analysis.Grouping, *, points: bool
) -> Report:
    """Return the report of ``allocsnap history``: the raw points when ``points`` (CSV, JSON),
    else one row per group and epoch with a sparkline."""
    info = {**epochs_info(result.epochs), "by": grouping.by}
    key_title = "call site" if grouping.by == "tag" else grouping.by
    if points:
        columns = [
            Column("taken_at", "taken at (UTC)", "time"),
            Column("bytes", "bytes", "size"),
            Column("calls", "calls", "count"),
            Column("epoch", "epoch"),
            Column("key", key_title),
        ]
        return Report(rows=result.rows, columns=columns, info=info)
    series: dict[tuple[str, str], list[int]] = {}
    for key, epoch, value in zip(
        result.rows["key"].to_pylist(),
        result.rows["epoch"].to_pylist(),
        result.rows["bytes"].to_pylist(),
        strict=True,
    ):
        series.setdefault((key, epoch), []).append(value)
    rows = pa.Table.from_pylist(
        [
            {
                "key": key,
                "epoch": epoch,
                "points": len(values),
                "first_bytes": values[0],
                "last_bytes": values[-1],
                "min_bytes": min(values),
                "max_bytes": max(values),
                "sparkline": sparkline(values),
            }
            for (key, epoch), values in series.items()
        ]
    )
    columns = [
        Column("first_bytes", "first", "size"),
        Column("last_bytes", "last", "size"),
        Column("min_bytes", "min", "size"),
        Column("max_bytes", "max", "size"),
        Column("points", "points", "count"),
        Column("sparkline", "series"),
        Column("epoch", "epoch"),
        Column("key", key_title),
    ]
    return Report(rows=rows, columns=columns, header=window_header(result.epochs), info=info)
