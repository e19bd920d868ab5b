"""Run every benchmark and print one table: medians, PRODUCT.md's targets, ratios to alternatives.

    .venv/bin/python bench/run.py            # the figures of docs/performance.md (~10 min)
    .venv/bin/python bench/run.py --quick    # smaller inputs, fewer runs (~2 min)
    .venv/bin/python bench/run.py --only speed,cli --markdown

Parts: ``speed`` (parse + filter + store per snapshot), ``size`` (store bytes per tag per
snapshot), ``analyses`` (diff in a day store, leaks over a host-day), ``cli`` (--help and a
one-shot diff), ``rss`` (recorder resident memory), ``interactive`` (the commands typed by
hand: CPU, wall and peak memory against the shell pipeline, issue 17). A ratio is allocsnap ÷
the alternative measured in the same run: below 1, allocsnap is faster or smaller.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import analyses, cli, interactive, recorder, size, speed  # noqa: E402
from bench.report import Figure, machine, table  # noqa: E402

PARTS: dict[str, Callable[[Path, bool], list[Figure]]] = {
    "speed": lambda work, quick: speed.figures(work, quick=quick),
    "size": lambda work, quick: size.figures(work, quick=quick),
    "analyses": lambda work, quick: analyses.figures(work, quick=quick),
    "cli": lambda work, quick: cli.figures(5 if quick else 15),
    "rss": lambda work, quick: recorder.rss_figures(work, 300 if quick else 3000),
    "interactive": lambda work, quick: interactive.figures(work, quick=quick),
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts, print the machine, the table and the notes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer runs")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    for line in machine():
        print(line, flush=True)
    figures: list[Figure] = []
    work = Path(tempfile.mkdtemp(prefix="allocsnap-bench-"))
    try:
        for part in parts:
            started = time.perf_counter()
            (work / part).mkdir()
            figures += PARTS[part](work / part, args.quick)
            print(f"[{part}: {time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"mode: {'quick' if args.quick else 'full'}; ratio = allocsnap / alternative")
    print()
    print(table(figures, markdown=args.markdown))
    print()
    for f in figures:
        if f.note:
            print(f"- {f.what}: {f.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
