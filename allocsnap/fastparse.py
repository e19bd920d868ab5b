"""The recorder's parser: only the numbers change between reads, so only the numbers are parsed.

The kernel prints the same tags in the same order on every read (until a module comes or goes),
each row as ``%12lli %8llu <tag text>\\n``. ``CachedParser`` keeps the tag columns of the last
full parse, keyed by the exact text around the two number fields, and on the next read checks
that text and decodes the fixed-width fields with numpy over the raw bytes. Anything that does
not fit — another tag text, a number wider than its field, a header or comment that moved — goes
to ``parse.parse``, whose result is the reference (tests compare both on every real capture).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from allocsnap.model import SAMPLE_SCHEMA
from allocsnap.parse import ParsedAllocinfo, parse

BYTES_WIDTH = 12  # "%12lli "
CALLS_WIDTH = 8  # "%8llu "
_CALLS_AT = BYTES_WIDTH + 1
_TAG_AT = _CALLS_AT + CALLS_WIDTH + 1
_HEADER = b"allocinfo - version:"
_SPACE, _MINUS, _NEWLINE, _ZERO, _HASH = 32, 45, 10, 48, 35
_POWERS = 10.0 ** np.arange(BYTES_WIDTH - 1, -1, -1)
_BYTES_WEIGHTS = np.concatenate((_POWERS, np.zeros(CALLS_WIDTH + 1)))
_CALLS_WEIGHTS = np.concatenate((np.zeros(_CALLS_AT), _POWERS[-CALLS_WIDTH:]))
_NINE = 57
_TAG_COLUMNS = [n for n in SAMPLE_SCHEMA.names if n not in ("bytes", "calls")]

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class _Layout:
    """What a text must look like, apart from its numbers, to reuse the cached tag columns."""

    text: Array  # uint8 bytes of the text the layout was built from
    fixed: Array  # bool, True where a byte must be the same (everything but the digits)
    fields_at: Array  # (rows, 21) offsets of "%12lli %8llu" in each row
    row_of: Array  # the row each byte of the text is in (those before the first: 0)
    tags: dict[str, pa.Array]  # every sample column but bytes and calls
    format: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Last:
    """The last text read with a layout, and its numbers: rows whose digits did not change
    since then keep their numbers, so only the changed rows are decoded again."""

    text: Array
    values: Array
    calls: Array


class CachedParser:
    """``parse.parse`` with the tag columns cached between reads of the same kernel table."""

    def __init__(self) -> None:
        self._layout: _Layout | None = None
        self._last: _Last | None = None
        self.hits = 0
        self.misses = 0

    def __call__(
        self, text: str | bytes, *, source: str = "<text>", lenient: bool = False
    ) -> ParsedAllocinfo:
        """Return what ``parse.parse`` returns for ``text``, without re-parsing unchanged tags."""
        raw = text.encode() if isinstance(text, str) else text
        layout, last = self._layout, self._last
        if layout is not None and last is not None and not lenient:
            fast = _fast(layout, last, raw)
            if fast is not None:
                self.hits += 1
                parsed, self._last = fast
                return parsed
        self.misses += 1
        parsed = parse(text, source=source, lenient=lenient)
        self._layout, self._last = (None, None) if lenient else _build(raw, parsed)
        return parsed


def _fast(layout: _Layout, last: _Last, raw: bytes) -> tuple[ParsedAllocinfo, _Last] | None:
    """Return the rows of ``raw`` when it has the cached layout, else None.

    Only bytes that differ from the last text are looked at: outside the number fields they
    mean another layout; inside, their rows are decoded (and checked) again.
    """
    if len(raw) != len(layout.text):
        return None
    arr = np.frombuffer(raw, dtype=np.uint8)
    moved = np.flatnonzero(arr != last.text)
    if layout.fixed[moved].any():
        return None
    changed = np.zeros(len(last.values), dtype=bool)
    changed[layout.row_of[moved]] = True
    rows = np.flatnonzero(changed)
    values, calls = last.values.copy(), last.calls.copy()
    if len(rows):
        numbers = _numbers(arr, layout.fields_at[rows])
        if numbers is None:
            return None
        values[rows], calls[rows] = numbers
    columns = dict(layout.tags)
    columns["bytes"] = pa.array(values, pa.int64())
    columns["calls"] = pa.array(calls, pa.uint64())
    samples = pa.Table.from_arrays([columns[n] for n in SAMPLE_SCHEMA.names], schema=SAMPLE_SCHEMA)
    parsed = ParsedAllocinfo(
        format=layout.format, samples=samples, skipped_lines=0, notes=layout.notes
    )
    return parsed, _Last(text=arr, values=values, calls=calls)


def _numbers(arr: Array, fields_at: Array) -> tuple[Array, Array] | None:
    """Decode both right-aligned fields, or None when one is not a plain decimal number."""
    chars = np.take(arr, fields_at)  # one gather: "%12lli %8llu", 21 bytes a row
    folded = chars | np.uint8(0x10)  # space -> '0', digits stay, '-' -> '='
    if folded.max() > _NINE:  # a '-' (or junk): the general decoder below
        values = _field(chars[:, :BYTES_WIDTH], signed=True)
        calls = _field(chars[:, _CALLS_AT:], signed=False)
        if values is None or calls is None:
            return None
        return values, calls.astype(np.uint64)
    space = chars == _SPACE
    if folded.min() < _ZERO or ((chars < _ZERO) & ~space).any():  # '!' .. ')' fold to digits
        return None
    gap = space[:, 1:] & ~space[:, :-1]  # a space right after a digit...
    gap[:, BYTES_WIDTH - 1] = False  # ...is only allowed where the fields meet
    if gap.any() or space[:, BYTES_WIDTH - 1].any() or space[:, -1].any():
        return None
    digits = (chars & np.uint8(0x0F)).astype(np.float64)  # exact: at most 12 digits
    return (digits @ _BYTES_WEIGHTS).astype(np.int64), (digits @ _CALLS_WEIGHTS).astype(np.uint64)


def _field(chars: Array, *, signed: bool) -> Array | None:
    """Decode right-aligned decimal fields: spaces, at most one '-', then at least one digit."""
    digits = chars - np.uint8(_ZERO)  # spaces and '-' wrap around to values above 9
    is_digit = digits < 10
    minus = chars == _MINUS
    # rank 0 for a space, 1 for '-', 2 for a digit, 3 for anything else; must not decrease
    rank = is_digit.view(np.int8) * 2 + minus.view(np.int8)
    rank[~(is_digit | minus | (chars == _SPACE))] = 3
    if rank.max() > 2 or rank[:, -1].min() < 2 or (rank[:, 1:] < rank[:, :-1]).any():
        return None
    any_minus = bool(minus.any())
    if any_minus and (not signed or np.count_nonzero(minus, axis=1).max() > 1):
        return None
    # at most 12 digits: exact in float64, and BLAS does the multiply-add
    width = chars.shape[1]
    digits[~is_digit] = 0
    value = (digits @ _POWERS[-width:]).astype(np.int64)
    return np.where(minus.any(axis=1), -value, value) if any_minus else value


def _build(raw: bytes, parsed: ParsedAllocinfo) -> tuple[_Layout | None, _Last | None]:
    """Return the layout of a fully parsed text and its numbers, or Nones when it is not the
    kernel's layout."""
    layout = _layout(raw, parsed)
    if layout is None:
        return None, None
    last = _Last(
        text=layout.text,
        values=parsed.samples["bytes"].to_numpy(),
        calls=parsed.samples["calls"].to_numpy(),
    )
    return layout, last


