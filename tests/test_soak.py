"""Soak: a recorder, compaction, prune and readers on one store at once (issue 21).

For ``ALLOCSNAP_SOAK_S`` seconds (default 75): a real recorder (`allocsnap record` at 0.05 s)
writes the current hour; a filler process writes whole past days and compacts them in-process;
`allocsnap compact` and `allocsnap prune` run in loops beside them; and this process runs the
readers `ls`, `diff first latest` and `leaks` in turn. Every read must succeed, and each is
checked against an independent reading: the snapshot ids of `ls` against plain-pyarrow
listings taken just before and after it, the totals of `diff` against the dumps the two
snapshots came from (summed by tests/oracle.py, which shares no code with allocsnap). At the end
no snapshot the recorder took is missing. The figures are printed (docs/recorder.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests import oracle
from tests.conftest import real

pytestmark = pytest.mark.slow

_FILL_AND_COMPACT = """
import sys, time
from datetime import datetime, timedelta, UTC
from pathlib import Path
from allocsnap.kernel import capture, source
from allocsnap.store import compaction, writing
root, until = Path(sys.argv[1]), time.monotonic() + float(sys.argv[2])
raws = [source.read_dump(d) for d in sys.argv[3:]]
writer = writing.Writer(root)
day, rounds = datetime(2000, 1, 1, tzinfo=UTC), 0
while time.monotonic() < until:
    for k in range(6):  # three hours of a day long past, two snapshots each; dump k % 5
        writer.add(capture.snapshot(raws[k % 5], host="old", at=day + k * timedelta(minutes=30)))
    compaction.compact(root, day + timedelta(days=1), days=False, grace_s=0)
    day += timedelta(days=1)
    rounds += 1
print(rounds)
"""

_LOOP = """
import subprocess, sys, time
until, failures, runs = time.monotonic() + float(sys.argv[1]), 0, 0
while time.monotonic() < until:
    done = subprocess.run([sys.executable, "-m", "allocsnap", *sys.argv[2:]],
                          capture_output=True, text=True)
    runs += 1
    if done.returncode != 0 or "Traceback" in done.stderr:
        failures += 1
        print(done.stderr.strip().splitlines()[-1], file=sys.stderr)
    time.sleep(0.2)
print(runs, failures)
"""


def _committed(root: Path, host: str) -> set[str]:
    """Return the ids of the host's committed snapshots, read with plain pyarrow."""
    ids: set[str] = set()
    for path in (root / "snapshots").glob(f"host={host}/date=*/*.parquet"):
        try:
            ids.update(pq.read_table(path, columns=["snapshot_id"])["snapshot_id"].to_pylist())
        except (FileNotFoundError, OSError):  # superseded and removed while listed
            continue
    return ids


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "allocsnap", *args], capture_output=True, text=True, timeout=300
    )


def test_soak_recorder_compaction_prune_and_readers(tmp_path: Path) -> None:
    seconds = float(os.environ.get("ALLOCSNAP_SOAK_S", "75"))
    root = tmp_path / "store"
    dumps = [str(real("6.12", 1, i)) for i in range(5)]
    recorded = real("6.12", 1, 3)
    truth = {d: sum(r.bytes for r in oracle.rows(Path(d))) for d in [*dumps, str(recorded)]}

    # GIVEN a recorder, a filler that compacts, and compact and prune loops, all on one store
    recorder = subprocess.Popen(
        [sys.executable, "-m", "allocsnap", "record", "--source", str(recorded)]
        + ["--interval", "0.05s", "--host", "rec", "--store", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not _committed(root, "rec"):
        assert recorder.poll() is None, recorder.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    span = str(seconds)
    others = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for script, args in (
            (_FILL_AND_COMPACT, [str(root), span, *dumps]),
            (_LOOP, [span, "compact", "--store", str(root)]),
            (_LOOP, [span, "prune", "--older-than", "9000d", "--store", str(root)]),
        )
    ]

    # WHEN readers run in turn until the others are done
    started = time.monotonic()
    reads, failures, wrong = 0, [], []
    while any(p.poll() is None for p in others):
        kind = ("ls", "diff", "leaks")[reads % 3]
        before = _committed(root, "rec")
        if kind == "ls":
            done = _cli("ls", "-f", "json", "--store", str(root))
        elif kind == "diff":
            done = _cli("diff", "first", "latest", "-f", "json", "--store", str(root))
        else:
            done = _cli("leaks", "-f", "json", "--store", str(root))
        after = _committed(root, "rec")
        reads += 1
        if done.returncode != 0 or "Traceback" in done.stderr:
            failures.append(f"{kind}: {done.stderr.strip()[-300:]}")
            continue
        answer = json.loads(done.stdout)
        if kind == "ls":
            listed = {r["snapshot_id"] for r in answer["rows"] if r["host"] == "rec"}
            ids = [r["snapshot_id"] for r in answer["rows"]]
            if not before <= listed <= after or len(ids) != len(set(ids)):
                wrong.append(f"ls: {len(before)} <= {len(listed)} <= {len(after)} failed")
        elif kind == "diff":
            t = answer["totals"]
            for side, got in (("before", t["bytes_before"]), ("after", t["bytes_after"])):
                origin = answer[side]["origin"]
                if truth[origin] != got:
                    wrong.append(
                        f"diff {side} {answer[side]['snapshot_id']}: {got} != {truth[origin]}"
                    )
    elapsed = time.monotonic() - started
    results = [(p.wait(timeout=300), *p.communicate()) for p in others]
    recorder.send_signal(signal.SIGTERM)
    _, status = recorder.communicate(timeout=300)

    # THEN every read succeeded and was right, the loops never failed, and every snapshot the
    # recorder took is in the store
    taken = int(status.strip().splitlines()[-1].split(" snapshots")[0])
    kept = _committed(root, "rec")
    print(
        f"\nsoak: {elapsed:.0f} s, {reads} reads, {len(failures)} failed, {len(wrong)} wrong; "
        f"recorder took {taken}, store has {len(kept)} (lost {taken - len(kept)}); "
        f"filler rounds {results[0][1].strip()}; compact runs, failures "
        f"{results[1][1].strip()}; prune runs, failures {results[2][1].strip()}"
    )
    assert recorder.returncode == 0, status
    assert failures == []
    assert wrong == []
    for code, _out, err in results:
        assert code == 0 and "Traceback" not in err and err.strip() == "", err
    assert [int(r[1].split()[1]) for r in results[1:]] == [0, 0]
    assert len(kept) == taken
    assert reads >= 3
