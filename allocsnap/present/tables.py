"""Turn analysis results into ``render.Report``s: titles, column kinds and header lines."""

from __future__ import annotations

import pyarrow as pa

from allocsnap import analysis
from allocsnap.model import SnapshotMeta
from allocsnap.present.render import Column, Report
from allocsnap.store import merge
from allocsnap.units import format_size


def describe(meta: SnapshotMeta) -> str:
    """Return one line naming a snapshot: id, name, time, host, kernel, source."""
    name = f" '{meta.name}'" if meta.name else ""
    where = meta.origin or meta.source
    kernel = meta.kernel or "kernel unknown"
    return (
        f"{meta.snapshot_id}{name}  {analysis.taken_at_text(meta.taken_at)}  {meta.host}  "
        f"{kernel}  ({where}, format {meta.format})"
    )


def snapshot_info(meta: SnapshotMeta) -> dict[str, object]:
    """Return a snapshot's metadata for JSON output."""
    return meta.to_row()


def diff_report(result: analysis.DiffResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap diff``."""
    b, a = result.before_totals, result.after_totals
    net = a.bytes - b.bytes
    header = [
        f"before: {describe(result.before)}",
        f"after:  {describe(result.after)}",
        f"total:  {format_size(b.bytes)} -> {format_size(a.bytes)}  "
        f"({'+' if net > 0 else ''}{format_size(net)}, {a.calls - b.calls:+,} calls)",
    ]
    header += [f"warning: {w}" for w in result.warnings]
    key_title = "call site" if grouping.by == "tag" else grouping.by
    columns = [
        Column("delta_bytes", "Δbytes", "delta_size"),
        Column("delta_pct", "Δ%", "delta_pct"),
        Column("bytes_before", "before", "size"),
        Column("bytes_after", "after", "size"),
        Column("delta_calls", "Δcalls", "delta_count"),
        Column("calls_after", "calls", "count"),
        Column("share_pct", "share", "pct"),
    ]
    if pa.compute.sum(result.rows["bytes_per_hour"].is_valid()).as_py():
        columns.insert(1, Column("bytes_per_hour", "Δ/hour", "delta_size"))
    columns.append(Column("key", key_title))
    shown = result.rows.num_rows
    footer = []
    if result.changed > shown:
        footer.append(f"{result.changed - shown} more changed (use --top 0 to show all)")
    if result.changed == 0:
        footer.append("no changes")
    info = {
        "before": snapshot_info(result.before),
        "after": snapshot_info(result.after),
        "totals": {
            "bytes_before": b.bytes,
            "bytes_after": a.bytes,
            "delta_bytes": net,
            "calls_before": b.calls,
            "calls_after": a.calls,
        },
        "warnings": list(result.warnings),
        "by": grouping.by,
        "changed": result.changed,
    }
    return Report(rows=result.rows, columns=columns, header=header, footer=footer, info=info)


def show_report(result: analysis.ShowResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap show``: totals first, then the groups."""
    t = result.totals
    header = [
        f"snapshot: {describe(result.snapshot)}",
        f"total:    {format_size(t.bytes)} in {t.calls:,} calls, {t.rows:,} rows, "
        f"{result.groups:,} {grouping.by} groups",
    ]
    header += [f"note: {n}" for n in result.snapshot.notes]
    columns = [
        Column("bytes", "bytes", "size"),
        Column("calls", "calls", "count"),
        Column("share_pct", "share", "pct"),
        Column("key", "call site" if grouping.by == "tag" else grouping.by),
    ]
    if grouping.by != "tag":
        columns.insert(2, Column("rows", "rows", "count"))
    footer = []
    if result.groups > result.rows.num_rows:
        footer.append(
            f"{result.groups - result.rows.num_rows} more groups (use --top 0 to show all)"
        )
    info = {
        "snapshot": snapshot_info(result.snapshot),
        "totals": {"rows": t.rows, "bytes": t.bytes, "calls": t.calls},
        "by": grouping.by,
        "groups": result.groups,
    }
    return Report(rows=result.rows, columns=columns, header=header, footer=footer, info=info)


def ls_report(metas: list[SnapshotMeta]) -> Report:
    """Return the report of ``allocsnap ls``: one row per snapshot."""
    rows = pa.Table.from_pylist(
        [
            {
                "snapshot_id": m.snapshot_id,
                "name": m.name,
                "taken_at": m.taken_at,
                "host": m.host,
                "boot_id": m.boot_id,
                "kernel": m.kernel,
                "source": m.source,
                "profiling": m.profiling,
                "labels": ", ".join(f"{k}={v}" for k, v in sorted(m.labels.items())),
                "rows": m.rows,
                "total_bytes": m.total_bytes,
                "total_calls": m.total_calls,
            }
            for m in metas
        ]
    )
    columns = [
        Column("snapshot_id", "id"),
        Column("name", "name"),
        Column("taken_at", "taken at (UTC)", "time"),
        Column("host", "host"),
        Column("boot_id", "boot", "short_id"),
        Column("kernel", "kernel"),
        Column("rows", "rows", "count"),
        Column("total_bytes", "bytes", "size"),
        Column("total_calls", "calls", "count"),
    ]
    return Report(rows=rows, columns=columns, info={"snapshots": len(metas)})


# -- window analyses ---------------------------------------------------------------------------

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
        f"{e.snapshots:,} snapshots in {_plural(_counting(e), 'epoch')}"
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


def leaks_report(result: analysis.LeaksResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap leaks``: candidates ranked by slope, with reasons."""
    s = result.settings
    header = window_header(result.epochs)
    header.append(
        f"floors: {format_size(s.min_rate)}/hour and {format_size(s.min_growth)} of growth; "
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
            f"{_plural(short.num_rows, 'series')} grew but with fewer than {s.min_points} "
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


def _counting(epochs: analysis.Epochs) -> int:
    return sum(1 for n in epochs.rows["snapshots"].to_pylist() if n)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 or word.endswith("s") else f"{n:,} {word}s"


# -- allocsnap sql -----------------------------------------------------------------------------


def sql_report(rows: pa.Table) -> Report:
    """Return the report of ``allocsnap sql``: every column as DuckDB returned it, numbers
    right-aligned and shown as they are (their unit is unknown), anything else as text.

    Columns that share a name (``select 1, 1``) get ``_2``, ``_3`` … so that no value is lost
    in CSV or JSON; JSON also lists the columns and their DuckDB-to-Arrow types.
    """
    names: list[str] = []
    for name in rows.column_names:
        unique, n = name, 1
        while unique in names:
            n += 1
            unique = f"{name}_{n}"
        names.append(unique)
    rows = rows.rename_columns(names)
    types = list(rows.schema.types)
    for i, field in enumerate(rows.schema):
        if pa.types.is_interval(field.type):
            texts = [_interval_text(v) for v in rows.column(i).to_pylist()]
            rows = rows.set_column(i, field.name, pa.array(texts, pa.string()))
    columns = [
        Column(field.name, field.name, "number" if _is_number(field.type) else "text")
        for field in rows.schema
    ]
    info = {
        "columns": [
            {"name": name, "type": str(kind)} for name, kind in zip(names, types, strict=True)
        ]
    }
    return Report(rows=rows, columns=columns, info=info)


def _interval_text(value: pa.MonthDayNano | None) -> str | None:
    """Return an interval as DuckDB prints it: ``01:30:00``, ``2 days 00:00:01.5``."""
    if value is None:
        return None
    months, days, nanoseconds = value
    sign = "-" if nanoseconds < 0 else ""
    seconds, nanos = divmod(abs(nanoseconds), 1_000_000_000)
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    clock = f"{sign}{hours:02d}:{mins:02d}:{secs:02d}"
    if nanos:
        clock += f".{nanos:09d}".rstrip("0")
    years, months = divmod(months, 12)
    parts = [_plural(n, w) for n, w in ((years, "year"), (months, "month"), (days, "day")) if n]
    if parts and not nanoseconds:
        return " ".join(parts)
    return " ".join([*parts, clock])


def _is_number(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


# -- merge -------------------------------------------------------------------------------------


def merge_report(summary: merge.MergeSummary) -> Report:
    """Return the report of ``allocsnap merge``: one row per host, totals and what was left out."""
    hosts = sorted(summary.hosts.values(), key=lambda h: h.host)
    rows = pa.Table.from_pylist(
        [
            {
                "host": h.host,
                "snapshots_new": h.snapshots_new,
                "snapshots_present": h.snapshots_present,
                "files": h.files,
                "bytes": h.bytes,
            }
            for h in hosts
        ],
        schema=pa.schema(
            [
                ("host", pa.string()),
                ("snapshots_new", pa.int64()),
                ("snapshots_present", pa.int64()),
                ("files", pa.int64()),
                ("bytes", pa.int64()),
            ]
        ),
    )
    verb = "would copy" if summary.dry_run else "copied"
    new_hosts = sum(1 for h in hosts if h.snapshots_new)
    header = [
        f"{'dry run: ' if summary.dry_run else ''}{_plural(summary.sources, 'store')} into "
        f"{summary.dest}: {verb} {summary.snapshots_new:,} snapshots of "
        f"{_plural(new_hosts, 'host')} ({summary.snapshots_present:,} already there), "
        f"{_plural(summary.files, 'file')}, {format_size(summary.bytes)}"
    ]
    if summary.tag_files:
        header.append(f"tags: {_plural(summary.tag_files, 'new tag file')}")
    if summary.rewritten:
        header.append(
            f"{_plural(summary.rewritten, 'source file')} partly there already: "
            "only their new snapshots written"
        )
    left = [f"{n} {why}" for why, n in sorted(summary.left_out.items()) if n]
    if left:
        header.append(f"left out (not committed): {', '.join(left)}")
    header += [f"warning: {w}" for w in summary.warnings]
    columns = [
        Column("host", "host"),
        Column("snapshots_new", "new", "count"),
        Column("snapshots_present", "already there", "count"),
        Column("files", "files", "count"),
        Column("bytes", "bytes", "size"),
    ]
    info = {
        "dest": str(summary.dest),
        "dry_run": summary.dry_run,
        "sources": summary.sources,
        "snapshots_new": summary.snapshots_new,
        "snapshots_present": summary.snapshots_present,
        "files": summary.files,
        "bytes": summary.bytes,
        "tag_files": summary.tag_files,
        "rewritten": summary.rewritten,
        "left_out": dict(sorted(summary.left_out.items())),
        "warnings": summary.warnings,
    }
    return Report(rows=rows, columns=columns, header=header, info=info)