def _layout(raw: bytes, parsed: ParsedAllocinfo) -> _Layout | None:
    if parsed.skipped_lines or not raw.endswith(b"\n"):
        return None
    arr = np.frombuffer(raw, dtype=np.uint8).copy()
    ends = np.flatnonzero(arr == _NEWLINE)
    starts = np.concatenate(([0], ends[:-1] + 1))
    # The header and "#" comment lines (6.12 prints one) are compared as text like the tags.
    rows = (arr[starts] != _HASH) & (ends > starts)
    if raw.startswith(_HEADER):
        rows[0] = False
    starts, ends = starts[rows], ends[rows]
    samples = parsed.samples
    if len(starts) != samples.num_rows or len(starts) == 0:
        return None
    if np.any(ends - starts <= _TAG_AT):
        return None
    if np.any(arr[starts + BYTES_WIDTH] != _SPACE) or np.any(arr[starts + _TAG_AT - 1] != _SPACE):
        return None
    fields_at = starts[:, None] + np.arange(_TAG_AT - 1)
    numbers = _numbers(arr, fields_at)
    if numbers is None:
        return None
    values, calls = numbers
    # The fast decoding must agree with the full parser on the text it is built from.
    if not (
        np.array_equal(values, samples["bytes"].to_numpy())
        and np.array_equal(calls, samples["calls"].to_numpy())
    ):
        return None
    fixed = np.ones(len(arr), dtype=bool)
    fixed[fields_at.ravel()] = False
    fixed[starts + BYTES_WIDTH] = True  # the space between the two fields
    tags = {name: samples[name].combine_chunks() for name in _TAG_COLUMNS}
    row_of = np.zeros(len(arr), dtype=np.min_scalar_type(len(starts)))
    row_of[starts[1:]] = 1
    return _Layout(
        text=arr,
        fixed=fixed,
        fields_at=fields_at,
        row_of=np.cumsum(row_of, dtype=row_of.dtype),
        tags=tags,
        format=parsed.format,
        notes=parsed.notes,
    )
