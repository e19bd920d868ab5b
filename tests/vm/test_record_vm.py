"""The recorder on a real profiling kernel: ``allocsnap record`` inside a ../shared/vm guest.

One boot of 7.3 records while the guest leaks pages into tmpfs on purpose, loads and unloads a
module and switches profiling off and on; then ``leaks``, ``top`` and ``diff`` run on the host
over what was recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from allocsnap.analysis import query
from allocsnap.store import layout
from tests.vm.test_real_kernels import run_in_vm

pytestmark = pytest.mark.vm

# Waits until the store holds $1 snapshot rows (hot files; at most a minute).
WAIT_FOR = (
    'wait_for() { n=0; while [ "$(ls "$STORE"/snapshots/*/*/*.parquet 2>/dev/null | wc -l)"'
    ' -lt "$1" ] && [ $n -lt 240 ]; do sleep 0.25; n=$((n+1)); done; }'
)


# A guest process that holds 16 MiB more (pages written, so faulted in) after each of the store's
# snapshots 2 to 9, keeps it through the stretch of profiling off, and exits at snapshot 17,
# which gives it all back; it writes what it held to the file named by its second argument.
HUMP = """
import glob, sys, time
store, log = sys.argv[1], sys.argv[2]
def wait_for(n):
    while len(glob.glob(store + "/snapshots/*/*/*.parquet")) < n:
        time.sleep(0.2)  # listing the shared store is costly: leave the leak its turns
held = []
for n in range(2, 10):
    wait_for(n)
    held.append(b"\\x01" * (16 << 20))
with open(log, "w") as f:
    f.write(str(sum(map(len, held))))
