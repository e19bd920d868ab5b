"""Leak verdicts that hold on any window (issue 16): sub-windows and subsamples of a real series,
random walks, level shifts, humps and series too short to tell.

Expectations come from the ground truth of the data (what was planted, where its events fall)
and from statistics computed here in plain Python (tests.test_trends' Mann–Kendall), never from
the output of queries/leaks.sql.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from allocsnap import analysis
from allocsnap.store import compaction, writing
from bench.generate import DECOY_KINDS, Config, _hard, generate
from bench.verdicts import REAL_PLANTS, REAL_START, planted, real_store, site_text
from tests.test_trends import GROWER, T0, Site, mann_kendall, snapshot, theil_sen, write_series

# stores of real series written per case: left out of the fast loop
pytestmark = pytest.mark.slow

MAX_POINTS = 120  # the default --max-points (LeakSettings.max_points; None would mean all)
assert analysis.LeakSettings.max_points == MAX_POINTS
LOOK_BACK = 3  # window spans read before a window for a staircase of few steps
assert analysis.LeakSettings.look_back == LOOK_BACK
DUMPS = 200  # bench/data/vm-7.3.4-idle-1s.txt.xz, stamped a minute apart by real_store
PIPE = next(p for p in REAL_PLANTS if p.kind == "buried")
STAIRS = next(p for p in REAL_PLANTS if p.kind == "stairs")
LEAK = next(p for p in REAL_PLANTS if p.kind == "leak")
WALK = next(p for p in REAL_PLANTS if p.kind == "walk")
STEP = next(p for p in REAL_PLANTS if p.kind == "step")


def z_of(xs: list[int]) -> float:
    """Return the Mann–Kendall z of a series, from tests.test_trends' plain-Python S and var."""
    s, var, _ = mann_kendall(xs)
    return (s - (s > 0) + (s < 0)) / math.sqrt(var) if var > 0 else 0.0


def picked(indices: list[int]) -> list[int]:
    """Return the dumps ``leaks`` reads of a window: the first of each of MAX_POINTS - 1 equal
    time buckets, and the last alone in the last bucket (every one when there are no more than
    MAX_POINTS)."""
    first, last = indices[0], indices[-1]
    span = max(last - first, 1)
    out, seen = [], set()
    for i in indices:
        bucket = (i - first) * (MAX_POINTS - 1) // span
        if bucket not in seen:
            seen.add(bucket)
            out.append(i)
    return out


WINDOWS = {  # name: (dumps in the window, the --since and --until that select them)
    "whole": (list(range(DUMPS)), None, None),
    "last 75%": (list(range(50, DUMPS)), "149m", None),
    "last 50%": (list(range(100, DUMPS)), "99m", None),
    "last 25%": (list(range(150, DUMPS)), "49m", None),
    # windows that end before the boot does: what follows them is read too
    "first 75%": (list(range(150)), None, "49m"),
    "first 50%": (list(range(100)), None, "99m"),
}


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Return the real 7.3.4 series with the plants, whole and every 2nd and 5th dump."""
    base = tmp_path_factory.mktemp("real")
    roots = {}
    for stride in (1, 2, 5):
        roots[f"every {stride}"] = base / f"every-{stride}"
        real_store(roots[f"every {stride}"], stride=stride)
    return roots


def verdicts(root: Path, since: str | None, until: str | None = None) -> dict[str, str]:
    """Return each judged call site's verdict in the window (one epoch: one row each)."""
    result = analysis.leaks(root, analysis.Window(since=since, until=until), top_n=0)
    rows = result.rows.to_pylist() + result.others.to_pylist()
    assert all(r["reason"] for r in rows)
    return {r["key"]: r["verdict"] for r in rows}


def cases() -> list[tuple[str, str | None, str | None, list[int]]]:
    """Return (store, --since, --until, dumps read) for every sub-window and subsample."""
    out = [("every 1", since, until, indices) for indices, since, until in WINDOWS.values()]
    out += [(f"every {k}", None, None, list(range(0, DUMPS, k))) for k in (2, 5)]
    return out


