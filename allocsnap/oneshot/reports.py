"""The reports of ``diff`` and ``show`` for dumps read by the one-shot path: present/tables.py's,
built by the same functions (present/snapshot_lines.py) from the dumps and the groups of
allocsnap/oneshot/groups.py, rendered by present/render.py itself."""

from __future__ import annotations

from allocsnap.oneshot.dumps import Dump
from allocsnap.oneshot.groups import Grouping
from allocsnap.present import snapshot_lines as lines
from allocsnap.present.render import Report, Rows

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


def diff_report(
    before: Dump,
    after: Dump,
    rows: list[dict[str, object]],
    changed: int,
    warnings: list[str],
    grouping: Grouping,
) -> Report:
    """Return the report ``tables.diff_report`` makes of the same diff (no Δ/hour: a dump's
    time is a guess)."""
    table: Any = Rows.of_dicts(rows, DIFF_COLUMNS)  # what render reads of a table
    totals = ((before.total_bytes, before.total_calls), (after.total_bytes, after.total_calls))
    return lines.diff_report(
        before, after, totals, table, changed, warnings, grouping.by, per_hour=False
    )


def show_report(
    dump: Dump, rows: list[dict[str, object]], groups: int, grouping: Grouping
) -> Report:
    """Return the report ``tables.show_report`` makes of the same snapshot."""
    table: Any = Rows.of_dicts(rows, SHOW_COLUMNS)
    totals = (len(dump.rows), dump.total_bytes, dump.total_calls)
    return lines.show_report(dump, totals, table, groups, grouping.by)
