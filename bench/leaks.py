"""Measure ``allocsnap leaks`` on a generated host-day: precision, recall and wall time.

Prints, for the store made by ``bench/generate.py`` (generated first when no store is given):
the precision and recall of ``analysis.leaks`` against the generator's ground truth, per tag;
the same for a naive detector (least-squares ``slope > 0 and r² >= 0.8`` over every snapshot
of each epoch, the reference in issue 4); which decoy classes each one flags; and the median
wall time of ``leaks`` over several runs (target: 1 s on a 2-core machine).

Usage: python bench/leaks.py [STORE] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from allocsnap import analysis
from allocsnap.analysis import query
from allocsnap.store import layout
from bench.generate import LEAK_CLASSES, Config, generate  # noqa: E402

# The reference detector of issue 4, over every snapshot (not a bounded sample) of a window
# that starts $since_back seconds before the newest one (the whole store when NULL):
# bench/verdicts.py's sub-windows.
NAIVE_WINDOW_SQL = """
with
w as (select snapshot_id, epoch from window_snapshots(null, null, null, $since_back, null)
      where counting),
fits as (
    select
        s.tag_id,
        w.epoch,
        regr_slope(s.bytes, epoch(s.taken_at)) as slope,
        regr_r2(s.bytes, epoch(s.taken_at)) as r2
    from samples as s
    inner join w on s.snapshot_id = w.snapshot_id
    group by s.tag_id, w.epoch
)
select distinct call_site(t.file, t.line, t.module, t.function) as key
from fits as f
inner join tags as t on f.tag_id = t.tag_id
where f.slope > 0 and f.r2 >= 0.8
order by key
"""


def score(found: set[str], classes: dict[str, str]) -> tuple[float, float, Counter[str]]:
    """Return precision, recall and the classes of the false positives."""
    true = {site for site, c in classes.items() if c in LEAK_CLASSES}
    hits = len(found & true)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(true) if true else 1.0
    return precision, recall, Counter(classes[site] for site in found - true)


def truth_of(store_dir: Path) -> dict[str, str]:
    """Return the generator's class of every call site, by call site text."""
    rows = json.loads((store_dir / "truth.json").read_text())
    return {site: cls for cls, site in rows.values()}


def naive(store_dir: Path, since_back: float | None = None) -> set[str]:
    """Return the call sites the naive detector flags (in the window's last ``since_back``
    seconds, or over the whole store)."""
    with query.connect(layout.open_store(store_dir)) as con:
        rows = con.sql(NAIVE_WINDOW_SQL, params={"since_back": since_back}).fetchall()
    return {row[0] for row in rows}


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, nargs="?")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-points", type=int, default=analysis.LeakSettings.max_points)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = args.store
        if store_dir is None:
            store_dir = Path(tmp) / "store"
            started = time.perf_counter()
            generate(store_dir, Config())
            print(f"generated {store_dir} in {time.perf_counter() - started:.1f} s")
        classes = truth_of(store_dir)
        n_snap = len(analysis.snapshots(store_dir))
        print(
            f"store: {len(classes):,} tags x {n_snap:,} snapshots, "
            f"{sum(c in LEAK_CLASSES for c in classes.values())} leaking tags"
        )

        walls, cpus = [], []
        settings = analysis.LeakSettings(max_points=args.max_points)
        result = analysis.leaks(store_dir, settings=settings, top_n=0)  # warm the page cache
        for _ in range(args.runs):
            t, c = time.perf_counter(), time.process_time()
            result = analysis.leaks(store_dir, settings=settings, top_n=0)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        found = set(result.rows["key"].to_pylist())
        p, r, fp = score(found, classes)
        print(
            f"leaks (max {args.max_points} points per epoch): precision {p:.3f}  "
            f"recall {r:.3f}  ({len(found)} flagged; "
            f"false positives by class: {dict(sorted(fp.items())) or 'none'})"
        )
        print(
            f"leaks: median wall {statistics.median(walls):.3f} s over {args.runs} runs "
            f"(min {min(walls):.3f}, max {max(walls):.3f}), median CPU "
            f"{statistics.median(cpus):.3f} s"
        )

        t = time.perf_counter()
        flagged = naive(store_dir)
        wall = time.perf_counter() - t
        p, r, fp = score(flagged, classes)
        print(
            f"naive slope>0 and r²>=0.8: precision {p:.3f}  recall {r:.3f}  "
            f"({len(flagged)} flagged; false positives by class: {dict(sorted(fp.items()))}; "
            f"{wall:.2f} s)"
        )


if __name__ == "__main__":
    main()