@pytest.mark.parametrize(("stride", "since", "until", "indices"), cases())
def test_the_buried_pipe_leak_is_a_leak_wherever_its_trend_is_clear(
    real: dict[str, Path], stride: str, since: str | None, until: str | None, indices: list[int]
) -> None:
    # GIVEN the pipe-buffer leak (+2 MiB/h under 3 MiB of jitter) planted on a real
    # 7.3.4 call site, and the points of it a window holds
    base = _real_values(PIPE.site)
    series = [base[i] + max(0, round(float(planted("buried", DUMPS)[i]))) for i in indices]
    points = [series[indices.index(i)] for i in picked(indices)]
    z = z_of(points)
    # WHEN
    found = verdicts(real[stride], since, until)
    # THEN where the window holds >= 40 points and its trend is clear (z >= 5), it is a leak
    verdict = found.get(site_text(PIPE.site))
    if len(points) >= 40 and z >= 5:
        assert verdict == "leak", (stride, since, until, len(points), z, verdict)
    # AND a leak's verdict is never a shape it does not have
    assert verdict not in {"one or two steps", "drifts (random walk)", "too few steps to tell"}


@pytest.mark.parametrize(("stride", "since", "until", "indices"), cases())
def test_the_staircase_is_a_leak_with_three_steps_in_its_boot_and_undecided_with_fewer(
    real: dict[str, Path], stride: str, since: str | None, until: str | None, indices: list[int]
) -> None:
    # GIVEN the staircase (3,000 files kept every 40 dumps) planted on a real call site,
    # its steps inside the window, and its steps in the window and the LOOK_BACK window spans
    # of its boot before it
    events = sum(1 for i in indices[1:] if i % 40 == 0)
    look_from = max(0, indices[0] - LOOK_BACK * (indices[-1] - indices[0]))
    so_far = sum(1 for i in range(look_from + 1, indices[-1] + 1) if i % 40 == 0)
    # WHEN
    result = analysis.leaks(real[stride], analysis.Window(since=since, until=until), top_n=0)
    rows = {r["key"]: r for r in result.rows.to_pylist() + result.others.to_pylist()}
    row = rows.get(site_text(STAIRS.site))
    verdict = row["verdict"] if row else None
    # THEN three or more steps in the window make a staircase leak; so do one or two when the
    # boot before the window (read with it) brings them to three, the 100 minutes; one
    # or two steps in all are level shifts or undecided: never a leak, never a random walk
    if events >= 3:
        assert verdict == "leak", (stride, since, until, events, verdict)
    elif events >= 1 and so_far >= 3 and indices[0] > 0:
        assert row is not None and verdict == "leak", (stride, since, until, so_far, row)
        # said from the look-back's first dump, with the points read before the window
        before = [i for i in picked(list(range(look_from, indices[0] + 1))) if i < indices[0]]
        assert row["first_at"] == REAL_START + timedelta(minutes=look_from), row["first_at"]
        assert row["points"] == len(before) + len(picked(indices))
        assert str(row["reason"]).startswith(
            f"with the {len(before)} points of its boot before the window (the window's "
            f"{len(picked(indices))} alone: "
        ), row["reason"]
    elif verdict is not None:
        assert verdict in {"one or two steps", "too few steps to tell", "no significant trend"}


