"""Write results onto the caller's stream as a table, CSV, JSON or Markdown.

stdout is data: a ``Report`` carries the rows in raw units (bytes, counts) for CSV and JSON,
and header lines and column kinds for the human formats, where sizes become ``4.0 MiB``.
Output is deterministic: same input, same bytes. The one-shot paths (``ls``, ``diff`` and
``show`` of text dumps) render through this module in a new process each time, so it imports
neither ``typing`` nor ``dataclasses`` (about 25 ms together): its classes are plain ones.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from allocsnap.errors import OutputFailed
from allocsnap.present import Format as Format  # its home, light for the CLI's --help
from allocsnap.units import format_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

    import pyarrow as pa


LIST_ITEMS = 5  # items a "list" column shows in a table


class Column:
    """A column of the human formats: which field, its title and how to show its values.

    ``kind`` is ``text``, ``size`` (bytes, humanised), ``delta_size`` (signed), ``count``,
    ``delta_count`` (signed), ``pct``, ``delta_pct`` (shows the row's status instead when set),
    ``time``, ``short_id`` (its first 8 characters, like a git id), ``number`` (a value shown
    as it is, right-aligned: ``allocsnap sql``), ``probability`` (two significant digits), or
    ``list`` (its first five items, and how many more).
    """

    def __init__(self, name: str, title: str, kind: str = "text") -> None:
        self.name = name
        self.title = title
        self.kind = kind


class Rows:
    """A table as render reads one, built without pyarrow (the fast paths): named columns of
    Python values, with ``column``, ``to_pylist``, ``column_names`` and ``num_rows``."""

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        self._columns = columns
        self.column_names = list(columns)
        self.num_rows = len(next(iter(columns.values()), []))

    @classmethod
    def of_dicts(cls, rows: list[dict[str, Any]], names: list[str]) -> Rows:
        """Return the ``names`` fields of ``rows``, in that order."""
        return cls({name: [row[name] for row in rows] for name in names})

    def column(self, name: str) -> list[Any]:
        """Return one column's values, top to bottom."""
        return self._columns[name]

    def to_pylist(self) -> list[dict[str, Any]]:
        """Return the rows, one dict each, in column order."""
        names = self.column_names
        return [
            dict(zip(names, values, strict=True))
            for values in zip(*self._columns.values(), strict=True)
        ]


class Report:
    """What a command prints: header lines, rows and, for JSON, extra top-level fields."""

    def __init__(
        self,
        rows: pa.Table,
        columns: list[Column],
        header: list[str] | None = None,
        footer: list[str] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.rows = rows
        self.columns = columns
        self.header = header if header is not None else []
        self.footer = footer if footer is not None else []
        self.info = info if info is not None else {}


def render(report: Report, fmt: Format, out: TextIO) -> None:
    """Write ``report`` to ``out`` in ``fmt``, and flush it.

    A write that fails (a full disk, a file system gone read-only) raises ``OutputFailed``,
    and what is still buffered is dropped: the interpreter's own flush at exit would fail
    again, print a traceback and exit 120. A reader that went away (``| head``) raises
    BrokenPipeError as it did: the callers end without a word, as click does.
    """
    try:
        if fmt is Format.csv:
            _csv(report, out)
        elif fmt is Format.json:
            _json(report, out)
        else:
            _text(report, out, markdown=fmt is Format.markdown)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        _drop_buffered(out)
        raise OutputFailed(f"writing the output failed: {e.strerror or e}") from e


def _drop_buffered(out: TextIO) -> None:
    """Point ``out``'s file descriptor at /dev/null, so that what it still buffers goes
    nowhere (a stream without one, such as a StringIO, keeps its text)."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(report.rows.column_names)
    for row in report.rows.to_pylist():
        writer.writerow(["" if v is None else _plain(v) for v in row.values()])


def _json(report: Report, out: TextIO) -> None:
    document = {**report.info, "rows": report.rows.to_pylist()}
    json.dump(document, out, indent=2, default=_plain, ensure_ascii=False)
    out.write("\n")


def _text(report: Report, out: TextIO, *, markdown: bool) -> None:
    for line in report.header:
        out.write(f"{line}\n" if not markdown else f"{line}  \n")
    if report.header:
        out.write("\n")
    titles = [c.title for c in report.columns]
    columns = [_cells(c, report.rows) for c in report.columns]
    right = [c.kind not in ("text", "short_id", "list") for c in report.columns]
    if markdown:
        out.write("| " + " | ".join(titles) + " |\n")
        out.write("|" + "|".join("---:" if r else "---" for r in right) + "|\n")
        escaped = [[v.replace("|", "\\|") for v in column] for column in columns]
        out.write("".join("| " + " | ".join(line) + " |\n" for line in zip(*escaped, strict=True)))
    else:
        padded = []  # column by column: a table of 8,646 snapshots has 77,814 cells
        for title, column, r in zip(titles, columns, right, strict=True):
            width = max(len(title), max(map(len, column), default=0))
            pad = str.rjust if r else str.ljust
            padded.append([pad(v, width) for v in (title, *column)])
        out.write("".join("  ".join(line).rstrip() + "\n" for line in zip(*padded, strict=True)))
    if report.footer:
        out.write("\n")
        for line in report.footer:
            out.write(f"{line}\n")


def _cells(column: Column, table: pa.Table | Rows) -> list[str]:
    """Return the cells of ``column``, top to bottom, as the human formats write them."""
    show = _SHOW.get(column.kind, str)
    values = _values(table, column.name)
    if column.kind == "delta_pct" and "status" in table.column_names:  # the status instead
        return [
            str(status).upper() if status else ("" if v is None else show(v))
            for v, status in zip(values, _values(table, "status"), strict=True)
        ]
    return ["" if v is None else show(v) for v in values]


def _values(table: pa.Table | Rows, name: str) -> list[Any]:
    column = table.column(name)
    return column if isinstance(column, list) else column.to_pylist()


def _list(value: Any) -> str:
    more = len(value) - LIST_ITEMS
    return ", ".join(map(str, value[:LIST_ITEMS])) + (f", … ({more} more)" if more > 0 else "")


def _time(value: Any) -> str:
    if not isinstance(value, datetime):
        return str(value)
    utc = value.astimezone(UTC) if value.tzinfo is not None else value  # columns say "(UTC)"
    return utc.isoformat(sep=" ")[:19]  # %Y-%m-%d %H:%M:%S, a fifth of strftime's time


# how each kind of column shows a value that is not None
_SHOW: dict[str, Callable[[Any], str]] = {
    "size": format_size,
    "delta_size": lambda v: ("+" if v > 0 else "") + format_size(v),
    "count": lambda v: f"{v:,}",
    "delta_count": lambda v: f"{v:+,}",
    "pct": lambda v: f"{v:.1f}%",
    "delta_pct": lambda v: f"{v:+.1f}%",
    "short_id": lambda v: str(v)[:8],
    "probability": lambda v: f"{v:.2g}",
    "list": _list,
    "time": _time,
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):  # DuckDB's HUGEINT sums arrive as decimal(38, 0)
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return value


def plural(n: int, word: str) -> str:
    """Return ``1 epoch``, ``2 epochs``; a word that ends in s is its own plural (``series``)."""
    return f"{n:,} {word}" if n == 1 or word.endswith("s") else f"{n:,} {word}s"


def clip(text: str, n: int) -> str:
    """Return ``text`` cut to ``n`` characters, an ellipsis marking the cut."""
    return text if len(text) <= n else text[: max(n - 1, 1)] + "…"
