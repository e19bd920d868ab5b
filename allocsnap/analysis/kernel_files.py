"""The two files a diff across kernels may take: renames (``--rename``) and an exact line
mapping from a source diff (``--source-map``). A line that cannot be read is a ``ParseError``
naming the file, the line number and its text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from allocsnap.errors import InputTooLarge, ParseError, UsageError
from allocsnap.model import MAX_DUMP_BYTES


@dataclass(frozen=True)
class Renames:
    """Files and functions renamed between the two kernels (``--rename FILE``)."""

    files: Mapping[str, str] = field(default_factory=dict)
    functions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceMap:
    """Exact line numbers through a source diff: (file, old line) -> new line, for the files
    the map covers (``--source-map FILE``, bench/kernel_map.py)."""

    lines: Mapping[tuple[str, int], int]
    files: frozenset[str]


def read_renames(path: Path) -> Renames:
    """Return the renames a ``--rename`` file lists, one per line: ``file OLD NEW`` or
    ``function OLD NEW`` (blank lines and ``#`` comments allowed)."""
    files: dict[str, str] = {}
    functions: dict[str, str] = {}
    for number, line in _lines(path):
        parts = line.split()
        if len(parts) != 3 or parts[0] not in ("file", "function"):
            raise ParseError(
                str(path), number, line, "expected 'file OLD NEW' or 'function OLD NEW'"
            )
        kind, old, new = parts
        (files if kind == "file" else functions)[old] = new
    return Renames(files=files, functions=functions)


SOURCE_MAP_HEADER = ("file", "old_line", "new_line", "kind")
_HEADER_TEXT = "\t".join(SOURCE_MAP_HEADER)


def read_source_map(path: Path) -> SourceMap:
    """Return the exact line mapping of a ``--source-map`` file: a tab-separated header
    ``file old_line new_line kind``, then one row per earlier line (``kind``: ``same``,
    ``edited`` in place, or ``changed`` with ``new_line`` empty: no later line)."""
    lines: dict[tuple[str, int], int] = {}
    files: set[str] = set()
    rows = iter(_lines(path, comments=False))
    header = next(rows, None)
    if header is None or tuple(header[1].split("\t")) != SOURCE_MAP_HEADER:
        number, text = header or (1, "")
        raise ParseError(str(path), number, text, f"expected the header {_HEADER_TEXT!r}")
    for number, text in rows:
        parts = text.split("\t")
        if len(parts) != 4 or not parts[0]:
            raise ParseError(str(path), number, text, "expected 4 tab-separated fields")
        file, old, new, _kind = parts
        files.add(file)
        if not (old.isdigit() or not old) or not (new.isdigit() or not new):
            raise ParseError(str(path), number, text, "old_line and new_line must be numbers")
        if old and new:  # an earlier line with no later one: edited or deleted
            lines[(file, int(old))] = int(new)
    return SourceMap(lines=lines, files=frozenset(files))


MAX_FILE_BYTES = MAX_DUMP_BYTES
"""The largest rename or source-map file read: a map of every line of a kernel's call sites
is about 100 KB; a device or an endless pipe is refused before it fills the memory."""


def _lines(path: Path, *, comments: bool = True) -> list[tuple[int, str]]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    if len(data) > MAX_FILE_BYTES:
        raise InputTooLarge(f"{path} is larger than {MAX_FILE_BYTES:,} bytes: not a mapping file")
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        kept = line.split("#", 1)[0].strip() if comments else line.rstrip("\r")
        if kept:
            found.append((number, kept))
    return found