@pytest.mark.parametrize(("stride", "since", "until", "indices"), cases())
def test_the_leak_riding_a_real_hump_is_a_leak_from_the_hump_s_free(
    real: dict[str, Path], stride: str, since: str | None, until: str | None, indices: list[int]
) -> None:
    # GIVEN +2 MiB/h planted on a real call site whose own values climb 13 MiB while the guest
    # settles and free 6 MiB of it at once (the largest fall between two dumps, found here in
    # the real values alone), and the points a window holds after that free
    base = _real_values(LEAK.site)
    free = min(range(1, DUMPS), key=lambda i: base[i] - base[i - 1])
    extra = planted("leak", DUMPS)
    points = picked(indices)
    after = [base[i] + max(0, round(float(extra[i]))) for i in points if i >= free]
    # WHEN
    found = analysis.leaks(real[stride], analysis.Window(since=since, until=until), top_n=0)
    rows = {r["key"]: r for r in found.rows.to_pylist() + found.others.to_pylist()}
    row = rows.get(site_text(LEAK.site))
    # THEN in an open window where the free leaves at least half of the points, and 40, after
    # it, with a clear trend there (z >= 5), it is a leak; said from the free when the free is
    # inside the window (a window that ends before its boot does also weighs what follows it,
    # and there the hump's fall is more than half of the window's growth: not asserted)
    if until is None and len(after) >= max(40, len(points) / 2) and z_of(after) >= 5:
        assert row is not None and row["verdict"] == "leak", (stride, since, row)
        from_free = str(row["reason"]).startswith("since a change point")
        assert from_free == (points[0] < free), row["reason"]
        # from the first point it reads after the free (it reads 120 of 200 dumps at most)
        gap = 2 * (indices[1] - indices[0])
        first = row["first_at"] - REAL_START
        assert (timedelta(minutes=free) <= first <= timedelta(minutes=free + gap)) == from_free


@pytest.mark.parametrize(("stride", "since", "until", "indices"), cases())
def test_real_idle_series_walks_and_level_shifts_are_not_leaks(
    real: dict[str, Path], stride: str, since: str | None, until: str | None, indices: list[int]
) -> None:
    # GIVEN the real idle guest, where nothing leaks, with a random walk and two level shifts
    # planted on two of its call sites
    result = analysis.leaks(real[stride], analysis.Window(since=since, until=until), top_n=0)
    leaking = {r["key"]: str(r["reason"]) for r in result.rows.to_pylist()}
    # THEN only planted leaks are leaks, in every window, except a real series that still
    # grows at the end of a window under 2 hours (the guest's slab filling while it settles,
    # over the first 100 minutes): that one's reason says the series is short
    planted_leaks = {site_text(p.site) for p in REAL_PLANTS if p.leak}
    unplanted = {k: why for k, why in leaking.items() if k not in planted_leaks}
    assert all("; short: " in why for why in unplanted.values()), unplanted
    assert indices[-1] - indices[0] < 120 or not unplanted  # a minute apart: under 2 hours
    assert site_text(WALK.site) not in leaking and site_text(STEP.site) not in leaking


def _real_values(site: Site) -> list[int]:
    """Return a call site's bytes in each real dump, read from the text by hand."""
    import lzma

    from bench.size import REAL_SERIES, split_dumps

    module, file, line, function = site
    key = f"{file}:{line}{f' [{module}]' if module else ''} func:{function}"
    out = []
    for dump in split_dumps(lzma.decompress(REAL_SERIES.read_bytes())):
        for text in dump.decode().splitlines():
            size, _, rest = text.split(None, 2) if text[:1] == " " else ("", "", "")
            if rest.strip() == key:
                out.append(int(size))
                break
        else:
            out.append(0)
    return out


# -- synthetic shapes, one site each among steady ones --------------------------------------


def _judged(
    tmp_path: Path,
    values: list[int],
    window: analysis.Window | None = None,
    every: timedelta = timedelta(minutes=1),
) -> list[dict[str, object]]:
    """Write one growing site (and a steady one) ``every`` minute apart; return the judged
    rows."""
    steady: Site = (None, "mm/steady.c", 1, "steady")
    if not (tmp_path / "snapshots").exists():  # written once, judged over several windows
        write_series(tmp_path, [{GROWER: v, steady: 1 << 20} for v in values], every)
    result = analysis.leaks(tmp_path, window, top_n=0)
    rows: list[dict[str, object]] = result.rows.to_pylist() + result.others.to_pylist()
    assert {r["key"] for r in rows} <= {"mm/leaky.c:10 func:leaky_alloc"}
    return rows


