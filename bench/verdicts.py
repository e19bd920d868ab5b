"""Leak verdicts on any window: precision, recall and false positives per decoy kind (issue 16).

For each store and window, ``analysis.leaks`` (the shipped defaults) and the naive
least-squares script of bench/leaks.py (``slope > 0 and r² >= 0.8`` over every snapshot of
each epoch) are run on the same snapshots, and every flagged call site is scored against the
ground truth:

- **generated**: the host-day of bench/generate.py (8,000 tags x 8,640 snapshots at 10 s, a
  reboot at 75%), with its hard cases on (``buried`` leaks under stationary noise, r² 0.3-0.7,
  and random ``walk`` decoys whose Mann–Kendall z exceeds 5) and at least ``--decoys`` (200)
  call sites of every decoy kind, so that a 2% false-positive rate is 4 of them;
- **real**: the 200 real dumps of bench/data/vm-7.3.4-idle-1s.txt.xz (an idle 7.3.4 guest),
  stamped one minute apart (so they span the 200 minutes of the issue's pipe-buffer example;
  time enters the verdict only through the rate floor), with known series planted on top of
  the real values of a few call sites (``REAL_PLANTS``): the issue's pipe-buffer leak (+2 MiB/h
  under 3 MiB of jitter), a leak on top of a real call site that rises and falls while the
  guest settles, the issue's staircase (3,000 files of 1 KiB kept every 40 snapshots), a
  random walk and two level shifts. Every call site not planted is taken as not leaking: the
  guest was idle, and what moved is its start-up settling (page cache filled, a hump freed).

Windows: the whole store, its last 75%, 50% and 25% (``--since``), and every 2nd and 5th
snapshot of the whole store (a copy of the store with only those). A leak is **eligible** in a
window when, in one of its epochs, the window holds at least 40 points of it and its
Mann–Kendall z there is at least 5 (computed here, from the stored values, with numpy, on the
same evenly spaced points as ``leaks`` reads): the issue's targets are recall >= 0.98 and
precision >= 0.97 on those rows, and at most 2% false positives per decoy kind. A second
recall column counts only the eligible leaks that also grew past the growth floor in the
window (``leaks`` reports nothing below that floor, by design); it is not the target.

Usage: python -m bench.verdicts [--work DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import lzma
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from allocsnap import analysis
from allocsnap.kernel import capture, fastparse, source
from allocsnap.model import Snapshot, tag_id  # noqa: E402
from allocsnap.store import writing
from bench.generate import DECOY_KINDS, LEAK_CLASSES, Config, generate  # noqa: E402
from bench.leaks import naive, truth_of  # noqa: E402
from bench.size import REAL_SERIES, split_dumps  # noqa: E402

MAX_POINTS = analysis.LeakSettings.max_points
FRACTIONS = (1.0, 0.75, 0.5, 0.25)
STRIDES = (2, 5)
REAL_START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MIB = 1 << 20
# decoys of each kind in the generated store: with 200, one false positive is 0.5% and the 2%
# target is 4 of 200 (with 32 walks, one was 3.1%: a rate of 2% could not be measured)
DECOYS = 200


@dataclass(frozen=True)
class Plant:
    """A series added to a real call site's values (its bytes, per dump index 0..n-1)."""

    site: tuple[str | None, str, int, str]  # module, file, line, function
    kind: str  # the class it is scored as
    leak: bool


REAL_PLANTS = (
    Plant((None, "fs/pipe.c", 902, "alloc_pipe_info"), "buried", True),
    Plant((None, "mm/memory.c", 1291, "folio_prealloc"), "leak", True),
    Plant((None, "fs/dcache.c", 1921, "__d_alloc"), "stairs", True),
    Plant((None, "fs/pipe.c", 885, "alloc_pipe_info"), "walk", False),
    Plant((None, "kernel/fork.c", 194, "alloc_task_struct_node"), "step", False),
)


