"""The tables of the snapshot commands (diff, show, ls), of ``allocsnap sql`` and of ``merge``:
analysis results as ``render.Report``s with titles, column kinds and header lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from allocsnap import analysis
from allocsnap.model import SnapshotMeta
from allocsnap.present import snapshot_lines as lines
from allocsnap.present.render import Column, Report, plural
from allocsnap.present.snapshot_lines import describe as describe
from allocsnap.units import format_size

if TYPE_CHECKING:
    from allocsnap.store import merge


def diff_report(result: analysis.DiffResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap diff``."""
    b, a = result.before_totals, result.after_totals
    crossing = result.crossing
    report = lines.diff_report(
        result.before,
        result.after,
        ((b.bytes, b.calls), (a.bytes, a.calls)),
        result.rows,
        result.changed,
        result.warnings,
        grouping.by,
        per_hour=bool(pa.compute.sum(result.rows["bytes_per_hour"].is_valid()).as_py()),
        moved="moved_from" in result.rows.column_names,
        crossing=crossing.header() if crossing is not None else (),
    )
    if crossing is not None:
        report.info["kernels"] = kernels_info(crossing)
    return report


def kernels_info(crossing: analysis.Crossing) -> dict[str, object]:
    """Return what a diff across kernels paired, for JSON output."""
    found: dict[str, object] = {"before": crossing.before, "after": crossing.after}
    found |= {s.value: crossing.matching.count(s) for s in analysis.SiteStatus}
    if crossing.heuristic is not None:
        h = crossing.heuristic
        found["heuristic"] = {
            "agreeing_pairs": h.true_pairs,
            "heuristic_pairs": h.heuristic_pairs,
            "exact_pairs": h.exact_pairs,
        }
    return found


def show_report(result: analysis.ShowResult, grouping: analysis.Grouping) -> Report:
    """Return the report of ``allocsnap show``: totals first, then the groups."""
    t = result.totals
    return lines.show_report(
        result.snapshot, (t.rows, t.bytes, t.calls), result.rows, result.groups, grouping.by
    )


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
    return Report(rows=rows, columns=lines.LS_COLUMNS, info={"snapshots": len(metas)})


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
        f"{'dry run: ' if summary.dry_run else ''}{plural(summary.sources, 'store')} into "
        f"{summary.dest}: {verb} {summary.snapshots_new:,} snapshots of "
        f"{plural(new_hosts, 'host')} ({summary.snapshots_present:,} already there), "
        f"{plural(summary.files, 'file')}, {format_size(summary.bytes)}"
    ]
    if summary.tag_files:
        header.append(f"tags: {plural(summary.tag_files, 'new tag file')}")
    if summary.rewritten:
        header.append(
            f"{plural(summary.rewritten, 'source file')} partly there already: "
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
