"""Concurrency: compaction, pruning, recovery and readers running at once on one store, as real
processes on real captures (issue 21, cases 4 to 6)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from allocsnap.kernel import capture, source
from allocsnap.store import housekeeping, writing
from tests.conftest import real

# real processes racing for seconds: left out of the fast loop
pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _fill(root: Path, start: datetime, n: int, step: timedelta) -> None:
    """Write ``n`` snapshots of the real 6.12 captures from ``start``, ``step`` apart."""
    raws = [source.read_dump(str(real("6.12", 1, i))) for i in range(5)]
    writer = writing.Writer(root)
    for i in range(n):
        writer.add(capture.snapshot(raws[i % 5], host="vm1", at=start + i * step))


@pytest.fixture(scope="module")
def hours_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of three closed hours, 60 hot snapshots each: more than a merge batch (48), so
    compaction writes part files too."""
    root = tmp_path_factory.mktemp("hours") / "store"
    _fill(root, T0, 180, timedelta(minutes=1))
    return root


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _allocsnap(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "allocsnap", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rows_by_snapshot(root: Path) -> dict[str, int]:
    """Count each committed snapshot's rows with plain pyarrow, from its newest generation."""
    newest: dict[str, tuple[int, str, datetime]] = {}
    for path in (root / "snapshots").rglob("*.parquet"):
        for row in pq.read_table(path).to_pylist():
            key = row["snapshot_id"]
            if key not in newest or newest[key][0] < row["generation"]:
                newest[key] = (row["generation"], path.name, row["taken_at"])
    by_file: dict[str, dict[tuple[datetime, int], int]] = {}
    for _generation, name, _at in newest.values():
        if name not in by_file:
            samples = next((root / "samples").rglob(name))
            t = pq.read_table(samples, columns=["taken_at", "generation"])
            counts = t.group_by(["taken_at", "generation"]).aggregate([([], "count_all")])
            by_file[name] = {
                (r["taken_at"], r["generation"]): r["count_all"] for r in counts.to_pylist()
            }
    return {
        sid: by_file[name].get((at, generation), 0)
        for sid, (generation, name, at) in newest.items()
    }


# -- temp files belong to the run that writes them (case 4) ------------------------------------


def test_recover_removes_only_temp_files_whose_writer_is_gone(tmp_path: Path) -> None:
    # GIVEN a store with temp files of a running process (new and old naming), of a process
    # that has exited, and one of a running pid last written two days ago (a reused pid)
    root = tmp_path / "store"
    _fill(root, T0, 1, timedelta(minutes=1))
    part = root / "samples" / "host=vm1" / "date=2026-11-25"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    try:
        live_new = part / f".h10-g1.parquet.{sleeper.pid}.0123456789abcdef.tmp"
        live_part = part / f".h10-g1.parquet.part60-0.{sleeper.pid}.fedcba9876543210.tmp"
        live_old = part / f".h10-g1.parquet.{sleeper.pid}.tmp"
        dead = part / f".h11-g1.parquet.{exited.pid}.0123456789abcdef.tmp"
        stale = part / f".h12-g1.parquet.{sleeper.pid}.00000000000000aa.tmp"
        for path in (live_new, live_part, live_old, dead, stale):
            path.write_bytes(b"PAR1 half")
        two_days_ago = time.time() - 2 * 86_400
        os.utime(stale, (two_days_ago, two_days_ago))

        # WHEN recovered
        done = housekeeping.recover(root, grace_s=0)

        # THEN the running process's files stay; the exited one's and the stale one go
        assert sorted(p.name for p in part.glob(".*.tmp")) == sorted(
            p.name for p in (live_new, live_part, live_old)
        )
        assert done.temp_removed == 2
    finally:
        sleeper.kill()
        sleeper.wait()


_READY_THEN_RUN = """
import sys
import pyarrow, duckdb  # loaded before the signal: the run starts at once when told
from allocsnap.store import compaction, housekeeping
from allocsnap.cli import main
print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["allocsnap", *sys.argv[1:]]
main()
"""


def test_two_compact_runs_at_once_both_succeed(hours_store: Path, tmp_path: Path) -> None:
    # GIVEN three closed hours of hot snapshots, each hour merged in parts
    root = tmp_path / "store"
    shutil.copytree(hours_store, root)
    expected = _rows_by_snapshot(root)
    second = subprocess.Popen(
        [sys.executable, "-c", _READY_THEN_RUN, "compact", "--hours-only", "--store", str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert second.stdout is not None and second.stdout.readline() == "ready\n"

    # WHEN one `compact` is merging (its temp files are there) and a second one starts
    first = _allocsnap("compact", "--hours-only", "--store", str(root))
    samples = root / "samples" / "host=vm1" / "date=2026-11-25"
    deadline = time.monotonic() + 60
    while not any(samples.glob(".*.tmp")):
        assert first.poll() is None, "the first compact ended before it wrote a temp file"
        assert time.monotonic() < deadline, "the first compact never wrote a temp file"
        time.sleep(0.002)
    outcomes = []
    for process, say in ((second, "go\n"), (first, None)):
        out, err = process.communicate(say, timeout=120)
        outcomes.append((process.returncode, out, err))

    # THEN both exit 0 without a traceback, and every snapshot reads back with all its rows
    for code, _out, err in outcomes:
        assert (code, "Traceback" in err) == (0, False), err
    hours = sorted(p.name for p in samples.glob("h*.parquet"))
    assert hours == ["h10-g1.parquet", "h11-g1.parquet", "h12-g1.parquet"]
    assert _rows_by_snapshot(root) == expected
    assert not list(samples.glob(".*.tmp"))


# -- compaction beside prune (case 5) -------------------------------------------------------

_COMPACT_LOOP = """
import sys, time, traceback
from datetime import datetime, timedelta, UTC
from pathlib import Path
from allocsnap.errors import AllocsnapError
from allocsnap.store import compaction
root, until = Path(sys.argv[1]), time.monotonic() + float(sys.argv[2])
runs = 0
while time.monotonic() < until:
    try:
        compaction.compact(root, datetime(2030, 1, 1, tzinfo=UTC), grace_s=0)
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
    runs += 1
print(runs)
"""

_FILL_AND_PRUNE_LOOP = """
import sys, time
from datetime import datetime, timedelta, UTC
from pathlib import Path
from allocsnap.kernel import capture, source
from allocsnap.store import housekeeping, writing
root, until, dump = Path(sys.argv[1]), time.monotonic() + float(sys.argv[2]), sys.argv[3]
raw = source.read_dump(dump)
writer = writing.Writer(root)
day, rounds = datetime(2026, 11, 1, tzinfo=UTC), 0
while time.monotonic() < until:
    for hour in range(3):  # three hours of a day: three units for compaction, one partition
        for minute in (0, 30):
            at = day + timedelta(hours=hour, minutes=minute)
            writer.add(capture.snapshot(raw, host="vm1", at=at))
    housekeeping.prune(root, timedelta(days=1), now=day + timedelta(days=2))
    day += timedelta(days=1)
    rounds += 1
print(rounds)
"""


def test_compact_beside_prune_never_fails(tmp_path: Path) -> None:
    # GIVEN a store that one process keeps filling with closed days and pruning whole,
    root = tmp_path / "store"
    _fill(root, T0, 1, timedelta(minutes=1))
    seconds = "6"
    filler = _python(_FILL_AND_PRUNE_LOOP, str(root), seconds, str(real("6.12", 1, 0)))
    # WHEN another compacts it over and over meanwhile
    compactor = _python(_COMPACT_LOOP, str(root), seconds)
    results = [(p.wait(timeout=120), *p.communicate()) for p in (filler, compactor)]

    # THEN neither fails: a partition or file pruned under compaction is nothing to do
    for code, out, err in results:
        assert code == 0, err
        assert int(out) > 0


# -- readers beside compaction and prune (case 6) --------------------------------------------

_FILL_COMPACT_PRUNE_LOOP = """
import sys, time
from datetime import datetime, timedelta, UTC
from pathlib import Path
from allocsnap.kernel import capture, source
from allocsnap.store import compaction, housekeeping, writing
root, until = Path(sys.argv[1]), time.monotonic() + float(sys.argv[2])
raws = [source.read_dump(d) for d in sys.argv[3:]]
writer = writing.Writer(root)
day, rounds = datetime(2026, 11, 1, tzinfo=UTC), 0
while time.monotonic() < until or rounds < 3:
    for k in range(6):  # three hours, two snapshots each; dump k % 5
        writer.add(capture.snapshot(raws[k % 5], host="vm1", at=day + k * timedelta(minutes=30)))
    # superseded files deleted at once (no grace), then the day pruned whole
    compaction.compact(root, day + timedelta(days=1), days=False, grace_s=0)
    compaction.compact(root, day + timedelta(days=1), grace_s=0)
    housekeeping.prune(root, timedelta(days=1), now=day + timedelta(days=2))
    day += timedelta(days=1)
    rounds += 1
print(rounds)
"""


def test_readers_beside_compaction_and_prune_never_fail(tmp_path: Path) -> None:
    from allocsnap import analysis

    # GIVEN a store that another process keeps filling, compacting (superseded files deleted
    # at once) and pruning, beside one snapshot that is never pruned (dump 0, in 2030)
    root = tmp_path / "store"
    dumps = [str(real("6.12", 1, i)) for i in range(5)]
    raws = [source.read_dump(d) for d in dumps]
    expected = [capture.snapshot(raw, host="vm1").meta for raw in raws]
    keep = capture.snapshot(raws[0], host="vm1", at=datetime(2030, 1, 1, tzinfo=UTC))
    writing.write(root, keep)
    worker = _python(_FILL_COMPACT_PRUNE_LOOP, str(root), "8", *dumps)

    # WHEN readers list the store and diff its first snapshot against the latest meanwhile
    reads, failures, checked = 0, [], 0
    try:
        while worker.poll() is None:
            try:
                metas = analysis.snapshots(root)
                first, latest = analysis.load_all(["first", "latest"], root)
            except Exception as e:  # noqa: BLE001  every failure is counted, then asserted
                failures.append(repr(e))
                continue
            finally:
                reads += 1
            assert metas[-1].snapshot_id == latest.meta.snapshot_id == keep.meta.snapshot_id
            # the first snapshot read back whole: the dump it came from, by its time of day
            k = (first.meta.taken_at.hour * 60 + first.meta.taken_at.minute) // 30
            want = expected[k % 5] if first.meta.snapshot_id != keep.meta.snapshot_id else None
            if want is not None:
                got = analysis.totals(first.samples)
                assert (got.rows, got.bytes) == (want.rows, want.total_bytes)
                checked += 1
    finally:
        out, err = worker.communicate(timeout=120)

    # THEN no read failed, and reads of snapshots that were being compacted were checked
    assert worker.returncode == 0, err
    assert failures == []
    assert reads > 3 and checked > 0 and int(out) >= 3