def planted(kind: str, n: int, seed: int = 16) -> np.ndarray:
    """Return the bytes a plant adds at each of ``n`` dumps one minute apart."""
    rng = np.random.default_rng([seed, sum(map(ord, kind))])
    minutes = np.arange(n, dtype=np.float64)
    if kind == "buried":  # the pipe buffers: +2 MiB/h under 3 MiB of jitter
        return 8 * MIB + 2 * MIB * minutes / 60 + rng.normal(0, 3 * MIB, n)
    if kind == "leak":  # +2 MiB/h on top of the real settling of folio_prealloc
        return 2 * MIB * minutes / 60 + rng.normal(0, 256 << 10, n)
    if kind == "stairs":  # the staircase: 3,000 files of 1 KiB kept every 40 snapshots
        return 3000 * 1024 * (minutes // 40) + rng.normal(0, 64 << 10, n)
    if kind == "walk":  # a random walk that happens to climb
        for _ in range(200):
            walk = 16 * MIB + np.cumsum(rng.normal(0, 1.2 * MIB, n))
            if mk_z(walk[:: max(1, n // MAX_POINTS)]) > 5:
                return walk
        raise RuntimeError("no climbing walk drawn")
    if kind == "step":  # two level shifts, a pool grown twice
        return 4 * MIB * ((minutes >= n * 0.35).astype(float) + (minutes >= n * 0.7)) + rng.normal(
            0, 32 << 10, n
        )
    raise ValueError(kind)


def mk_z(y: np.ndarray) -> float:
    """Return the Mann–Kendall z of a series, with the ties correction."""
    n = len(y)
    if n < 3:
        return 0.0
    s = float(np.triu(np.sign(y[None, :] - y[:, None]), 1).sum())
    _, t = np.unique(y, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - float((t * (t - 1) * (2 * t + 5)).sum())) / 18
    return (s - np.sign(s)) / np.sqrt(var) if var > 0 else 0.0


# -- stores ------------------------------------------------------------------------------------


def real_store(out: Path, stride: int = 1) -> dict[str, str]:
    """Write the real dumps (every ``stride``-th) with the plants added; return the class of
    every call site that moved (planted or not), by call site text."""
    dumps = split_dumps(lzma.decompress(REAL_SERIES.read_bytes()))
    n = len(dumps)
    adds = {tag_id(*p.site): planted(p.kind, n) for p in REAL_PLANTS}
    classes = {site_text(p.site): p.kind for p in REAL_PLANTS}
    writer = writing.Writer(out)
    parser = fastparse.CachedParser()
    seen: dict[str, set[int]] = {}
    for text in dumps:  # every call site that moved is a decoy unless planted
        for line in text.decode().splitlines()[2:]:
            size, _, site = line.split(None, 2)
            seen.setdefault(site.strip(), set()).add(int(size))
    for site, sizes in seen.items():
        if len(sizes) > 1:
            classes.setdefault(site, "idle")
    for k in range(0, n, stride):
        at = REAL_START + timedelta(minutes=k)
        raw = source.RawRead(text=dumps[k], source="file", taken_at=at)
        snap = capture.snapshot(raw, host="vm73", parser=parser, snapshot_id=f"{k:012x}")
        writer.add(_with_plants(snap, adds, k))
    return classes


def _with_plants(snap: Snapshot, adds: dict[int, np.ndarray], k: int) -> Snapshot:
    samples = snap.samples
    ids = samples["tag_id"].to_numpy()
    values = samples["bytes"].to_numpy().copy()
    for tid, extra in adds.items():
        values[ids == tid] += max(0, round(float(extra[k])))
    column = samples.schema.get_field_index("bytes")
    table = samples.set_column(
        column, "bytes", pa.array(values, samples.schema.field("bytes").type)
    )
    # the snapshot's row carries its totals, as every writer's does (readers check them)
    meta = snap.meta._replace(total_bytes=int(values.sum()))
    return replace(snap, meta=meta, samples=table)


def site_text(site: tuple[str | None, str, int, str]) -> str:
    """Return a call site as ``leaks`` keys it by tag."""
    module, file, line, function = site
    return f"{file}:{line}{f' [{module}]' if module else ''} func:{function}"


def every_kth(src: Path, dst: Path, k: int) -> None:
    """Copy a generated store keeping every ``k``-th snapshot (in time order) and its samples."""
    snapshot_files = sorted((src / "snapshots").rglob("*.parquet"))
    times = pa.concat_tables(
        pq.read_table(f, columns=["snapshot_id", "taken_at"]) for f in snapshot_files
    )
    order = pc.sort_indices(times, [("taken_at", "ascending"), ("snapshot_id", "ascending")])
    kept = pc.take(times, order)[::k]
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.parquet"))
    shutil.copytree(src / "tags", dst / "tags", dirs_exist_ok=True)
    for part in ("snapshots", "samples"):
        # samples by time: a compacted file leaves snapshot_id NULL (one host, one per instant)
        column = "snapshot_id" if part == "snapshots" else "taken_at"
        for f in sorted((src / part).rglob("*.parquet")):
            table = pq.read_table(f)
            table = table.filter(pc.is_in(table[column], kept[column]))
            pq.write_table(table, dst / f.relative_to(src), compression="zstd")


# -- scoring -----------------------------------------------------------------------------------


@dataclass
class Row:
    """One store and window: what leaks and the naive script flag, scored."""

    store: str
    window: str
    points: int  # the most points an epoch's series has in the window
    leaks_total: int
    eligible: int
    found: dict[str, set[str]] = field(default_factory=dict)  # detector -> flagged call sites
    wall: float = 0.0


def eligible_leaks(
    root: Path, classes: dict[str, str], fraction: float
) -> tuple[set[str], set[str], int]:
    """Return the leaking call sites that, in some epoch of the window (the store's last
    ``fraction`` of time), have >= 40 points and a Mann–Kendall z >= 5 on the points ``leaks``
    reads (the first snapshot of each of 119 equal time buckets, and the last); those of them
    that also grew past the growth floor there (median of the last tenth of the points minus
    median of the first tenth; the floor is ``--min-growth``, or ``--min-rate`` × the hours of
    an epoch's part in the window that is too short for it: ``leaks`` reports nothing below
    it, by design);
    and the most points an epoch has. Read with pyarrow and numpy, not with the SQL under
    test."""
    snaps = pa.concat_tables(
        pq.read_table(f, columns=["snapshot_id", "taken_at", "boot_id"])
        for f in sorted((root / "snapshots").rglob("*.parquet"))
    ).to_pandas()
    end = snaps["taken_at"].max()
    start = end - (end - snaps["taken_at"].min()) * fraction
    window = snaps[snaps["taken_at"] >= start].sort_values(["taken_at", "snapshot_id"])
    assert not snaps.duplicated("taken_at").any(), "one snapshot per instant: one host a store"
    picked: dict[str, list[object]] = {}
    floor_of: dict[str, float] = {}  # the growth floor: min_growth, or min_rate × a shorter span
    settings = analysis.LeakSettings()
    for boot, group in window.groupby("boot_id", dropna=False):
        t = (group["taken_at"] - group["taken_at"].min()).dt.total_seconds().to_numpy()
        floor_of[str(boot)] = min(settings.min_growth, settings.min_rate * t[-1] / 3600)
        us = np.round(t * 1e6).astype(np.int64)  # whole microseconds, as the SQL counts them
        bucket = us * (MAX_POINTS - 1) // max(int(us[-1]), 1)  # the last alone in its own
        first = np.r_[True, bucket[1:] != bucket[:-1]]
        picked[str(boot)] = list(group["taken_at"].to_numpy()[first])
    most = max(len(ids) for ids in picked.values())
    ids_of = {t: site for t, site in _tag_sites(root).items() if classes.get(site) in LEAK_CLASSES}
    samples = pq.ParquetDataset(
        root / "samples", filters=[("tag_id", "in", list(ids_of))], partitioning=None
    ).read(columns=["taken_at", "tag_id", "bytes"])  # by time: compacted files leave ids NULL
    frame = samples.to_pandas().set_index(["tag_id", "taken_at"])["bytes"]
    found, grown = set(), set()
    for tid, site in ids_of.items():
        try:
            mine = frame.loc[tid]
        except KeyError:
            continue
        for boot, ids in picked.items():
            ys = mine.reindex(ids).dropna().to_numpy(dtype=np.float64)
            if len(ys) >= 40 and mk_z(ys) >= 5:
                found.add(site)
                tenth = len(ys) // 10
                if np.median(ys[-tenth:]) - np.median(ys[:tenth]) >= floor_of[boot]:
                    grown.add(site)
    return found, grown, most


def _tag_sites(root: Path) -> dict[int, str]:
    tags = pa.concat_tables(pq.read_table(f) for f in sorted((root / "tags").rglob("*.parquet")))
    return {
        r["tag_id"]: site_text((r["module"], r["file"], r["line"], r["function"]))
        for r in tags.to_pylist()
    }


def measure(name: str, root: Path, classes: dict[str, str], window: str, fraction: float) -> Row:
    """Run both detectors on one window of a store and return the row."""
    span = analysis.epochs(root)
    seconds = (span.last_at - span.first_at).total_seconds()
    since_back = None if fraction >= 1 else seconds * fraction
    since = None if since_back is None else f"{since_back:.0f}s"
    eligible, grown, most = eligible_leaks(root, classes, fraction)
    started = time.perf_counter()
    result = analysis.leaks(root, analysis.Window(since=since), top_n=0)
    wall = time.perf_counter() - started
    found = set(result.rows["key"].to_pylist())
    leaks_total = sum(c in LEAK_CLASSES for c in classes.values())
    row = Row(name, window, most, leaks_total, len(eligible), wall=wall)
    row.found = {
        "leaks": found,
        "naive": naive(root, since_back),
        "eligible": eligible,
        "grown": grown,
    }
    return row


def table(rows: list[Row], classes_of: dict[str, dict[str, str]], kinds: tuple[str, ...]) -> str:
    """Return the Markdown table of the rows."""
    head = [
        "store",
        "window",
        "points",
        "detector",
        "recall (eligible)",
        "recall (eligible, grew ≥ floor)",
        "recall (all)",
        "precision",
        *[f"FP {k}" for k in kinds],
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        classes = classes_of[row.store]
        true = {s for s, c in classes.items() if c in LEAK_CLASSES}
        eligible = row.found["eligible"]
        grown = row.found["grown"]
        counts = Counter(classes.values())
        for detector in ("leaks", "naive"):
            found = row.found[detector]
            hits = found & true
            precision = len(hits) / len(found) if found else 1.0
            recall_e = len(found & eligible) / len(eligible) if eligible else float("nan")
            recall_a = len(hits) / len(true) if true else float("nan")
            fp = Counter(classes.get(s, "other") for s in found - true)
            cells = [
                row.store,
                row.window,
                str(row.points),
                detector,
                f"{recall_e:.3f} ({len(found & eligible)}/{len(eligible)})",
                _ratio(len(found & grown), len(grown)),
                f"{recall_a:.3f}",
                f"{precision:.3f}",
                *[
                    f"{fp[k] / counts[k]:.1%} ({fp[k]}/{counts[k]})" if counts[k] else "–"
                    for k in kinds
                ],
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio(hits: int, total: int) -> str:
    return f"{hits / total:.3f} ({hits}/{total})" if total else "–"


def main(argv: list[str] | None = None) -> int:
    """Build the stores, sweep the windows, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="keep the stores here (default: a temp dir)")
    parser.add_argument("--tags", type=int, default=Config.tags)
    parser.add_argument(
        "--seed", type=int, default=Config.seed, help="the generated store's seed (held-out runs)"
    )
    parser.add_argument(
        "--decoys",
        type=int,
        default=DECOYS,
        help="at least this many call sites of every decoy kind in the generated store",
    )
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="allocsnap-verdicts-"))
    try:
        rows: list[Row] = []
        classes_of: dict[str, dict[str, str]] = {}
        day = work / "day"
        if not day.exists():
            generate(day, Config(tags=args.tags, decoys=args.decoys, seed=args.seed))
        classes_of["generated"] = truth_of(day)
        real = work / "real"
        shutil.rmtree(real, ignore_errors=True)
        real_classes = real_store(real)
        classes_of["real"] = real_classes
        for name, root, classes in (
            ("generated", day, classes_of["generated"]),
            ("real", real, real_classes),
        ):
            for fraction in FRACTIONS:
                label = "whole" if fraction >= 1 else f"last {fraction:.0%}"
                rows.append(measure(name, root, classes, label, fraction))
                print(f"[{name} {label}: leaks {rows[-1].wall:.2f} s]", file=sys.stderr)
            for k in STRIDES:
                sub = work / f"{name}-every-{k}"
                if name == "real" or not sub.exists():
                    shutil.rmtree(sub, ignore_errors=True)
                    if name == "real":
                        real_store(sub, stride=k)
                    else:
                        every_kth(root, sub, k)
                label = f"every {k}{'nd' if k == 2 else 'th'}"
                rows.append(measure(name, sub, classes, label, 1.0))
                print(f"[{name} {label}: leaks {rows[-1].wall:.2f} s]", file=sys.stderr)
        counts = Counter(classes_of["generated"].values())
        print(
            "generated store: "
            + ", ".join(f"{counts[k]} {k}" for k in (*LEAK_CLASSES, *DECOY_KINDS))
        )
        print()
        print(table([r for r in rows if r.store == "generated"], classes_of, DECOY_KINDS))
        print()
        print(table([r for r in rows if r.store == "real"], classes_of, ("walk", "step", "idle")))
        print()
        for row in rows:
            if row.store == "real":
                verdicts = sorted(row.found["leaks"])
                print(f"- real {row.window}: leaks flags {verdicts or 'nothing'}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
