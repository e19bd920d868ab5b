"""Runs INSIDE a run-in-vm guest as root: allocsnap against the guest's real /proc/allocinfo.

Usage (in the guest): python guest.py OUT_DIR. Writes into OUT_DIR (a share): the store, the raw
text of /proc/allocinfo saved with ``cat`` right after each snap (``raw-NAME.txt``), and
``results.json`` with every step's exit code and stderr. On kernels with the ioctl it also
records ioctl walks next to text reads for several filters, and CPU-time measurements. The host
side (test_vm.py) checks all of it with its own reader of the raw text.

Kept to the standard library plus allocsnap so it runs with the project's venv Python.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(sys.argv[1])
STORE = OUT / "store"
WORK = Path("/tmp/allocsnap-workload")  # tmpfs in the guest
results: dict[str, Any] = {"kernel": os.uname().release, "steps": {}}


def sh(*cmd: str) -> str:
    """Run a command that must succeed; return its stdout."""
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def snap(name: str, *options: str) -> None:
    """Run ``allocsnap snap`` as a user would, then save the raw text right after it."""
    started = time.monotonic()
    argv = [sys.executable, "-m", "allocsnap", "snap", "--name", name, "--store", str(STORE)]
    done = subprocess.run([*argv, *options], capture_output=True, text=True)
    with open(OUT / f"raw-{name}.txt", "wb") as raw:
        subprocess.run(["cat", "/proc/allocinfo"], stdout=raw, check=True)
    results["steps"][name] = {
        "rc": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "wall_s": round(time.monotonic() - started, 2),
        "mem_profiling": Path("/proc/sys/vm/mem_profiling").read_text().strip(),
        "modules": sorted(line.split()[0] for line in open("/proc/modules")),
    }


def workload(tag: str, files: int) -> list[subprocess.Popen[bytes]]:
    """Files in tmpfs and a few sleeping processes: page cache, slab, task structs."""
    WORK.mkdir(exist_ok=True)
    for i in range(files):
        (WORK / f"{tag}-{i}").write_bytes(os.urandom(1 << 18))
    return [subprocess.Popen(["sleep", "600"]) for _ in range(8)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def has_ioctl() -> bool:
    """Return True when the ioctl snapshot of the first step used the ioctl."""
    return "ENOTTY" not in results["steps"].get("probe-ioctl", {}).get("stderr", "ENOTTY")


def ioctl_vs_text() -> None:
    """Walk with the kernel's filters and read the text around each walk, for the host to check.

    Like the kernel's kselftest: the host compares the walk's tag set with its own parse of the
    text. Size filters are racy, so the text is read before and after the walk.
    """
    from allocsnap.kernel import capture
    from allocsnap.model import Filter

    line = next(
        int(row.split()[2].rsplit(":", 1)[1])
        for row in open("/proc/allocinfo")
        if row.split()[2:3] and row.split()[2].startswith("mm/memory.c:")
    )
    cases: dict[str, dict[str, Any]] = {
        "file": {"file": "mm/memory.c"},
        "function": {"function": "dup_mm"},
        "module": {"module": "zram"},
        "built-in": {"module": "built-in"},
        "line": {"file": "mm/memory.c", "line": line},
        "line-only": {"line": line},
        "min-size": {"min_size": 1 << 20},
        "min-max-size": {"min_size": 4096, "max_size": 65536},
        "inaccurate": {"accurate": False},
        "accurate": {"accurate": True, "module": "zram"},
        "glob": {"file": "fs/*", "min_size": 1},
        "module-function-glob": {"module": "zram", "function": "zram_*"},
    }
    out: dict[str, Any] = {}
    for name, fields in cases.items():
        before = Path("/proc/allocinfo").read_text()
        raw = capture.read("ioctl", Filter(**fields))
        after = Path("/proc/allocinfo").read_text()
        (OUT / f"case-{name}-before.txt").write_text(before)
        (OUT / f"case-{name}-after.txt").write_text(after)
        assert raw.samples is not None
        rows = raw.samples.select(["module", "file", "line", "function"]).to_pylist()
        out[name] = {"filter": fields, "rows": rows, "source": raw.source, "notes": raw.notes}
    results["cases"] = out


def cpu_s(fn: Any, repeat: int) -> dict[str, float]:
    """Return the mean user and system CPU seconds of one call of ``fn`` over ``repeat`` calls."""
    fn()  # warm up: imports, caches
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeat):
        fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    user = (after.ru_utime - before.ru_utime) / repeat
    system = (after.ru_stime - before.ru_stime) / repeat
    return {"user_s": user, "sys_s": system, "cpu_s": user + system}


def ioctl_calls(fn: Any) -> int:
    """Return how many ioctl system calls ``fn()`` made (allocsnap calls ``fcntl.ioctl``)."""
    import fcntl

    real = fcntl.ioctl
    calls = 0

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args)

    fcntl.ioctl = counting
    try:
        fn()
    finally:
        fcntl.ioctl = real
    return calls


def bench() -> None:
    """CPU time of a filtered snapshot through the ioctl against the text read + filter (the
    figures of docs/ioctl.md), and the work each does: ioctl calls, and the rows of the text."""
    from allocsnap.kernel import capture
    from allocsnap.model import Filter

    measured: dict[str, Any] = {}
    for name, keep in {
        "file=mm/memory.c": Filter(file="mm/memory.c"),
        "module=zram": Filter(module="zram"),
        "min_size=1M": Filter(min_size=1 << 20),
        "unfiltered": Filter(),
    }.items():
        ioctl = cpu_s(lambda k=keep: capture.snapshot(capture.read("ioctl", k), keep=k), 20)
        text = cpu_s(lambda k=keep: capture.snapshot(capture.read("procfs", k), keep=k), 20)
        read: list[Any] = []
        calls = ioctl_calls(lambda k=keep, r=read: r.append(capture.read("ioctl", k)))
        table = Path("/proc/allocinfo").read_text().splitlines()[2:]  # after the two headers
        measured[name] = {
            "ioctl": ioctl,
            "text": text,
            "rows": capture.snapshot(read[0], keep=keep).meta.rows,
            "notes": list(read[0].notes),
            "ioctl_calls": calls,
            "text_rows": len(table),
        }
    results["bench"] = measured


def main() -> None:
    OUT.mkdir(exist_ok=True)
    snap("boot")  # --source auto: the ioctl on 7.3, the text on 6.12
    snap("probe-ioctl", "--source", "ioctl", "--module", "built-in", "--file", "mm/memory.c")
    if has_ioctl():
        snap("text", "--source", "procfs")

    procs = workload("a", 32)
    sh("modprobe", "zram")
    sh("sh", "-c", "echo 64M > /sys/block/zram0/disksize")
    snap("loaded")
    if has_ioctl():
        ioctl_vs_text()
        bench()

    sh("sysctl", "-q", "-w", "vm.mem_profiling=0")
    snap("frozen-1")
    stop(procs)
    procs = workload("b", 32)  # alloc and free while counters are off: nothing may move
    for f in WORK.glob("a-*"):
        f.unlink()
    snap("frozen-2")

    sh("sysctl", "-q", "-w", "vm.mem_profiling=1")
    stop(procs)
    sh("sh", "-c", "echo 1 > /sys/block/zram0/reset")
    sh("rmmod", "zram")
    snap("unloaded")
    (OUT / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
