"""The recorder, for real: schedules, signals, kill -9, a full disk and a vanishing source."""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from allocsnap import recorder
from allocsnap.analysis import query
from allocsnap.errors import StoreError, StoreNotFound
from allocsnap.kernel import capture, source
from allocsnap.model import Filter
from allocsnap.store import housekeeping, layout, writing

BOOT = Path(__file__).parent / "data" / "real" / "6.12.117-allocsnap" / "boot-1"
DUMP = BOOT / "snap-3.txt"


def _expected_total(path: Path) -> tuple[int, int]:
    """Return (rows, total bytes) of a dump, summed with plain string handling."""
    values = [int(line.split()[0]) for line in path.read_text().splitlines()[2:] if line.strip()]
    return len(values), sum(values)


def _committed(root: Path) -> dict[str, tuple[int, int, int]]:
    """Return snapshot id -> (rows in metadata, sample rows, sum of bytes) as a reader sees it."""
    if not (root / "snapshots").is_dir():
        return {}
    try:
        files = layout.open_store(root)
    except StoreNotFound:
        return {}
    with query.connect(files) as con:
        rows = con.sql(
            "select s.snapshot_id, s.rows, count(x.snapshot_id), coalesce(sum(x.bytes), 0) "
            "from snapshots s left join samples x using (snapshot_id) group by all"
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _start(root: Path, *args: str, src: Path = DUMP) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "allocsnap", "record", "--store", str(root)]
    return subprocess.Popen(
        [*command, "--source", str(src), "--host", "h1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(step)


def _holds_lock(root: Path, pid: int) -> bool:
    try:
        return (root / layout.RECORDER_LOCK).read_text().strip() == str(pid)
    except FileNotFoundError:
        return False


def _hot_files(root: Path) -> int:
    return len(list((root / "snapshots").rglob("*.parquet")))


# -- the schedule, with a clock the test drives --------------------------------------------------


class _Clock:
    """A monotonic clock that moves only when the recorder waits or a snapshot 'takes time'."""

    def __init__(self) -> None:
        self.now = 100.0
        self.starts: list[float] = []

    def __call__(self) -> float:
        return self.now


def test_slow_snapshot_costs_its_slots_but_does_not_shift_later_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a 10 s schedule where every snapshot takes 1 s, and the second one 35 s
    clock = _Clock()

    def fake_wait(self: object, timeout: float | None = None) -> bool:
        clock.now += timeout or 0.0
        return False

    def on_status(status: recorder.Status) -> None:
        if status.event == "snapshot":
            clock.starts.append(clock.now)
            clock.now += 35.0 if status.taken == 2 else 1.0

    plan = recorder.Plan(interval=10.0, count=5, source=str(DUMP), host="h1", compact=False)
    monkeypatch.setattr(threading.Event, "wait", fake_wait)

    # WHEN recorded
    status = recorder.record(tmp_path / "store", plan, on_status=on_status, clock=clock)

    # THEN the slow one ends at 45, inside slot 4's window: slots 2 and 3 are missed, slot 4 is
    # taken at once, and later slots stay on the 10 s grid
    assert [t - 100.0 for t in clock.starts] == [0.0, 10.0, 45.0, 50.0, 60.0]
    assert (status.taken, status.missed) == (5, 2)
    assert len(_committed(tmp_path / "store")) == 5


@pytest.mark.slow
def test_filters_are_applied_before_storing_and_recorded(tmp_path: Path) -> None:
    # GIVEN a plan that keeps only rows of 1 MiB or more
    plan = recorder.Plan(
        interval=0.01,
        count=2,
        source=str(DUMP),
        host="h1",
        keep=Filter(min_size=1 << 20),
        labels={"run": "t"},
    )

    # WHEN recorded
    recorder.record(tmp_path / "store", plan)

    # THEN only those rows are stored, and the filter and label are in the metadata
    big = [v for v in _values(DUMP) if v >= 1 << 20]
    with query.connect(layout.open_store(tmp_path / "store")) as con:
        meta = con.sql("select filter, labels, rows, total_bytes from snapshots").fetchall()
    assert meta == [("min_size=1048576", {"run": "t"}, len(big), sum(big))] * 2


def _values(path: Path) -> list[int]:
    return [int(line.split()[0]) for line in path.read_text().splitlines()[2:] if line.strip()]


# -- signals, locks, kill -9 -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_with_every_snapshot_complete(tmp_path: Path, signum: int) -> None:
    # GIVEN a recorder running without an end
    root = tmp_path / "store"
    proc = _start(root, "--interval", "0.05s")
    _wait_for(lambda: _hot_files(root) >= 3)

    # WHEN signalled
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=30)

    # THEN it exits 0, and every stored snapshot is complete
    assert proc.returncode == 0, err
    rows, total = _expected_total(DUMP)
    committed = _committed(root)
    assert len(committed) >= 3
    assert set(committed.values()) == {(rows, rows, total)}
    assert not list(root.rglob("*.tmp"))
    assert f"{len(committed)} snapshots" in err.splitlines()[-1]


@pytest.mark.slow
def test_second_recorder_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    # GIVEN a recorder holding the store
    root = tmp_path / "store"
    first = _start(root, "--interval", "1s")
    try:
        _wait_for(lambda: _holds_lock(root, first.pid))

        # WHEN a second one starts, THEN it fails naming the first one's pid
        second = _start(root, "--interval", "1s", "--count", "1")
        _out, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert f"is being recorded by pid {first.pid} " in err
    finally:
        first.kill()
        first.communicate()


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_only_the_snapshot_in_flight(tmp_path: Path) -> None:
    # GIVEN three stores (killed side by side to keep the test short), and before each round
    # some snapshots of a closed hour, so that the recorder compacts when it starts
    rows, total = _expected_total(DUMP)
    rng = random.Random(20261126)
    lanes = [tmp_path / f"store{i}" for i in range(3)]
    seen: dict[Path, set[str]] = {root: set() for root in lanes}
    at = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    recorder_kills = in_compaction = round_ = 0
    # nine rounds, and more until two kills have cut `compact` while it wrote: whether one did
    # is known exactly (the process is stopped while its temp file is looked for), but where
    # the scheduler lets the kill land is not
    while round_ < 9 or in_compaction < 2:
        assert round_ < 40, f"only {in_compaction} of {round_} rounds cut a compaction"
        procs: dict[Path, subprocess.Popen[str]] = {}
        stale = {root: _compaction_temps(root) for root in lanes}  # left by earlier kills
        for lane, root in enumerate(lanes):
            for _ in range(4):
                at += timedelta(minutes=7)
                snap = capture.snapshot(source.read_dump(str(DUMP)), host="h1", at=at)
                writing.write(root, snap)
            # in one lane of three, `allocsnap compact` is killed instead of the recorder
            if (round_ + lane) % 3 == 0:
                command = [sys.executable, "-m", "allocsnap", "compact", "--store", str(root)]
                procs[root] = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            else:
                procs[root] = _start(root, "--interval", "0.03s")
        # `compact` is waited for last and killed first: its merge of these few snapshots
        # writes only briefly, well inside the time the recorders take to start
        lanes_last = sorted(procs, key=lambda root: _compacting(procs[root]))
        for root in lanes_last:
            _wait_for(functools.partial(_busy, root, procs[root]), step=0.001)

        # WHEN each is stopped at a random moment, then killed with SIGKILL
        for root in reversed(lanes_last):
            proc = procs[root]
            time.sleep(rng.uniform(0.0, 0.03 if _compacting(proc) else 0.15))
            cut = False
            if proc.returncode is None:  # not reaped: running, or a zombie that just ended
                os.kill(proc.pid, signal.SIGSTOP)
                # `compact` compacts in its own process: a temp file of its now is its own
                cut = _compacting(proc) and bool(_compaction_temps(root) - stale[root])
                os.kill(proc.pid, signal.SIGKILL)
            _out, err = proc.communicate()
            killed = proc.returncode == -signal.SIGKILL
            in_compaction += killed and cut
            if not _compacting(proc):  # a recorder without --count runs until it is killed
                assert killed, (proc.returncode, err)
                recorder_kills += 1

        # THEN every committed snapshot is whole, and none committed before is lost
        for root in lanes:
            committed = _committed(root)
            assert set(committed.values()) == {(rows, rows, total)}, (round_, root)
            assert seen[root] <= committed.keys()
            seen[root] = set(committed)
        round_ += 1
    assert recorder_kills == 2 * round_
    print(f"{round_} rounds, {recorder_kills} recorders killed, {in_compaction} in a compaction")

    # WHEN a recorder starts again, THEN it recovers: no temp or orphaned files remain
    root = lanes[0]
    proc = _start(root, "--interval", "0.01s", "--count", "2")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    housekeeping.recover(root, grace_s=0)  # what compactions replaced is kept a minute for readers
    assert not list(root.rglob("*.tmp"))
    for part in (root / "samples").glob("host=*/date=*"):
        twins = root / "snapshots" / part.relative_to(root / "samples")
        assert {p.name for p in part.glob("*.parquet")} <= {p.name for p in twins.glob("*")}
    assert len(_committed(root)) == len(seen[root]) + 2


def _compaction_was_cut(root: Path) -> bool:
    """Return True when a compaction's temp file was left: it was killed while writing."""
    return bool(_compaction_temps(root))


def _compaction_temps(root: Path) -> set[Path]:
    """Return the temp files compactions are writing, or were writing when killed."""
    return {*root.rglob(".h*-g*.tmp"), *root.rglob(".day-g*.tmp")}


def _compacting(proc: subprocess.Popen[str]) -> bool:
    return "compact" in proc.args  # type: ignore[operator]


def _busy(root: Path, proc: subprocess.Popen[str]) -> bool:
    """Return True once the process has the lock or is writing (or has already ended); for
    `compact`, once it writes a compacted file."""
    if _compacting(proc):
        return _compaction_was_cut(root) or proc.poll() is not None
    return _holds_lock(root, proc.pid) or _writing(root) or proc.poll() is not None


def _writing(root: Path) -> bool:
    return any(root.rglob(".*.tmp"))


# -- a full disk and a vanishing source ----------------------------------------------------------


@contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN in this sandbox?)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.mark.slow
def test_full_disk_stops_with_a_clear_error_and_keeps_earlier_snapshots(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "2m") as root:
        # GIVEN a recorder writing into a 2 MiB file system
        proc = _start(root / "store", "--interval", "0.01s")

        # WHEN the file system fills up
        _out, err = proc.communicate(timeout=120)

        # THEN it exits 1 with one line naming the cause
        assert proc.returncode == 1
        assert "No space left on device" in err.splitlines()[-1]
        assert err.splitlines()[-1].startswith("Error: cannot write ")

        # AND every snapshot committed before is whole, and no temp file is left
        rows, total = _expected_total(DUMP)
        committed = _committed(root / "store")
        assert len(committed) >= 3
        assert set(committed.values()) == {(rows, rows, total)}
        assert not list((root / "store").rglob("*.tmp"))


