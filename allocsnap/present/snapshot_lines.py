"""The header lines, columns and footers of ``diff``, ``show`` and ``ls``, from plain values:
one wording for both paths that make them (present/tables.py from analysis results, and
allocsnap/oneshot and cli/store_argv.py without pyarrow). Imports nothing heavy."""

from __future__ import annotations

from allocsnap.present.render import Column
from allocsnap.units import format_size

# ls: one row per snapshot
LS_COLUMNS = [
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


def key_title(by: str) -> str:
    """Return the title of the key column of a grouping."""
    return "call site" if by == "tag" else by


def diff_total(bytes_before: int, bytes_after: int, calls_before: int, calls_after: int) -> str:
    """Return a diff's total line: ``total:  1.2 GiB -> 1.3 GiB  (+80.0 MiB, +12,345 calls)``."""
    net = bytes_after - bytes_before
    return (
        f"total:  {format_size(bytes_before)} -> {format_size(bytes_after)}  "
        f"({'+' if net > 0 else ''}{format_size(net)}, {calls_after - calls_before:+,} calls)"
    )


def diff_columns(by: str, *, per_hour: bool = False, moved: bool = False) -> list[Column]:
    """Return a diff's columns: a Δ/hour column when the snapshots' times give one, a ``was``
    column when sites moved between kernels."""
    columns = [
        Column("delta_bytes", "Δbytes", "delta_size"),
        Column("delta_pct", "Δ%", "delta_pct"),
        Column("bytes_before", "before", "size"),
        Column("bytes_after", "after", "size"),
        Column("delta_calls", "Δcalls", "delta_count"),
        Column("calls_after", "calls", "count"),
        Column("share_pct", "share", "pct"),
    ]
    if per_hour:
        columns.insert(1, Column("bytes_per_hour", "Δ/hour", "delta_size"))
    if moved:
        columns.append(Column("moved_from", "was"))
    columns.append(Column("key", key_title(by)))
    return columns


def diff_footer(changed: int, shown: int) -> list[str]:
    """Return a diff's footer: how many changed groups are not shown, or that none changed."""
    footer = []
    if changed > shown:
        footer.append(f"{changed - shown} more changed (use --top 0 to show all)")
    if changed == 0:
        footer.append("no changes")
    return footer


def show_total(total_bytes: int, total_calls: int, rows: int, groups: int, by: str) -> str:
    """Return a snapshot's total line, as ``show`` prints it."""
    return (
        f"total:    {format_size(total_bytes)} in {total_calls:,} calls, {rows:,} rows, "
        f"{groups:,} {by} groups"
    )


def show_columns(by: str) -> list[Column]:
    """Return the columns of ``show``: rows per group unless each group is one call site."""
    columns = [
        Column("bytes", "bytes", "size"),
        Column("calls", "calls", "count"),
        Column("share_pct", "share", "pct"),
        Column("key", key_title(by)),
    ]
    if by != "tag":
        columns.insert(2, Column("rows", "rows", "count"))
    return columns


def show_footer(groups: int, shown: int) -> list[str]:
    """Return the footer of ``show``: how many groups are not shown."""
    return [f"{groups - shown} more groups (use --top 0 to show all)"] if groups > shown else []
