"""``diff`` in a one-day store and ``leaks`` over a host-day, against shell and pandas.

Both run on the store of bench/generate.py (8,000 tags x 8,640 snapshots, a host-day at 10 s,
hourly files sorted by (tag, time) as the recorder's compaction leaves them; ``--quick``: three
hours). ``diff`` is timed as a user runs it, ``allocsnap diff ID ID --store DAY`` (a new
process each time), against ``sort | join | awk`` (bench/cli.py's pipeline) on the same two
snapshots written out as kernel text. ``leaks`` is timed in-process (a warm page cache, as a
second query in a notebook), against a straightforward pandas script: read the samples,
attach each row's boot, and fit a least-squares line per tag and boot (``slope > 0`` and
``r² >= 0.8`` flag a leak). A pandas Mann–Kendall over every pair of 8,640 points per tag
would be far slower still, so the regression is the generous alternative.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allocsnap import analysis
from allocsnap.store import layout
from bench.cli import PIPELINE, median_wall
from bench.generate import Config, generate
from bench.leaks import score, truth_of
from bench.report import Figure, median

ALLOCSNAP = Path(sys.executable).parent / "allocsnap"


def day_store(work: Path, *, quick: bool = False) -> Path:
    """Generate the host-day store (``--quick``: three hours) and return its path."""
    out = work / "day"
    generate(out, Config(snapshots=1080) if quick else Config())
    return out


def dump_text(samples: pa.Table) -> bytes:
    """Return a stored snapshot as the kernel's text (format 1.0)."""
    rows = ["allocinfo - version: 1.0\n#     <size>  <calls> <tag info>\n"]
    for r in samples.select(["bytes", "calls", "file", "line", "module", "function"]).to_pylist():
        mod = f" [{r['module']}]" if r["module"] else ""
        site = f"{r['file']}:{r['line']}{mod} func:{r['function']}"
        rows.append(f"{r['bytes']:12d} {r['calls']:8d} {site}\n")
    return "".join(rows).encode()


def diff_figures(work: Path, day: Path, runs: int) -> list[Figure]:
    """Time ``allocsnap diff`` of two snapshots in the day store, and the shell pipeline."""
    metas = analysis.snapshots(day)
    a, b = metas[len(metas) // 4], metas[len(metas) // 2]  # six hours apart, one boot
    paths = []
    for meta in (a, b):
        paths.append(work / f"{meta.snapshot_id}.txt")
        paths[-1].write_bytes(dump_text(analysis.load(meta.snapshot_id, day).samples))
    cli = [str(ALLOCSNAP), "diff", a.snapshot_id, b.snapshot_id, "--store", str(day)]
    diff_s = median_wall(cli, runs)
    bash = shutil.which("bash") or "/bin/bash"
    pipe_s = median_wall([bash, "-c", PIPELINE, "pipeline", *map(str, paths)], runs)

    def library() -> object:
        old, new = analysis.load(a.snapshot_id, day), analysis.load(b.snapshot_id, day)
        return analysis.diff(old, new)

    lib_s = _median_time(library, runs)
    return [
        Figure(
            f"allocsnap diff ID ID in a {len(metas):,}-snapshot store (wall, new process)",
            diff_s,
            "s",
            target=0.2,
            versus="sort | join | awk on two text dumps",
            versus_value=pipe_s,
            note=f"median of {runs}; in-process (load both + diff, warm): {lib_s:.3f} s",
        )
    ]


def _median_time(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm: imports, page cache
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    return median(walls)


def pandas_leaks(day: Path) -> set[str]:
    """Return the call sites a plain pandas least-squares detector flags in a store."""
    files = layout.open_store(day)
    snaps = pq.read_table(files.snapshots, columns=["taken_at", "boot_id"]).to_pandas()
    snaps["epoch"] = snaps["boot_id"].astype("category").cat.codes  # small keys for 69 M rows
    samples = pq.read_table(files.samples, columns=["taken_at", "tag_id", "bytes"]).to_pandas()
    df = samples.merge(snaps[["taken_at", "epoch"]], on="taken_at")
    df["x"] = (df["taken_at"] - df["taken_at"].min()).dt.total_seconds() / 3600
    df["y"] = df["bytes"].astype("float64")
    g = df.groupby(["tag_id", "epoch"])
    df["x"] -= g["x"].transform("mean")  # centred: sums of squares without cancellation
    df["y"] -= g["y"].transform("mean")
    df["xy"], df["xx"], df["yy"] = df["x"] * df["y"], df["x"] ** 2, df["y"] ** 2
    sums = df.groupby(["tag_id", "epoch"])[["xy", "xx", "yy"]].sum()
    slope = sums["xy"] / sums["xx"]
    r2 = sums["xy"] ** 2 / (sums["xx"] * sums["yy"])
    flagged = sums.index[(slope > 0) & (r2 >= 0.8)].get_level_values("tag_id").unique()
    tags = pq.read_table(files.tags).to_pandas().set_index("tag_id").loc[flagged]
    mod = tags["module"].map(lambda m: f" [{m}]" if isinstance(m, str) else "")
    return set(tags["file"] + ":" + tags["line"].astype(str) + mod + " func:" + tags["function"])


def leaks_figures(day: Path, runs: int) -> list[Figure]:
    """Time ``analysis.leaks`` and the pandas detector over the day store; score both."""
    classes = truth_of(day)
    result = analysis.leaks(day, top_n=0)
    found = set(result.rows["key"].to_pylist())
    leaks_s = _median_time(lambda: analysis.leaks(day, top_n=0), runs)
    pandas_runs = 3 if runs < 5 else 2  # tens of seconds and several GB each on a full day
    walls = []
    for _ in range(pandas_runs):
        t = time.perf_counter()
        flagged = pandas_leaks(day)
        walls.append(time.perf_counter() - t)
    pandas_s = median(walls)
    p, r, _ = score(found, classes)
    pp, pr, _ = score(flagged, classes)
    cells = pc.sum(pa.array([m.rows for m in analysis.snapshots(day)])).as_py()
    return [
        Figure(
            f"allocsnap leaks over {cells / 1e6:.0f} M samples (wall, in-process)",
            leaks_s,
            "s",
            target=1.0,
            versus="pandas per-tag least squares",
            versus_value=pandas_s,
            note=f"median of {runs} (pandas: {pandas_runs}); precision/recall allocsnap "
            f"{p:.3f}/{r:.3f}, pandas {pp:.3f}/{pr:.3f}",
        )
    ]


def figures(work: Path, *, quick: bool = False) -> list[Figure]:
    """Generate the day store and return the diff and leaks figures."""
    day = day_store(work, quick=quick)
    runs = 3 if quick else 7
    return diff_figures(work, day, runs) + leaks_figures(day, runs)
