"""The thin snapshots of a compacted file: the first of each ``SLOT`` of time, which a compacted
file holds in row groups of their own, ahead of the rest.

An analysis over hours or days reads a few evenly spaced snapshots of each epoch
(``queries/view_window_snapshots_picked.sql``), and picks thin ones where it can: in a
compacted file sorted by call site, any one snapshot is spread over every page, so reading
it decodes the whole file's times; a thin one sits in the small thin row groups, which the
``thin`` column's statistics let a reader keep while skipping the rest (docs/storage.md).

The rule needs nothing but the snapshots' times, so the picking computes it in SQL from the
snapshots rows, the same on compacted files and hot ones; compaction records it in a
``thin`` column of the snapshots rows and of the samples it writes, which is where a reader
finds which row groups hold a picked snapshot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

SLOT_US = 120_000_000  # two minutes: ≤ 30 thin snapshots an hour, whatever the interval
THIN = pa.field("thin", pa.bool_(), nullable=False)


def thin_mask(taken_at: pa.Array | pa.ChunkedArray, snapshot_id: Any) -> np.ndarray[Any, Any]:
    """Return which of one host's snapshots are thin: the first, by (taken_at, snapshot_id),
    of their slot (``taken_at`` in whole microseconds since 1970 divided by ``SLOT_US``).

    The same rule as ``slot_first`` in queries/view_window_snapshots_picked.sql.
    """
    times = taken_at.cast(pa.int64()).to_numpy()
    if len(times) == 0:
        return np.zeros(0, dtype=bool)
    ids = np.asarray(snapshot_id.to_pylist(), dtype=object)
    order = np.lexsort((ids, times))
    slots = times[order] // SLOT_US
    first = np.empty(len(times), dtype=bool)
    first[0] = True
    first[1:] = slots[1:] != slots[:-1]
    mask = np.empty(len(times), dtype=bool)
    mask[order] = first
    return mask
