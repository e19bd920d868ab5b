"""Wall time of one-shot commands against the shell pipelines people use today.

Prints medians of several runs: ``allocsnap --help``, ``allocsnap diff a.txt b.txt`` on two real
captures, and the ``sort | join | awk`` pipeline that computes the same per-call-site deltas.
Run: ``.venv/bin/python bench/cli.py [--runs 15]``. Targets (docs/PRODUCT.md): --help ≤ 0.12 s,
one-shot diff ≤ 0.12 s (issue 17; bench/interactive.py measures CPU and memory too).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Figure

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "tests" / "data" / "real" / "6.12.117-allocsnap" / "boot-1"
ALLOCSNAP = Path(sys.executable).parent / "allocsnap"

# The hand-made alternative: key each row by its call site, join the two files, print deltas.
PIPELINE = r"""
key() {
  tail -n +3 "$1" | awk '{k=$3; for (i=4; i<=NF; i++) k=k" "$i; print k"\t"$1"\t"$2}' \
    | sort -t "$(printf '\t')" -k1,1
}
join -t "$(printf '\t')" -a1 -a2 -e0 -o 0,1.2,2.2 <(key "$1") <(key "$2") \
  | awk -F '\t' '{d=$3-$2; if (d != 0) print (d<0?-d:d)"\t"d"\t"$1}' | sort -rn | head -20
"""


def median_wall(argv: list[str], runs: int) -> float:
    """Return the median wall time of running ``argv`` ``runs`` times."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    a, b = CAPTURES / "snap-2.txt", CAPTURES / "snap-3.txt"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"inputs: {a.name} ({a.stat().st_size} B), {b.name} ({b.stat().st_size} B)")
    help_s = median_wall([str(ALLOCSNAP), "--help"], args.runs)
    diff_s = median_wall([str(ALLOCSNAP), "diff", str(a), str(b)], args.runs)
    print(f"allocsnap --help            {help_s * 1000:7.1f} ms   (target <= 120 ms)")
    print(f"allocsnap diff a.txt b.txt  {diff_s * 1000:7.1f} ms   (target <= 120 ms)")
    bash = shutil.which("bash")
    if bash is not None:
        pipe_s = median_wall([bash, "-c", PIPELINE, "pipeline", str(a), str(b)], args.runs)
        print(
            f"sort | join | awk pipeline  {pipe_s * 1000:7.1f} ms   (diff/pipeline = "
            f"{diff_s / pipe_s:.1f}x)"
        )


if __name__ == "__main__":
    main()


def figures(runs: int = 15) -> list[Figure]:
    """Return the --help and one-shot diff wall times, with the pipeline alongside."""
    a, b = CAPTURES / "snap-2.txt", CAPTURES / "snap-3.txt"
    help_s = median_wall([str(ALLOCSNAP), "--help"], runs)
    diff_s = median_wall([str(ALLOCSNAP), "diff", str(a), str(b)], runs)
    bash = shutil.which("bash") or "/bin/bash"
    pipe_s = median_wall([bash, "-c", PIPELINE, "pipeline", str(a), str(b)], runs)
    python_s = median_wall([sys.executable, "-c", "pass"], runs)
    return [
        Figure(
            "allocsnap --help (wall)",
            help_s,
            "s",
            target=0.12,
            versus="python -c pass (the interpreter alone)",
            versus_value=python_s,
            note=f"median of {runs}",
        ),
        Figure(
            f"allocsnap diff a.txt b.txt, real 6.12 captures, {_rows(a):,} rows (wall)",
            diff_s,
            "s",
            target=0.12,
            versus="sort | join | awk on the same two dumps",
            versus_value=pipe_s,
            note=f"median of {runs}",
        ),
    ]


def _rows(path: Path) -> int:
    return len(path.read_text().splitlines()) - 2
