"""Measure many hosts: ``merge`` of copied stores, and the fleet analyses over the result.

Generates ``--hosts`` host stores with ``bench/generate.py`` (the same call sites on every host,
leaks on the first ``--leaky`` of them, each host's values scaled by its own variant), then
times, as medians of ``--runs``: a merge into an empty store, the same merge again (everything
is there: the cost of finding that out), ``leaks --fleet``, ``outliers`` of every call site and
``top --by host``; and prints the bytes copied and the load average.

Usage: python bench/fleet.py [--hosts 8] [--tags 2000] [--snapshots 8640] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from allocsnap import analysis
from allocsnap.store import merge
from bench.generate import Config, generate  # noqa: E402


def timed(runs: int, fn: Callable[[], object], before: Callable[[], None] | None = None) -> float:
    """Return the median wall time of ``fn`` over ``runs`` runs, ``before`` run untimed first."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Generate the fleet, time each step, print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--leaky", type=int, default=2)
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--snapshots", type=int, default=8640)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="allocsnap-fleet-"))
    try:
        base = Config(tags=args.tags, snapshots=args.snapshots, seed=3)
        sources = []
        for i in range(args.hosts):
            host = f"host{i:02d}"
            config = replace(base, host=host, leaky=i < args.leaky, variant=i + 1)
            generate(work / host, config)
            sources.append(work / host)
        dest = work / "merged"

        def fresh() -> None:
            shutil.rmtree(dest, ignore_errors=True)

        summary: list[merge.MergeSummary] = []
        first = timed(args.runs, lambda: summary.append(merge.merge(sources, dest)), fresh)
        again = timed(args.runs, lambda: merge.merge(sources, dest))
        copied = summary[-1].bytes
        window = analysis.Window()
        fleet = timed(args.runs, lambda: analysis.leaks(dest, window, top_n=0, fleet=True))
        outliers = timed(args.runs, lambda: analysis.outliers(dest, None, window, top_n=0))
        by_host = analysis.Grouping("host")
        top = timed(args.runs, lambda: analysis.top(dest, window, grouping=by_host, top_n=0))
        found = analysis.leaks(dest, window, top_n=0, fleet=True)
        print(
            f"{args.hosts} hosts x {args.tags} tags x {args.snapshots} snapshots "
            f"({args.leaky} leaky); load average {os.getloadavg()[0]:.1f}; "
            f"medians of {args.runs}"
        )
        print(
            f"merge into an empty store: {first:.2f} s, {copied / 1e6:.1f} MB "
            f"({copied / 1e6 / first:.0f} MB/s), "
            f"{summary[-1].snapshots_new} snapshots"
        )
        print(f"merge again (nothing new): {again:.2f} s")
        print(f"leaks --fleet: {fleet:.2f} s ({found.found} call sites leaking)")
        print(f"outliers (every call site): {outliers:.2f} s")
        print(f"top --by host: {top:.2f} s")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process (generation included): {peak:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
