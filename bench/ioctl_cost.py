"""What a filtered snapshot through the 7.3 ioctl costs, against the bare ioctl walk (issue 17).

Runs INSIDE a 7.3 guest as root, in one process, alternating round by round: the bare walk
(open, CONTENT_ID, GET_AT, GET_NEXT to the end, CONTENT_ID, close) with the kernel filter
allocsnap derives from ``--file`` and ``--module`` (``--file ''`` without ``--module``: no
filter); ``ioctl.read_kernel`` (the walk, names reconciled, the Arrow table, the filter where
the kernel's is not exact, and the kernel facts: sysctl, boot id, host name, modules); read +
``capture.snapshot`` (as the recorder takes it); and the same with the rows filtered again in
``capture.snapshot``, as before the read said which filter it had applied. CPU is
``time.process_time``; every figure is the median of the rounds. Target (PRODUCT.md): read +
snapshot <= 2x the bare walk.

    ../shared/vm/run-in-vm --kernel 7.3 -- .venv/bin/python bench/ioctl_cost.py --file mm/slub.c
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from allocsnap.kernel import capture, ioctl, source  # noqa: E402
from allocsnap.kernel.ioctl_abi import kernel_filter  # noqa: E402
from allocsnap.model import Filter  # noqa: E402


def cpu(fn: Callable[[], object]) -> float:
    """Return the CPU seconds of one call."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="mm/slub.c", help="the --file filter ('' for none)")
    parser.add_argument("--module", help="the --module filter (none by default)")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    keep = Filter(file=args.file or None, module=args.module)
    kf = kernel_filter(keep)

    def bare() -> object:
        fd = os.open(source.ALLOCINFO, os.O_RDONLY)
        try:
            return ioctl.walk(fd, kf)
        finally:
            os.close(fd)

    def read() -> object:
        return ioctl.read_kernel(keep)

    def snapshot() -> object:
        return capture.snapshot(ioctl.read_kernel(keep), keep=keep)

    def refiltered() -> object:  # what the snapshot cost before the read said what it kept
        return capture.snapshot(replace(ioctl.read_kernel(keep), kept=None), keep=keep)

    rows = len(bare().records)  # type: ignore[attr-defined]
    kinds = {
        "bare ioctl walk": bare,
        "allocsnap ioctl read": read,
        "read + snapshot": snapshot,
        "read + snapshot, re-filtered": refiltered,
    }
    for fn in kinds.values():
        fn()  # warm: imports, caches
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(args.rounds):
        for name, fn in kinds.items():
            times[name].append(cpu(fn))
    walk = statistics.median(times["bare ioctl walk"])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    what = keep.canonical() or "no filter"
    print(f"kernel {os.uname().release}, {what}: {rows} rows; load {load}")
    for name, values in times.items():
        value = statistics.median(values)
        print(f"{name:30s} {value * 1000:8.2f} ms CPU  ({value / walk:5.1f}x the bare walk)")
    print(f"median of {args.rounds} alternated rounds; target: read + snapshot <= 2x the walk")


if __name__ == "__main__":
    main()
