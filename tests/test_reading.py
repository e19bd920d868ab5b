"""Reading a store that changes under the read: files that compaction or prune removed between
the listing and the read are read again from a fresh listing, and never called damaged.

Files vanish for real here: the reading itself deletes a committed snapshot (its snapshots and
samples files), as a prune beside it would, after the listing and before DuckDB opens them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from allocsnap.analysis import query, reading
from allocsnap.errors import StoreDamaged, StoreError
from allocsnap.kernel import capture, source
from allocsnap.store import writing
from tests.conftest import real

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
WRITTEN = 24


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store of 24 hot snapshots of a real 6.12 capture, one file pair each."""
    root = tmp_path / "store"
    raw = source.read_dump(str(real("6.12", 1, 0)))
    writer = writing.Writer(root)
    for i in range(WRITTEN):
        writer.add(capture.snapshot(raw, host="vm1", at=T0 + i * timedelta(minutes=1)))
    return root


def _pruning_reader(
    root: Path, vanishings: int
) -> tuple[list[int], Callable[[query.Connection], int]]:
    """Return a run counter and a reading that, on each of its first ``vanishings`` runs,
    deletes one committed snapshot's files before it counts the snapshots of its listing."""
    runs = [0]

    def body(con: query.Connection) -> int:
        runs[0] += 1
        if runs[0] <= vanishings:
            victim = sorted((root / "snapshots").rglob("*.parquet"))[0]
            samples = root / "samples" / victim.relative_to(root / "snapshots")
            victim.unlink()
            samples.unlink()
        table = query.run_text(con, "select count(*) as n from snapshot_files")
        return int(table["n"][0].as_py())

    return runs, body


def _on_disk(root: Path) -> int:
    """Count the committed snapshots with plain pyarrow (no allocsnap code)."""
    return sum(pq.read_metadata(p).num_rows for p in (root / "snapshots").rglob("*.parquet"))


def test_a_read_that_files_vanish_under_eight_times_is_answered(store: Path) -> None:
    # GIVEN a reading that loses a file under it eight times in a row (the old code gave up after
    # five and called the pruned file damaged)
    runs, body = _pruning_reader(store, 8)

    # WHEN it runs through read_store
    counted = reading.read_store(store, body)

    # THEN it was answered from the ninth listing, which holds what is on disk
    assert runs[0] == 9
    assert counted == _on_disk(store) == WRITTEN - 8


def test_a_store_that_never_stops_changing_is_not_called_damaged(store: Path) -> None:
    # GIVEN a reading that loses a file under it every time
    runs, body = _pruning_reader(store, WRITTEN)

    # WHEN it runs through read_store, THEN it gives up after RETRIES fresh listings and says the
    # store kept changing; no file is called damaged (every file it read was whole)
    with pytest.raises(StoreError) as caught:
        reading.read_store(store, body)
    assert not isinstance(caught.value, StoreDamaged)
    assert f"changed under {reading.RETRIES + 1} readings in a row" in str(caught.value)
    assert "compacted or pruned" in str(caught.value) and "damaged" not in str(caught.value)
    assert runs[0] == reading.RETRIES + 1
    assert _on_disk(store) == WRITTEN - reading.RETRIES - 1
