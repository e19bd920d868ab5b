"""The reports of ``diff`` and ``show`` for dumps read by the one-shot path: the same header
lines, columns, footer and JSON fields as present/tables.py's ``diff_report`` and
``show_report``, rendered by present/render.py itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from allocsnap.oneshot.dumps import UNKNOWN_HOST, Dump
from allocsnap.oneshot.groups import Grouping
from allocsnap.present.render import Column, Report
from allocsnap.units import format_size


class Rows:
    """Rows as render.py reads a table: ``to_pylist``, ``column_names`` and ``num_rows``."""

    def __init__(self, rows: list[dict[str, object]], names: list[str]) -> None:
        self._rows = rows
        self.column_names = names
        self.num_rows = len(rows)

    def to_pylist(self) -> list[dict[str, Any]]:
        """Return the rows, one dict each, in column order."""
        return self._rows

    def as_table(self) -> Any:
        """Return these rows as ``Report`` takes a table (render reads no more of it)."""
        return self


DIFF_COLUMNS = [
    "key",
    "status",
    "bytes_before",
    "bytes_after",
    "delta_bytes",
    "calls_before",
    "calls_after",
    "delta_calls",
    "delta_pct",
    "share_pct",
    "bytes_per_hour",
]
SHOW_COLUMNS = ["key", "bytes", "calls", "rows", "share_pct"]


def taken_at_text(when: datetime) -> str:
    """analysis.taken_at_text: ``2026-11-26 14:52:03 UTC``."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(dump: Dump) -> str:
    """tables.describe for a dump: id, time, host, kernel, where from and format."""
    return (
        f"{dump.snapshot_id}  {taken_at_text(dump.taken_at)}  {UNKNOWN_HOST}  "
        f"kernel unknown  ({dump.path}, format {dump.format})"
    )


def diff_report(
    before: Dump,
    after: Dump,
    rows: list[dict[str, object]],
    changed: int,
    warnings: list[str],
    grouping: Grouping,
) -> Report:
    """Return the report ``tables.diff_report`` makes of the same diff."""
    b_bytes, a_bytes = before.total_bytes, after.total_bytes
    b_calls, a_calls = before.total_calls, after.total_calls
    net = a_bytes - b_bytes
    header = [
        f"before: {describe(before)}",
        f"after:  {describe(after)}",
        f"total:  {format_size(b_bytes)} -> {format_size(a_bytes)}  "
        f"({'+' if net > 0 else ''}{format_size(net)}, {a_calls - b_calls:+,} calls)",
    ]
    header += [f"warning: {w}" for w in warnings]
    columns = [
        Column("delta_bytes", "Δbytes", "delta_size"),
        Column("delta_pct", "Δ%", "delta_pct"),
        Column("bytes_before", "before", "size"),
        Column("bytes_after", "after", "size"),
        Column("delta_calls", "Δcalls", "delta_count"),
        Column("calls_after", "calls", "count"),
        Column("share_pct", "share", "pct"),
        Column("key", "call site" if grouping.by == "tag" else grouping.by),
    ]
    footer = []
    if changed > len(rows):
        footer.append(f"{changed - len(rows)} more changed (use --top 0 to show all)")
    if changed == 0:
        footer.append("no changes")
    info = {
        "before": before.meta_row(),
        "after": after.meta_row(),
        "totals": {
            "bytes_before": b_bytes,
            "bytes_after": a_bytes,
            "delta_bytes": net,
            "calls_before": b_calls,
            "calls_after": a_calls,
        },
        "warnings": warnings,
        "by": grouping.by,
        "changed": changed,
    }
    table = Rows(rows, DIFF_COLUMNS).as_table()
    return Report(rows=table, columns=columns, header=header, footer=footer, info=info)


def show_report(
    dump: Dump, rows: list[dict[str, object]], groups: int, grouping: Grouping
) -> Report:
    """Return the report ``tables.show_report`` makes of the same snapshot."""
    header = [
        f"snapshot: {describe(dump)}",
        f"total:    {format_size(dump.total_bytes)} in {dump.total_calls:,} calls, "
        f"{len(dump.rows):,} rows, {groups:,} {grouping.by} groups",
    ]
    header += [f"note: {n}" for n in dump.notes]
    columns = [
        Column("bytes", "bytes", "size"),
        Column("calls", "calls", "count"),
        Column("share_pct", "share", "pct"),
        Column("key", "call site" if grouping.by == "tag" else grouping.by),
    ]
    if grouping.by != "tag":
        columns.insert(2, Column("rows", "rows", "count"))
    footer = []
    if groups > len(rows):
        footer.append(f"{groups - len(rows)} more groups (use --top 0 to show all)")
    info = {
        "snapshot": dump.meta_row(),
        "totals": {"rows": len(dump.rows), "bytes": dump.total_bytes, "calls": dump.total_calls},
        "by": grouping.by,
        "groups": groups,
    }
    table = Rows(rows, SHOW_COLUMNS).as_table()
    return Report(rows=table, columns=columns, header=header, footer=footer, info=info)
