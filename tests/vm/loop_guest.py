"""Runs INSIDE a run-in-vm guest as root: ``allocsnap loop`` over four commands, and its cost.

Usage (in the guest): python loop_guest.py OUT_DIR BIG_FILE. Loops, each into a store of its
own (OUT_DIR/store-NAME):

- ``leak``: each run keeps two 512 KiB files in tmpfs (/dev/shm/leak), never removed;
- ``free``: each run writes the same 1 MiB into tmpfs and removes it;
- ``cache``: each run reads one large file (page cache), so only its first run allocates;
- ``module``: each run loads and unloads the ``dummy`` module (skipped, saying why, when the
  guest has no modprobe or no such module);

and the leaking command once more as a CI job runs it (a table, ``--fail-on-leak``, ``--junit``).

Then the cost: a loop of ``true`` (no settle) against two ``cat /proc/allocinfo`` and a
``diff``. Writes OUT_DIR/results.json: per loop the exit code, the JSON report, stderr, and the
guest's own account of what the command did (file sizes and counts, from the file system);
the host side (test_loop_vm.py) checks it. Standard library only, plus the allocsnap CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(sys.argv[1])
RUNS, WARMUP = 12, 2
LEAK_DIR = Path("/dev/shm/leak")
FILE_SIZE, FILES_PER_RUN = 512 << 10, 2
BIG_FILE = sys.argv[2] if len(sys.argv) > 2 else ""  # read by the cache loop
results: dict[str, Any] = {"kernel": os.uname().release, "loops": {}}


def allocsnap(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "allocsnap", "loop", "--store", str(store), "-f", "json"]
    return subprocess.run([*argv, *args], capture_output=True, text=True)


def loop(name: str, command: str, *options: str) -> dict[str, Any]:
    """Loop ``sh -c command`` and keep what it reported."""
    started = time.monotonic()
    done = allocsnap(*options, "--", "sh", "-c", command, store=OUT / f"store-{name}")
    entry: dict[str, Any] = {
        "rc": done.returncode,
        "stderr": done.stderr,
        "wall_s": time.monotonic() - started,
        "command": command,
    }
    try:
        entry["report"] = json.loads(done.stdout)
    except json.JSONDecodeError:
        entry["stdout"] = done.stdout
    results["loops"][name] = entry
    return entry


def ci() -> None:
    """The leaking command as a CI job runs it: a table, --fail-on-leak and a JUnit report."""
    store, report = OUT / "store-ci", OUT / "loop.xml"
    argv = [sys.executable, "-m", "allocsnap", "loop", "--store", str(store), "-n", "8"]
    command = (
        f"dd if=/dev/zero of={LEAK_DIR}/ci-$(cat /proc/sys/kernel/random/uuid) bs={FILE_SIZE}"
        " count=2 status=none"
    )
    options = ["--settle", "0.5s", "--fail-on-leak", "--junit", str(report)]
    done = subprocess.run(
        [*argv, *options, "--", "sh", "-c", command], capture_output=True, text=True
    )
    results["ci"] = {
        "rc": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "argv": ["allocsnap", *argv[3:5], "ci-store", *argv[6:], *options, "--", "sh", "-c"],
        "command": command,
    }


def cost() -> None:
    """The loop's own cost per run against the two-cat-and-diff way, in this guest."""
    store = Path("/tmp/cost-store")  # tmpfs, as the cats write to
    runs = 20
    started = time.monotonic()
    done = allocsnap("-n", str(runs), "--warmup", "0", "--settle", "0", "--", "true", store=store)
    wall = time.monotonic() - started
    report = json.loads(done.stdout)
    cats: list[float] = []
    for _ in range(5):
        t0 = time.monotonic()
        subprocess.run("cat /proc/allocinfo > /tmp/a.txt", shell=True, check=True)
        for _ in range(runs):
            subprocess.run(["true"], check=True)
        subprocess.run("cat /proc/allocinfo > /tmp/b.txt", shell=True, check=True)
        subprocess.run("diff /tmp/a.txt /tmp/b.txt > /tmp/d.txt", shell=True)
        cats.append(time.monotonic() - t0)
    trues: list[float] = []
    for _ in range(5):
        t0 = time.monotonic()
        for _ in range(runs):
            subprocess.run(["true"], check=True)
        trues.append(time.monotonic() - t0)
    results["cost"] = {
        "runs": runs,
        "rc": done.returncode,
        "loop_wall_s": wall,
        "snapshot_s": report["snapshot_s"],
        "run_s": report["run_s"],
        "judge_s": report["judge_s"],
        "source": report["source"],
        "cat_diff_wall_s": sorted(cats),
        "true_runs_wall_s": sorted(trues),
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    LEAK_DIR.mkdir(parents=True, exist_ok=True)
    leak = loop(
        "leak",
        f"for i in $(seq {FILES_PER_RUN}); do dd if=/dev/zero of={LEAK_DIR}/$(cat "
        f"/proc/sys/kernel/random/uuid) bs={FILE_SIZE} count=1 status=none; done",
        "-n",
        str(RUNS),
        "--warmup",
        str(WARMUP),
        "--settle",
        "0.5s",
    )
    files = sorted(LEAK_DIR.iterdir())
    leak["files"] = {"count": len(files), "sizes": sorted({f.stat().st_size for f in files})}
    ci()
    # The loops that must find nothing judge at two pages per run, not the default one:
    # allocsnap's own process can fault in about a page per run (its bookkeeping between
    # snapshots), counted at mm/memory.c's folio_prealloc. Measured in one CI run of "free" on
    # 7.3: folio_prealloc's two sites together +4.8 KB per run over 12 runs (Theil-Sen), one
    # of them +11.7 KB as pages copied on write moved to it; docs/guide.md says so.
    own = ("--min-per-run", "8K")
    loop(
        "free",
        "dd if=/dev/zero of=/dev/shm/freed bs=1M count=1 status=none && rm /dev/shm/freed",
        "-n",
        str(RUNS),
        "--settle",
        "0.5s",
        *own,
    )
    cache = loop(
        "cache",
        f"cat {BIG_FILE} > /dev/null",
        "-n",
        str(RUNS),
        "--warmup",
        "0",
        "--settle",
        "0.5s",
        *own,
    )
    cache["file_size"] = os.stat(BIG_FILE).st_size
    modprobe = shutil.which("modprobe")
    has_dummy = (
        modprobe is not None
        and subprocess.run(["modinfo", "dummy"], capture_output=True).returncode == 0
    )
    if has_dummy:
        loop("module", "modprobe dummy && rmmod dummy", "-n", str(RUNS), "--settle", "0.5s", *own)
    else:
        why = "no modprobe in the guest" if modprobe is None else "no dummy module"
        results["loops"]["module"] = {"skipped": why}
    cost()
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
