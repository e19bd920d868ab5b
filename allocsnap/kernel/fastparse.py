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

from allocsnap.kernel.parse import ParsedAllocinfo, parse
from allocsnap.model import SAMPLE_SCHEMA

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
    fixed: Array  # uint64 words, 0xFF in each byte that must stay the same (all but digits)
    tail: bytes  # the text after its last whole word: no digits there
    starts: Array  # where each row's "%12lli %8llu" starts
    row_of: Array  # per word: the row whose number fields it overlaps (if any)
    tags: dict[str, pa.Array]  # every sample column but bytes and calls
    format: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Last:
    """The last text read with a layout, and its numbers: rows whose digits did not change
    since then keep their numbers, so only the changed rows are decoded again."""

    words: Array  # the text as uint64 words
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

    The text is compared with the last one 8 bytes at a time: a difference outside the number
    fields means another layout; rows with a difference inside are decoded (and checked) again.
    """
    if len(raw) != len(layout.text) or not raw.endswith(layout.tail):
        return None
    words = np.frombuffer(raw, dtype=np.uint64, count=len(raw) // 8)
    # One pass over the text; the few words that differ are then checked against the mask.
    moved = np.flatnonzero(words != last.words)
    if ((words[moved] ^ last.words[moved]) & layout.fixed[moved]).any():
        return None
    rows = layout.row_of[moved]  # ascending, a row once per word it spans
    values, calls = last.values.copy(), last.calls.copy()
    if len(rows):
        rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
        arr = np.frombuffer(raw, dtype=np.uint8)
        numbers = _numbers(_fields(arr, layout.starts[rows]))
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
    return parsed, _Last(words=words, values=values, calls=calls)


def _fields(arr: Array, starts: Array) -> Array:
    """Return the "%12lli %8llu" bytes of the rows starting at ``starts``, 21 a row."""
    # a view of every 21-byte window of the text: indexing it copies one slice per row
    windows = np.lib.stride_tricks.as_strided(
        arr, shape=(len(arr) - _TAG_AT + 2, _TAG_AT - 1), strides=(1, 1), writeable=False
    )
    chars: Array = windows[starts]
    return chars


def _numbers(chars: Array) -> tuple[Array, Array] | None:
    """Decode both right-aligned fields, or None when one is not a plain decimal number."""
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
        words=np.frombuffer(layout.text, dtype=np.uint64, count=len(layout.text) // 8),
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
    numbers = _numbers(_fields(arr, starts))
    if numbers is None:
        return None
    values, calls = numbers
    # The fast decoding must agree with the full parser on the text it is built from.
    if not (
        np.array_equal(values, samples["bytes"].to_numpy())
        and np.array_equal(calls, samples["calls"].to_numpy())
    ):
        return None
    fixed = np.full(len(arr), 0xFF, dtype=np.uint8)
    fixed[(starts[:, None] + np.arange(_TAG_AT - 1)).ravel()] = 0
    fixed[starts + BYTES_WIDTH] = 0xFF  # the space between the two fields
    whole = len(arr) // 8 * 8
    last_word = (starts + _TAG_AT - 2) // 8  # the word of each row's last number byte
    # A word must not hold digits of two rows, nor the tail digits (the kernel's tags are longer)
    if np.any(last_word[:-1] >= starts[1:] // 8) or (fixed[whole:] != 0xFF).any():
        return None
    row_of = np.zeros(whole // 8, dtype=np.min_scalar_type(len(starts)))
    for offset in range(0, _TAG_AT - 1, 8):
        row_of[(starts + offset) // 8] = np.arange(len(starts))
    row_of[last_word] = np.arange(len(starts))
    tags = {name: samples[name].combine_chunks() for name in _TAG_COLUMNS}
    return _Layout(
        text=arr,
        fixed=fixed[:whole].view(np.uint64),
        tail=raw[whole:],
        starts=starts,
        row_of=row_of,
        tags=tags,
        format=parsed.format,
        notes=parsed.notes,
    )