@pytest.mark.slow
def test_vanishing_source_is_noted_and_recording_goes_on(tmp_path: Path) -> None:
    # GIVEN a recorder reading a dump that will disappear for a while, with two snapshots taken
    dump = tmp_path / "allocinfo"
    dump.write_bytes(DUMP.read_bytes())
    root = tmp_path / "store"
    proc = _start(root, "--interval", "0.05s", src=dump)
    _wait_for(lambda: _hot_files(root) >= 2)
    assert proc.stderr is not None

    # WHEN it is deleted until the recorder has said it cannot read it, then comes back
    dump.unlink()
    lines: list[str] = []
    while not lines or f"cannot read {dump}" not in lines[-1]:
        lines.append(proc.stderr.readline())
        assert lines[-1], "the recorder ended without saying it cannot read the source"
    before = _hot_files(root)  # the recorder reads before it writes: none is in flight
    dump.write_bytes(DUMP.read_bytes())
    _wait_for(lambda: _hot_files(root) >= before + 2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)

    # THEN the recorder went on after it, and exactly the first snapshot after it carries a note
    assert proc.returncode == 0, err
    with query.connect(layout.open_store(root)) as con:
        notes = [n[0] for n in con.sql("select notes from snapshots order by taken_at").fetchall()]
    assert len(notes) >= before + 2
    assert [bool(n) for n in notes] == [i == before for i in range(len(notes))]
    assert notes[before][0].startswith("source unavailable for ")
    assert f"cannot read {dump}" in notes[before][0]


def test_store_error_on_a_write_is_raised_not_swallowed(tmp_path: Path) -> None:
    # GIVEN a store whose samples folder cannot be created (a file is in the way)
    root = tmp_path / "store"
    layout.ensure_store(root)
    (root / "samples").write_text("in the way")

    # WHEN recording, THEN the write error surfaces and nothing is committed
    plan = recorder.Plan(interval=0.01, count=1, source=str(DUMP), host="h1")
    with pytest.raises(StoreError, match="cannot write"):
        recorder.record(root, plan)
    assert not list((root / "snapshots").rglob("*.parquet"))
    assert not list(root.rglob("*.tmp"))
    assert housekeeping.recover(root).temp_removed == 0
