"""Calls coded by bytes in compacted files: one ``unit_bytes`` per series and ``calls`` NULL
where it equals bytes / unit_bytes exactly (docs/storage.md, schema 3)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allocsnap.store.layout import STORE_SAMPLE_SCHEMA

# Most call sites allocate one size (a slab cache, a page order): their bytes are calls times a
# constant. A compacted file stores that constant once per series (``unit_bytes``, dictionary-
# coded: ~0 B a row) and leaves ``calls`` NULL where calls = bytes / unit_bytes exactly, so a
# cell costs one counter, not two (docs/storage.md). bytes, which every analysis reads, stays
# whole; calls is rebuilt only where it is read. Coded rows have calls below UNIT_LIMIT and
# |bytes| below 2^53, so the quotient is exact in integer and in floating-point division.
UNIT_LIMIT = 2**31
EXACT_LIMIT = 2**53
UNIT = pa.field("unit_bytes", pa.int64())
COMPACT_SAMPLE_SCHEMA = STORE_SAMPLE_SCHEMA.set(
    STORE_SAMPLE_SCHEMA.get_field_index("calls"), pa.field("calls", pa.uint64())
).append(UNIT)


def with_units(table: pa.Table) -> pa.Table:
    """Return samples sorted by (tag_id, occurrence, …) in the compacted layout.

    Each series (rows of one tag_id and occurrence) gets one ``unit_bytes``: bytes ÷ calls of
    its first row where that divides exactly and is not 0 (1 when no row does). A row whose
    calls are bytes ÷ unit_bytes (calls below UNIT_LIMIT, |bytes| below EXACT_LIMIT) keeps the
    unit and leaves ``calls`` NULL; any other row keeps its calls and a NULL unit.
    ``without_units`` and the ``samples`` view undo it.
    """
    n = table.num_rows
    if n == 0:
        return table.append_column(UNIT, pa.nulls(0, pa.int64())).cast(COMPACT_SAMPLE_SCHEMA)
    values = table["bytes"].to_numpy()
    calls = table["calls"].to_numpy()
    tags = table["tag_id"].to_numpy()
    occurrence = table["occurrence"].to_numpy()
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    starts[1:] = (tags[1:] != tags[:-1]) | (occurrence[1:] != occurrence[:-1])
    series = np.cumsum(starts) - 1
    small = (calls < UNIT_LIMIT) & (np.abs(values) < EXACT_LIMIT)
    count = np.where(small, calls, 0).astype(np.int64)  # never wraps: below 2^31
    divides = (count > 0) & (values != 0) & (values % np.maximum(count, 1) == 0)
    units = np.ones(int(series[-1]) + 1, dtype=np.int64)
    rows = np.flatnonzero(divides)
    if len(rows):
        first = rows[np.r_[True, series[rows][1:] != series[rows][:-1]]]
        units[series[first]] = values[first] // count[first]
    unit = units[series]
    coded = small & (np.abs(unit) < UNIT_LIMIT) & (values == count * unit)
    calls_index = table.schema.get_field_index("calls")
    return table.set_column(
        calls_index, COMPACT_SAMPLE_SCHEMA.field("calls"), pa.array(calls, mask=coded)
    ).append_column(UNIT, pa.array(unit, mask=~coded))


def without_units(table: pa.Table) -> pa.Table:
    """Return compacted samples with every ``calls`` value in place and no ``unit_bytes``."""
    if UNIT.name not in table.column_names:
        return table
    unit = table[UNIT.name]
    rest = table.drop_columns([UNIT.name])
    if unit.null_count == len(unit):
        return rest
    coded = pc.is_valid(unit).to_numpy(zero_copy_only=False)
    values = table["bytes"].to_numpy()
    divisor = pc.fill_null(unit, 1).to_numpy()  # never 0 where coded
    calls = pc.fill_null(table["calls"], 0).to_numpy()
    full = pa.array(np.where(coded, (values // divisor).astype(np.uint64), calls), pa.uint64())
    return rest.set_column(rest.schema.get_field_index("calls"), "calls", full)
