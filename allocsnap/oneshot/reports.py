"""The reports of ``diff`` and ``show`` for dumps read by the one-shot path: the same header
lines, columns, footer and JSON fields as present/tables.py's ``diff_report`` and
``show_report``, rendered by present/render.py itself."""

from __future__ import annotations

from allocsnap.oneshot.dumps import UNKNOWN_HOST, Dump
from allocsnap.oneshot.groups import Grouping
from allocsnap.present import snapshot_lines as lines
from allocsnap.present.render import Report, Rows
from allocsnap.units import taken_at_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
        lines.diff_total(b_bytes, a_bytes, b_calls, a_calls),
    ]
    header += [f"warning: {w}" for w in warnings]
    columns = lines.diff_columns(grouping.by)
    footer = lines.diff_footer(changed, len(rows))
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
    table: Any = Rows.of_dicts(rows, DIFF_COLUMNS)  # what render reads of a table
    return Report(rows=table, columns=columns, header=header, footer=footer, info=info)


def show_report(
    dump: Dump, rows: list[dict[str, object]], groups: int, grouping: Grouping
) -> Report:
    """Return the report ``tables.show_report`` makes of the same snapshot."""
    header = [
        f"snapshot: {describe(dump)}",
        lines.show_total(dump.total_bytes, dump.total_calls, len(dump.rows), groups, grouping.by),
    ]
    header += [f"note: {n}" for n in dump.notes]
    columns = lines.show_columns(grouping.by)
    footer = lines.show_footer(groups, len(rows))
    info = {
        "snapshot": dump.meta_row(),
        "totals": {"rows": len(dump.rows), "bytes": dump.total_bytes, "calls": dump.total_calls},
        "by": grouping.by,
        "groups": groups,
    }
    table: Any = Rows.of_dicts(rows, SHOW_COLUMNS)
    return Report(rows=table, columns=columns, header=header, footer=footer, info=info)
