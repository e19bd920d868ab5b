"""Apply a ``Filter`` to rows held in Arrow: the one implementation of allocsnap's filters
(and the shell globs of ``--host``, turned into the expression the queries bind).

Tag predicates (module, function, file, line, accuracy) and value predicates (size bounds,
non-zero) are separate, because a diff keeps a row when either side's value passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap.errors import UsageError
from allocsnap.model import Filter

BUILT_IN = "built-in"
"""``--module built-in`` keeps built-in code (module names never contain '-')."""


MAX_GLOB_CHARS = 1024
_CLASSES = (
    "alnum alpha blank cntrl digit graph lower print punct space upper xdigit".split()
)  # the POSIX classes RE2 knows, as [[:alpha:]] in a glob


def glob_to_regex(glob: str) -> str:
    """Return an anchored RE2 regular expression equivalent to a shell glob: ``*``, ``?``,
    ``[abc]``, ``[a-z]``, ``[!a]`` (or ``[^a]``), ``[[:alpha:]]``; everything else is literal.

    Raise ``UsageError`` for what is no glob (a range backwards, a ``[`` never closed, an
    unknown class), rather than let the regular expression engine fail on it.
    """
    if len(glob) > MAX_GLOB_CHARS or "\0" in glob:
        raise UsageError(
            f"glob {_shown(glob)} is not allowed: at most {MAX_GLOB_CHARS} characters, no NUL"
        )
    out = ["^"]
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "[":
            bracket, i = _bracket(glob, i)
            out.append(bracket)
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    out.append("$")
    return "".join(out)


def _bracket(glob: str, start: int) -> tuple[str, int]:
    """Return the RE2 class of the bracket expression at ``glob[start]`` and where it ends."""
    i = start + 1
    negate = i < len(glob) and glob[i] in "!^"
    i += negate
    items = []
    first = True
    while True:
        if i >= len(glob):
            raise UsageError(
                f"glob {_shown(glob)}: the '[' at {start + 1} is never closed by ']' (a ']' "
                "right after '[' or '[!' is a literal one; write [[] for a literal '[')"
            )
        c = glob[i]
        if c == "]" and not first:
            break
        first = False
        if glob.startswith(("[:", "[=", "[."), i):
            end = glob.find(glob[i + 1] + "]", i + 2)
            name = glob[i + 2 : end]
            if glob[i + 1] != ":" or end < 0 or name not in _CLASSES:
                raise UsageError(
                    f"glob {_shown(glob)}: unknown character class at {i + 1}; the classes are "
                    + ", ".join(f"[:{c}:]" for c in _CLASSES)
                )
            items.append(f"[:{name}:]")
            i = end + 2
            continue
        if glob.startswith("-", i + 1) and i + 2 < len(glob) and glob[i + 2] != "]":
            low, high = c, glob[i + 2]
            if low > high:
                raise UsageError(
                    f"glob {_shown(glob)}: the range {low}-{high} runs backwards; write "
                    f"{high}-{low}"
                )
            items.append(f"{_in_class(low)}-{_in_class(high)}")
            i += 3
            continue
        items.append(_in_class(c))
        i += 1
    return "[" + ("^" if negate else "") + "".join(items) + "]", i + 1


def _in_class(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def hosts_regex(globs: str | Sequence[str] | None) -> str | None:
    """Return one RE2 expression matching any of the host names or globs, or None for all."""
    if globs is None or len(globs) == 0:
        return None
    items = [globs] if isinstance(globs, str) else list(globs)
    return "|".join(f"(?:{glob_to_regex(g)})" for g in items)


def tag_mask(table: pa.Table, f: Filter) -> pa.ChunkedArray | None:
    """Return the rows whose call site matches the filter, or None when all do."""
    masks = []
    if f.module is not None:
        if f.module == BUILT_IN:
            masks.append(pc.is_null(table["module"]))
        else:
            masks.append(_glob(table["module"], f.module))
    if f.function is not None:
        masks.append(_glob(table["function"], f.function))
    if f.file is not None:
        masks.append(_glob(table["file"], f.file))
    if f.line is not None:
        masks.append(pc.equal(table["line"], f.line))
    if f.accurate is not None:
        masks.append(pc.equal(table["accurate"], f.accurate))
    return _all(masks)


def value_mask(values: pa.ChunkedArray | pa.Array, f: Filter) -> pa.ChunkedArray | None:
    """Return the rows whose live bytes pass the size bounds and --nonzero, or None."""
    masks = []
    if f.min_size is not None:
        masks.append(pc.greater_equal(values, f.min_size))
    if f.max_size is not None:
        masks.append(pc.less_equal(values, f.max_size))
    if f.nonzero:
        masks.append(pc.not_equal(values, 0))
    return _all(masks)


class TagMasks:
    """``tag_mask``, kept while the tag columns are the same arrays: a recorder's memo.

    The recorder's cached parser hands out the same tag columns until the kernel's table
    changes shape, and a tag filter's mask depends on nothing else (the regular expressions
    cost ~0.2 ms a snapshot on 8,000 rows). The memo holds the columns, so their buffers cannot
    be freed and reused for other rows while it compares addresses.
    """

    def __init__(self) -> None:
        self._last: tuple[Filter, list[pa.ChunkedArray], pa.ChunkedArray | None] | None = None

    def __call__(self, table: pa.Table, f: Filter) -> pa.ChunkedArray | None:
        """Return ``tag_mask(table, f)``."""
        columns = [table[name] for name in _TAG_COLUMNS]
        last = self._last
        if last is not None and last[0] == f and all(map(_same_arrays, last[1], columns)):
            return last[2]
        mask = tag_mask(table, f)
        self._last = (f, columns, mask)
        return mask


def apply(table: pa.Table, f: Filter, masks: TagMasks | None = None) -> pa.Table:
    """Return the rows of a samples table that pass every part of the filter."""
    tags = masks(table, f) if masks is not None else tag_mask(table, f)
    mask = _all([m for m in (tags, value_mask(table["bytes"], f)) if m is not None])
    return table if mask is None else table.filter(mask)


_TAG_COLUMNS = ["module", "function", "file", "line", "accurate"]


def _same_arrays(a: pa.ChunkedArray, b: pa.ChunkedArray) -> bool:
    """Return True when two columns are views of the very same memory."""
    if a.num_chunks != b.num_chunks:
        return False
    for x, y in zip(a.chunks, b.chunks, strict=True):
        if len(x) != len(y) or x.offset != y.offset:
            return False
        for bx, by in zip(x.buffers(), y.buffers(), strict=True):
            if (bx is None) != (by is None) or (bx is not None and bx.address != by.address):
                return False
    return True


def _glob(column: pa.ChunkedArray, pattern: str) -> pa.ChunkedArray:
    matched = pc.match_substring_regex(column, glob_to_regex(pattern))
    return pc.fill_null(matched, False)


def _all(masks: list[pa.ChunkedArray]) -> pa.ChunkedArray | None:
    if not masks:
        return None
    mask = masks[0]
    for m in masks[1:]:
        mask = pc.and_(mask, m)
    return mask


def kept_tag_ids(
    keep: Filter, tags: Callable[[], pa.Table], also: Filter | None = None
) -> list[int] | None:
    """Return the ids of the tags the filter's call-site parts keep (and ``also``'s, when
    given: the window's narrowest), or None when all are kept; ``tags()`` reads the tags table
    (DuckDB's or Spark's) only when a part is given.

    Accuracy and sizes are properties of a row, not of a call site: the queries apply them.
    """
    sites = [
        replace(f, accurate=None, min_size=None, max_size=None, nonzero=False)
        for f in (keep, also)
        if f is not None
    ]
    sites = [f for f in sites if not f.is_empty()]
    if not sites:
        return None
    table = tags()
    for by_site in sites:
        mask = tag_mask(table, by_site)
        table = table if mask is None else table.filter(mask)
    ids: list[int] = table["tag_id"].to_pylist()
    return ids