def _one(
    tmp_path: Path,
    values: list[int],
    window: analysis.Window | None = None,
    every: timedelta = timedelta(minutes=1),
) -> dict[str, object]:
    rows = _judged(tmp_path, values, window, every)
    assert len(rows) == 1
    return rows[0]


def test_a_buried_leak_that_least_squares_misses_is_a_leak_said_by_kpss(tmp_path: Path) -> None:
    # GIVEN the generator's buried leak: a line under stationary noise, r² < 0.8
    values = [int(v) for v in _hard(np.random.default_rng(5), "buried", 120, 1.0)]
    hours = list(range(len(values)))
    r2 = statistics.correlation(hours, values) ** 2
    assert r2 < 0.8 and z_of(values) >= 5  # the naive r² rule would miss it
    # WHEN
    row = _one(tmp_path, values)
    # THEN
    assert row["verdict"] == "leak"
    assert str(row["reason"]).startswith("trend in stationary noise")
    assert "KPSS" in str(row["reason"])


def test_a_random_walk_that_climbs_is_not_a_leak(tmp_path: Path) -> None:
    # GIVEN random walks that climb clearly (Mann–Kendall z > 5): no trend, unbounded residuals
    rng = random.Random(11)
    walks: list[list[int]] = []
    while len(walks) < 5:
        x, walk = 64 << 20, []
        for _ in range(100):
            x += round(rng.gauss(0, 1 << 20))
            walk.append(x)
        if z_of(walk) > 5:
            walks.append(walk)
    for k, walk in enumerate(walks):
        # WHEN
        rows = _judged(tmp_path / str(k), walk)
        # THEN none is a leak (some do not even pass the growth floors), and the reason of
        # those judged names the test that decided
        for row in rows:
            assert row["verdict"] != "leak", row["reason"]
            assert "KPSS" in str(row["reason"]) or "falls back" in str(row["reason"])


def test_a_walk_whose_residuals_look_bounded_is_no_leak_when_its_steps_are_independent(
    tmp_path: Path,
) -> None:
    # GIVEN one of the generator's climbing random walks (7 in 600 of them) whose residuals
    # around its trend look bounded over 100 points (KPSS η 0.17, under the 1% point 0.216)
    values = [int(v) for v in _hard(np.random.default_rng(226), "walk", 100, 1.0)]
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]  # all 100 points are read
    lag1 = statistics.correlation(steps[1:], steps[:-1])
    assert lag1 > -0.2  # a walk's steps: independent (a trend in stationary noise: about -0.5)
    # WHEN
    row = _one(tmp_path, values)
    # THEN it is no leak: bounded-looking residuals alone do not make stationary noise
    assert row["verdict"] == "drifts (random walk)"
    assert f"but its steps are independent (lag-1 correlation {lag1:.2f};" in str(row["reason"])


def test_one_level_shift_is_not_a_leak(tmp_path: Path) -> None:
    # GIVEN a pool grown once: flat, one step of 8 MiB, flat, with 64 KiB of jitter
    rng = random.Random(3)
    values = [(16 << 20) + (8 << 20) * (i >= 50) + rng.randint(0, 64 << 10) for i in range(100)]
    # WHEN
    row = _one(tmp_path, values)
    # THEN
    assert row["verdict"] == "one or two steps"
    assert "KPSS" in str(row["reason"])


