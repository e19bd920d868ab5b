"""The header lines, columns and footers of ``diff``, ``show`` and ``ls``, from plain values:
one wording for both paths that make them (present/tables.py from analysis results, and
allocsnap/oneshot and cli/store_argv.py without pyarrow). Imports nothing heavy."""

from __future__ import annotations

from allocsnap.present import Format
from allocsnap.present.render import Column, Report
from allocsnap.units import format_size, taken_at_text

TYPE_CHECKING = False  # typing and dataclasses stay out of the one-shot paths (render.py)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Protocol

    from allocsnap.comparing import Described

    class Shown(Described, Protocol):
        """What the reports read of a snapshot: ``snapshot_meta.SnapshotMeta``, or a dump's
        stand-in (allocsnap/oneshot/dumps.py)."""

        @property
        def name(self) -> str | None: ...
        @property
        def origin(self) -> str | None: ...
        @property
        def format(self) -> str: ...
        @property
        def notes(self) -> Sequence[str]: ...
        def to_row(self) -> dict[str, Any]: ...


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


def describe(meta: Shown) -> str:
    """Return one line naming a snapshot: id, name, time, host, kernel, source."""
    name = f" '{meta.name}'" if meta.name else ""
    where = meta.origin or meta.source
    kernel = meta.kernel or "kernel unknown"
    return (
        f"{meta.snapshot_id}{name}  {taken_at_text(meta.taken_at)}  {meta.host}  "
        f"{kernel}  ({where}, format {meta.format})"
    )


def profiling_note(meta: Shown, counted_nothing: bool) -> str | None:
    """Return what ``show`` says on stderr of a snapshot taken with profiling off, else None."""
    if meta.profiling != 0 and not counted_nothing:
        return None
    state = "; it counted nothing: every counter is 0" if counted_nothing else ": counters frozen"
    return (
        f"note: snapshot {meta.snapshot_id} was taken with profiling off "
        f"(vm.mem_profiling=0){state}"
    )


def key_title(by: str) -> str:
    """Return the title of the key column of a grouping."""
    return "call site" if by == "tag" else by


def diff_warnings(warnings: Sequence[str], comparability: Sequence[str], fmt: Format) -> list[str]:
    """Return the lines ``diff`` writes on stderr: every warning under CSV and JSON (whose
    readers see no header), else those on what is compared (the table's header has them all)."""
    said = (w for w in warnings if fmt in (Format.csv, Format.json) or w in comparability)
    return [f"warning: {w}" for w in said]


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


def show_report(
    meta: Shown, totals: tuple[int, int, int], rows: Any, groups: int, by: str
) -> Report:
    """Return the report of ``allocsnap show``: totals (rows, bytes, calls) first, then the
    groups (queries/show.sql's columns but ``groups``, as a pyarrow table or ``render.Rows``)."""
    count, total_bytes, total_calls = totals
    header = [
        f"snapshot: {describe(meta)}",
        show_total(total_bytes, total_calls, count, groups, by),
    ]
    header += [f"note: {n}" for n in meta.notes]
    info = {
        "snapshot": meta.to_row(),
        "totals": {"rows": count, "bytes": total_bytes, "calls": total_calls},
        "by": by,
        "groups": groups,
    }
    return Report(
        rows=rows,
        columns=show_columns(by),
        header=header,
        footer=show_footer(groups, rows.num_rows),
        info=info,
    )


def diff_report(
    before: Shown,
    after: Shown,
    totals: tuple[tuple[int, int], tuple[int, int]],
    rows: Any,
    changed: int,
    warnings: Sequence[str],
    by: str,
    *,
    per_hour: bool,
    moved: bool = False,
    crossing: Sequence[str] = (),
) -> Report:
    """Return the report of ``allocsnap diff``: both snapshots, the totals (bytes and calls
    of each side), the lines a diff across kernels adds (``crossing``), the warnings, then
    queries/diff.sql's groups (a pyarrow table or ``render.Rows``). ``per_hour`` adds the
    Δ/hour column, ``moved`` the column of sites that moved between kernels."""
    (b_bytes, b_calls), (a_bytes, a_calls) = totals
    header = [
        f"before: {describe(before)}",
        f"after:  {describe(after)}",
        diff_total(b_bytes, a_bytes, b_calls, a_calls),
        *crossing,
        *(f"warning: {w}" for w in warnings),
    ]
    info = {
        "before": before.to_row(),
        "after": after.to_row(),
        "totals": {
            "bytes_before": b_bytes,
            "bytes_after": a_bytes,
            "delta_bytes": a_bytes - b_bytes,
            "calls_before": b_calls,
            "calls_after": a_calls,
        },
        "warnings": list(warnings),
        "by": by,
        "changed": changed,
    }
    return Report(
        rows=rows,
        columns=diff_columns(by, per_hour=per_hour, moved=moved),
        header=header,
        footer=diff_footer(changed, rows.num_rows),
        info=info,
    )