wait_for(17)
"""


def host_json(*args: str) -> Any:
    """Run the allocsnap CLI on the host with JSON output; return the parsed document."""
    argv = [sys.executable, "-m", "allocsnap", *args, "--format", "json"]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


@pytest.fixture(scope="module")
def recorded(guest: Path) -> Path:
    """The store the guest's recorder wrote."""
    return guest / "store"


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record 26 snapshots in a 7.3 guest with a tmpfs leak, zram, a profiling-off stretch and
    a hump of anonymous memory held across it.

    Returns the share: ``store/``, ``leak.log`` (time, bytes in the leaking tmpfs folder) and
    ``hump.log`` (the bytes the hump held).
    """
    out = tmp_path_factory.mktemp("record")
    (out / "hump.py").write_text(HUMP)
    allocsnap = Path(sys.executable).parent / "allocsnap"
    script = "\n".join(
        [
            f"STORE={out}/store",
            WAIT_FOR,
            # a tmpfs of its own, large enough that the leak never fills it on a slow machine
            "mkdir -p /dev/shm/leak && mount -t tmpfs -o size=2G leak /dev/shm/leak",
            # the leak: 3 MiB more in tmpfs every half second, never freed. It must outgrow the
            # guest's other growth by a wide margin: the recorder's own memory (anonymous
            # pages, mm/memory.c func:folio_prealloc) grows 20-25 MiB in its first seconds,
            # and at 1 MiB a step the leak outgrew that by only 1.5x: a loaded CI machine,
            # which starves the leak's loop of turns, once ranked the recorder's growth first.
            "(i=0; while :; do dd if=/dev/zero of=/dev/shm/leak/$i bs=1M count=3 2>/dev/null;"
            " i=$((i+1)); sleep 0.5; done) &",
            # the guest's own account of it: time and bytes in tmpfs, every half second
            f"(while :; do echo $(date +%s.%N) $(du -sb /dev/shm/leak | cut -f1) >> {out}/leak.log;"
            " sleep 0.5; done) &",
            f"{allocsnap} record --interval 1s --count 26 --store $STORE --label test=vm &",
            "REC=$!",
            f"{sys.executable} {out}/hump.py $STORE {out}/hump.log &",
            "wait_for 6; modprobe zram",
            "wait_for 10; sysctl -qw vm.mem_profiling=0",
            "wait_for 13; sysctl -qw vm.mem_profiling=1; rmmod zram",
            "wait $REC",
        ]
    )
    result = run_in_vm(
        "7.3", ["--share", str(out), "--mem", "4G"], ["sh", "-c", script], timeout=900
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_every_recorded_snapshot_is_complete(recorded: Path) -> None:
    # GIVEN the store the guest's recorder wrote
    with query.connect(layout.open_store(recorded)) as con:
        snaps = con.sql(
            "select s.rows, count(x.ordinal), sum(x.bytes), s.total_bytes, s.kernel, s.source, "
            "s.labels from snapshots s join samples x using (snapshot_id) "
            "group by s.snapshot_id, s.rows, s.total_bytes, s.kernel, s.source, s.labels"
        ).fetchall()
    # THEN all 26 snapshots are there, each with every row it says it has, of the 7.3 kernel
    # read through its ioctl (--source auto picks the ioctl where the kernel has one)
    assert len(snaps) == 26
    for rows, samples, total, recorded_total, kernel, src, labels in snaps:
        assert (samples, total) == (rows, recorded_total)
        assert rows > 3000 and kernel.startswith("7.3") and src == "ioctl"
        assert labels == {"test": "vm"}


def test_profiling_off_is_recorded_and_splits_the_epochs(recorded: Path) -> None:
    # GIVEN the recorded snapshots, oldest first
    snapshots = host_json("ls", "--store", str(recorded))["rows"]
    flags = [s["profiling"] for s in snapshots]
    # THEN some were taken with profiling off, between runs with it on
    assert 0 in flags and flags[0] == 1 and flags[-1] == 1
    # AND the window analyses say that the window crosses epochs and left the frozen ones out
    top = host_json("top", "--store", str(recorded))
    warnings = " ".join(top["warnings"])
    assert "crosses 2 epochs" in warnings
    off = flags.count(0)
    assert f"{off} snapshot{'s' if off > 1 else ''} taken with profiling off" in warnings
    assert "modules were loaded or unloaded" in warnings


def test_the_tmpfs_leak_ranks_first(guest: Path, recorded: Path) -> None:
    # GIVEN a guest that added 3 MiB of tmpfs pages every half second, and logged how much
    lines = (guest / "leak.log").read_text().splitlines()
    log = [(float(t), int(b)) for t, b in (line.split() for line in lines)]
    # WHEN leaks runs on the host over the recording
    leaks = host_json("leaks", "--store", str(recorded))
    # THEN the call site that allocates tmpfs (shmem) pages is the first candidate
    assert leaks["found"] >= 1
    first = leaks["rows"][0]
    assert "func:shmem_alloc_folio" in first["key"], leaks["rows"][:3]
    # AND over its series it grew by what the guest's own log says went into tmpfs then
    start = datetime.fromisoformat(first["first_at"]).timestamp()
    end = datetime.fromisoformat(first["last_at"]).timestamp()
    logged = logged_bytes_at(log, end) - logged_bytes_at(log, start)
    assert 0.75 * logged < first["last_bytes"] - first["first_bytes"] < 1.25 * logged


def test_a_hump_held_across_profiling_off_and_given_back_is_not_a_leak(
    guest: Path, recorded: Path
) -> None:
    # GIVEN a guest process that held 128 MiB more through the first epoch, kept it while
    # profiling was off, and gave it all back when it exited in the second epoch
    held = int((guest / "hump.log").read_text())
    assert held == 128 << 20
    # WHEN leaks runs by function over the recording
    leaks = host_json("leaks", "--store", str(recorded), "--by", "function", "--top", "0")
    judged = leaks["rows"] + leaks["not_leaks"]
    # THEN what grew by a large part of the hump in the first epoch (anonymous pages, whatever
    # function the kernel took them through) is not a leak: it was given back later in the boot
    first_epoch = [r for r in judged if " on#" not in r["epoch"]]
    grown = [
        r
        for r in first_epoch
        if r["key"] != "shmem_alloc_folio" and r["last_bytes"] - r["first_bytes"] >= held // 4
    ]
    assert grown, [(r["key"], r["last_bytes"] - r["first_bytes"]) for r in first_epoch][:5]
    for row in grown:
        assert row["verdict"] == "given back later in the boot", (row["key"], row["reason"])
        assert row["later_fall_share"] > 0.5
    # AND the tmpfs leak beside it is a leak in the first epoch, as it was before the stretch
    shmem = [r for r in first_epoch if r["key"] == "shmem_alloc_folio"]
    assert [r["verdict"] for r in shmem] == ["leak"], shmem


def logged_bytes_at(log: list[tuple[float, int]], when: float) -> int:
    """Return the bytes the guest's log shows at ``when`` (its last entry before)."""
    return [b for t, b in log if t <= when][-1]


def test_diff_across_the_recording_warns_about_modules_and_profiling(recorded: Path) -> None:
    # WHEN the first and the last snapshot are compared
    diff = host_json("diff", "first", "latest", "--store", str(recorded), "--by", "module")
    # THEN zram, loaded and unloaded in between, is at neither end
    assert all(r["key"] != "zram" for r in diff["rows"])
    # AND the tmpfs growth is in the built-in code's delta
    built_in = next(r for r in diff["rows"] if r["key"] == "(built-in)")
    assert built_in["delta_bytes"] > 4 * 2**20