@pytest.mark.parametrize("seen_from", [0, 30])
def test_two_steps_in_a_window_are_a_leak_when_the_boot_before_it_steps_alike(
    tmp_path: Path, seen_from: int
) -> None:
    # GIVEN a staircase of 3 MiB every 20 minutes (64 KiB of jitter) over 100 minutes, whose
    # last 45 minutes hold two of its steps and the boot before them two more; or the same
    # whose call site has rows only from minute 30 on (a module loaded then: not one series)
    rng = random.Random(5)
    values = [(8 << 20) + (3 << 20) * (i // 20) + rng.randint(0, 64 << 10) for i in range(100)]
    grower = "mm/leaky.c:10 func:leaky_alloc"
    write_series(
        tmp_path,
        [
            {**({GROWER: v} if i >= seen_from else {}), (None, "mm/steady.c", 1, "s"): 1 << 20}
            for i, v in enumerate(values)
        ],
    )
    window = analysis.Window(since="45m")  # minutes 54 to 99: the steps at 60 and 80
    # WHEN
    result = analysis.leaks(tmp_path, window, top_n=0)
    rows = {r["key"]: r for r in result.rows.to_pylist() + result.others.to_pylist()}
    # THEN with the whole boot behind it, it is a leak said from the boot's first minute with
    # the window's own verdict; without it (rows missing before the window), undecided
    row = rows[grower]
    if seen_from == 0:
        assert row["verdict"] == "leak", row["reason"]
        assert row["first_at"] == T0 and row["points"] == 100
        assert str(row["reason"]).startswith(
            "with the 54 points of its boot before the window (the window's 46 alone: too few "
            "steps to tell, "
        ), row["reason"]
    else:
        assert row["verdict"] == "too few steps to tell", row["reason"]
        assert row["first_at"] == T0 + timedelta(minutes=54) and row["points"] == 46


def test_a_staircase_whose_theil_sen_slope_sits_on_its_flat_runs_clears_the_rate_floor(
    tmp_path: Path,
) -> None:
    # GIVEN six hours, three minutes apart, of a pool that keeps 112 KiB five times (2 KiB of
    # jitter): 94 KiB/h end to end, but most pairs of points sit on its long flat runs, so the
    # median pairwise slope (Theil–Sen, computed here) is under the 64 KiB/h rate floor
    rng = random.Random(7)
    steps = [5, 15, 25, 100, 112]
    values = [
        (4 << 20) + (112 << 10) * sum(i >= s for s in steps) + rng.randint(0, 2 << 10)
        for i in range(120)
    ]
    read = picked(list(range(120)))  # what leaks reads of them (at most MAX_POINTS)
    slope = theil_sen([i * 3 / 60 for i in read], [values[i] for i in read])
    assert slope < analysis.LeakSettings.min_rate <= (values[-1] - values[0]) / (119 * 3 / 60)
    # WHEN
    row = _one(tmp_path, values, every=timedelta(minutes=3))
    # THEN it is a staircase leak, whose reason says why its slope is under the floor
    assert row["verdict"] == "leak", row["reason"]
    assert row["bytes_per_hour"] == pytest.approx(slope)
    assert f"Theil–Sen {slope:.0f} bytes/hour on its flat runs, its block medians " in str(
        row["reason"]
    )


def test_a_window_of_max_points_evenly_spaced_snapshots_is_read_whole(tmp_path: Path) -> None:
    # GIVEN exactly MAX_POINTS snapshots, three minutes apart, of a site that grows steadily
    values = [(8 << 20) + i * (64 << 10) + (i % 3) * 1024 for i in range(MAX_POINTS)]
    # WHEN
    row = _one(tmp_path, values, every=timedelta(minutes=3))
    # THEN every one is read (counted in doubles, two fell in one bucket: 119)
    assert row["points"] == MAX_POINTS


def test_a_hump_given_back_inside_the_window_is_not_a_leak(tmp_path: Path) -> None:
    # GIVEN 40 minutes that climb 9.75 MiB, then 20 that give 7 MiB of it back
    up = [(4 << 20) + i * (256 << 10) for i in range(40)]
    values = up + [up[-1] - (k + 1) * (7 << 20) // 20 for k in range(20)]
    assert values[-1] - values[0] >= 1 << 20  # still past the growth floor end to end
    # WHEN
    row = _one(tmp_path, values)
    # THEN
    assert row["verdict"] == "falls back (sawtooth or freed)"
    assert "gives back" in str(row["reason"])


def test_a_hump_given_back_after_the_window_is_not_a_leak(tmp_path: Path) -> None:
    # GIVEN an hour that climbs 15 MiB with 128 KiB of jitter, then half an hour that gives
    # 10 MiB of it back, in the same boot
    rng = random.Random(7)
    up = [(4 << 20) + i * (256 << 10) + rng.randint(0, 128 << 10) for i in range(60)]
    values = up + [up[-1] - (k + 1) * (10 << 20) // 30 for k in range(30)]
    root = tmp_path / "store"
    # a window that ends at the top: 60 points that rise steadily (z computed here)
    assert z_of(values[:60]) > 10

    # WHEN judged over that window (it ends 30 minutes before the newest snapshot)
    row = _one(root, values, analysis.Window(until="30m"))

    # THEN the fall after it, later in the same boot, decides: not a leak, and the reason says
    # how much of the window's growth was given back (10 of 15 MiB, less the noise allowance)
    assert row["verdict"] == "given back later in the boot", row["reason"]
    assert str(row["reason"]).startswith("given back later in the boot: after its last point")
    assert 0.5 < float(row["later_fall_share"]) <= 10 / 15  # type: ignore[arg-type]
    # AND the same window over a series that keeps climbing after it is a leak: what follows
    # the window only ever takes a verdict away
    still = up + [up[-1] + (k + 1) * (256 << 10) for k in range(30)]
    row = _one(tmp_path / "climbing", still, analysis.Window(until="30m"))
    assert row["verdict"] == "leak", row["reason"]
    assert float(row["later_fall_share"]) == 0  # type: ignore[arg-type]
    # AND an open window judges the hump by its fall inside the window, as before
    row = _one(root, values)
    assert row["verdict"] == "falls back (sawtooth or freed)"
    assert row["later_fall_share"] is None


def _hump_across_profiling_off(tmp_path: Path, after: list[int]) -> Path:
    """Write an hour that climbs 15 MiB with 128 KiB of jitter, five minutes of profiling off
    (counters frozen at the top), then ``after`` with profiling on again, in the same boot."""
    rng = random.Random(7)
    up = [(4 << 20) + i * (256 << 10) + rng.randint(0, 128 << 10) for i in range(60)]
    steady: Site = (None, "mm/steady.c", 1, "steady")
    root = tmp_path / "store"
    parts = [(up, 1), ([up[-1]] * 5, 0), (after, 1)]
    values = [(v, flag) for part, flag in parts for v in part]
    for i, (value, profiling) in enumerate(values):
        taken = snapshot(
            T0 + timedelta(minutes=i), {GROWER: value, steady: 1 << 20}, profiling=profiling
        )
        writing.write(root, taken)
    return root


def test_a_hump_given_back_after_a_stretch_of_profiling_off_is_not_a_leak(tmp_path: Path) -> None:
    # GIVEN a climb of 15 MiB, profiling switched off and on again (two epochs of one boot), then
    # half an hour that gives 10 MiB of it back: frees while profiling is off are lost, so the
    # counters after it can only overstate what is still held (../shared/docs/allocinfo.md 4.4)
    top = (4 << 20) + 59 * (256 << 10)
    falling = [top - (k + 1) * (10 << 20) // 30 for k in range(30)]
    root = _hump_across_profiling_off(tmp_path, falling)

    # WHEN the whole store is judged: the climb is an epoch of its own, which ends in the window
    rows = analysis.leaks(root, top_n=0)
    judged = rows.rows.to_pylist() + rows.others.to_pylist()

    # THEN the climb's epoch is not a leak: later in the same boot it gave most of it back, and
    # the reason says how much (10 of 15 MiB, less the noise allowance)
    (climb,) = [r for r in judged if not str(r["epoch"]).endswith("on#1")]
    assert climb["verdict"] == "given back later in the boot", climb["reason"]
    assert str(climb["reason"]).startswith("given back later in the boot: after its last point")
    assert 0.5 < float(climb["later_fall_share"]) <= 10 / 15
    assert rows.found == 0
    # AND a window that ends at the top, before the stretch of profiling off, says the same
    row = _one(root, [], analysis.Window(until="35m"))
    assert row["verdict"] == "given back later in the boot", row["reason"]


def test_a_climb_that_goes_on_after_a_stretch_of_profiling_off_is_a_leak_in_each_epoch(
    tmp_path: Path,
) -> None:
    # GIVEN the same climb and stretch of profiling off, then half an hour that climbs on
    top = (4 << 20) + 59 * (256 << 10)
    climbing = [top + (k + 1) * (256 << 10) for k in range(30)]
    root = _hump_across_profiling_off(tmp_path, climbing)
    # WHEN the whole store is judged
    rows = analysis.leaks(root, top_n=0)
    # THEN both epochs leak: what follows an epoch only ever takes a verdict away
    assert rows.found == 2
    assert [float(v) for v in rows.rows["later_fall_share"].to_pylist() if v is not None] == [0]


def test_a_compacted_store_is_followed_after_the_window_as_a_fresh_one(tmp_path: Path) -> None:
    # GIVEN the hump above, once as the recorder writes it and once compacted into its day's
    # file, where the snapshots are named by their times alone (snapshot_id NULL)
    rng = random.Random(7)
    up = [(4 << 20) + i * (256 << 10) + rng.randint(0, 128 << 10) for i in range(60)]
    values = up + [up[-1] - (k + 1) * (10 << 20) // 30 for k in range(30)]
    fresh = _one(tmp_path / "fresh", values, analysis.Window(until="30m"))
    root = tmp_path / "compacted"
    write_series(root, [{GROWER: v} for v in values])
    compaction.compact(root, now=T0 + timedelta(days=2), grace_s=0)
    (day_file,) = (root / "samples").rglob("*.parquet")
    assert pq.read_table(day_file, columns=["snapshot_id"])["snapshot_id"].null_count > 0
    # WHEN judged over the window that ends 30 minutes before the newest snapshot
    row = _one(root, values, analysis.Window(until="30m"))
    # THEN the fall after the window is read from the compacted file too, to the same figures
    assert row["verdict"] == "given back later in the boot", row["reason"]
    assert 0.5 < float(row["later_fall_share"]) <= 10 / 15  # type: ignore[arg-type]
    assert row == fresh


def _hump_then_leak(fall_at: int, n: int = 100, seed: int = 4) -> list[int]:
    """Return n points that climb 8 MiB to ``fall_at``, give 3 MiB back at once (a free), then
    grow 3 MiB every 60 points, all under 64 KiB of jitter."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        level = (4 << 20) + min(i, fall_at) * (8 << 20) // fall_at
        level += -(3 << 20) + (i - fall_at) * (3 << 20) // 60 if i >= fall_at else 0
        out.append(level + rng.randint(0, 64 << 10))
    return out


TWO_MINUTES = timedelta(minutes=2)  # 100 points span 3.3 hours: past short_hours (2 h)


def test_a_leak_after_a_hump_freed_at_once_is_a_leak_from_the_change_point(
    tmp_path: Path,
) -> None:
    # GIVEN a site that climbs 8 MiB in 80 minutes, frees 3 MiB at once, then leaks 1.5 MiB an
    # hour for 2 hours: the free is the only fall beyond the jitter (100 points: all read)
    values = _hump_then_leak(40)
    after = values[40:]
    hours = [i * 2 / 60 for i in range(len(after))]
    assert z_of(after) > 10 and min(b - a for a, b in zip(values, values[1:], strict=False)) < -(
        2 << 20
    )
    # WHEN
    row = _one(tmp_path, values, every=TWO_MINUTES)
    # THEN the part after the free is the leak: from its first point, at its own rate, and the
    # reason says where it starts and that the whole window is no leak
    assert row["verdict"] == "leak", row["reason"]
    reason = str(row["reason"])
    assert reason.startswith("since a change point (it falls ")
    assert "the whole window is no leak): trend in stationary noise" in reason
    fell = (values[39] - values[40]) / (1 << 20)
    assert f"it falls {fell:.1f} MiB at once there" in reason
    assert row["points"] == len(after)
    assert row["first_at"] == T0 + 40 * TWO_MINUTES
    assert (row["first_bytes"], row["last_bytes"]) == (after[0], after[-1])
    assert row["bytes_per_hour"] == pytest.approx(theil_sen(hours, after))


def test_a_rise_after_a_late_fall_is_no_leak_a_sawtooth_tooth_looks_the_same(
    tmp_path: Path,
) -> None:
    # GIVEN the same shape, freed at point 60 of 100: what follows the free is 80 minutes of
    # steady rise, as straight as a sawtooth's last tooth, and less than half the window
    values = _hump_then_leak(60)
    assert z_of(values[60:]) > 5 and len(values[60:]) == 40
    # WHEN
    rows = _judged(tmp_path, values, every=TWO_MINUTES)
    # THEN no leak is said: a change point needs half of the window after it
    assert all(r["verdict"] != "leak" for r in rows), [r["reason"] for r in rows]


def test_a_window_under_two_hours_is_given_no_change_point(tmp_path: Path) -> None:
    # GIVEN the early free of the first case, its 100 points a minute apart: 99 minutes, in
    # which a sawtooth of a 40-minute period shows one free and a whole tooth after it
    values = _hump_then_leak(40)
    # WHEN
    rows = _judged(tmp_path, values)
    # THEN nothing is judged from the free: no leak is said
    assert all(r["verdict"] != "leak" for r in rows), [r["reason"] for r in rows]
    assert not any(str(r["reason"]).startswith("since a change point") for r in rows)


@pytest.mark.parametrize("n", [3, 5, 7])
def test_too_few_points_says_so_and_how_confident_it_could_be(tmp_path: Path, n: int) -> None:
    # GIVEN n perfectly increasing points (fewer than the 8 a verdict needs)
    values = [(4 << 20) + i * (2 << 20) for i in range(n)]
    # WHEN
    row = _one(tmp_path, values)
    # THEN the best confidence a perfect order of n reaches, Φ((S - 1) / √var), is said
    best = (n * (n - 1) / 2 - 1) / math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    reachable = 0.5 * (1 + math.erf(best / math.sqrt(2)))
    assert row["verdict"] == "too few points"
    assert str(row["reason"]).startswith(f"{n} points: too few to tell (need 8)")
    assert f"at most {100 * reachable:.1f}% at {n} points" in str(row["reason"])


def test_bench_decoys_top_up_every_kind_and_leave_the_other_series_alone(tmp_path: Path) -> None:
    # GIVEN a small generated store, and the same with at least 20 of every decoy kind (the
    # bench's Config(decoys=200) makes a 2% false-positive rate measurable)
    small = Config(tags=300, snapshots=60, seed=5, rows_per_file=60)
    plain = generate(tmp_path / "plain", small)
    topped = generate(tmp_path / "topped", replace(small, decoys=20))
    # THEN every decoy kind has at least 20 call sites, taken from the always-zero ones
    counts = Counter(topped.classes.values())
    assert all(counts[kind] >= 20 for kind in DECOY_KINDS), counts
    assert Counter(plain.classes.values())["walk"] < 20
    assert topped.extra and all(plain.classes[t] == "zero" for t in topped.extra)
    assert {t: c for t, c in topped.classes.items() if t not in topped.extra} == {
        t: c for t, c in plain.classes.items() if t not in topped.extra
    }

    # AND every other call site's series is the same, snapshot for snapshot
    def values(root: Path) -> dict[tuple[int, object], int]:
        # by time: a compacted file names a snapshot by its time (snapshot_id NULL)
        table = pq.ParquetDataset(root / "samples", partitioning=None).read(
            columns=["tag_id", "taken_at", "bytes"]
        )
        rows = zip(*(table[c].to_pylist() for c in ("tag_id", "taken_at", "bytes")), strict=True)
        return {(t, s): b for t, s, b in rows if t not in topped.extra}

    before, after = values(tmp_path / "plain"), values(tmp_path / "topped")
    assert before and before == after
