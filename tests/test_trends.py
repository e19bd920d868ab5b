"""The window analyses: leaks, growth, top and history (docs/analyses.md).

Expectations are computed here, independently of the SQL: a pure-Python Mann–Kendall and
Theil–Sen for one series, medians and sparklines by hand, and the generator's ground truth.
"""

from __future__ import annotations

import math
import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from allocsnap import analysis
from allocsnap.cli import app
from allocsnap.errors import ExitCode
from allocsnap.kernel import capture
from allocsnap.model import SAMPLE_SCHEMA, Filter, Snapshot, SnapshotMeta, tag_id
from allocsnap.present import window_tables
from allocsnap.store import writing
from bench.generate import LEAK_CLASSES, SMALL, generate

DATA = Path(__file__).parent / "data"
PUBLIC = DATA / "public"
REAL = DATA / "real" / "6.12.117-allocsnap" / "boot-1"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
runner = CliRunner()

Site = tuple[str | None, str, int, str]  # module, file, line, function
GROWER: Site = (None, "mm/leaky.c", 10, "leaky_alloc")


def data(path: Path) -> Path:
    """Return a capture in tests/data; a missing one fails rather than skips."""
    if not path.exists():
        pytest.fail(f"test data {path} is missing")
    return path


def snapshot(
    at: datetime,
    values: dict[Site, int],
    *,
    boot: str = "boot-a",
    profiling: int = 1,
    modules: tuple[str, ...] | None = None,
) -> Snapshot:
    """Return a snapshot holding one row per call site."""
    rows = [
        {
            "ordinal": i,
            "tag_id": tag_id(module, file, line, function),
            "occurrence": 0,
            "file": file,
            "line": line,
            "module": module,
            "function": function,
            "bytes": value,
            "calls": max(value // 64, 0),
            "accurate": True,
            "extras": None,
        }
        for i, ((module, file, line, function), value) in enumerate(sorted(values.items(), key=str))
    ]
    ident = f"{abs(hash((at, boot))) % 16**12:012x}"
    meta = SnapshotMeta(
        snapshot_id=ident,
        taken_at=at,
        host="test",
        source="procfs",
        format="1.0",
        boot_id=boot,
        profiling=profiling,
        modules=modules,
        rows=len(rows),
    )
    samples = pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)
    # a snapshot's row carries its totals, as every writer's does: readers check them
    return Snapshot(meta=capture.with_totals(meta, samples), samples=samples)


def write_series(
    root: Path,
    series: list[dict[Site, int]],
    every: timedelta = timedelta(minutes=1),
    **kwargs: object,
) -> None:
    """Write one snapshot ``every`` minute (by default), through the store's own writer."""
    for i, values in enumerate(series):
        writing.write(root, snapshot(T0 + i * every, values, **kwargs))  # type: ignore[arg-type]


def jittery(n: int, seed: int = 3) -> list[dict[Site, int]]:
    """Return n snapshots of one steadily growing site among five jittering ones."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        values: dict[Site, int] = {
            (None, "fs/jitter.c", k, f"jitter_{k}"): (50 << 20) + rng.randint(-(1 << 20), 1 << 20)
            for k in range(5)
        }
        values[GROWER] = (8 << 20) + i * (100 << 10) + rng.randint(-(20 << 10), 20 << 10)
        out.append(values)
    return out


# -- independent statistics --------------------------------------------------------------------


def mann_kendall(xs: list[int]) -> tuple[int, float, float]:
    """Return Mann–Kendall S, its variance (with ties) and the one-sided confidence Φ(z)."""
    n = len(xs)
    s = sum((xs[j] > xs[i]) - (xs[j] < xs[i]) for i in range(n) for j in range(i + 1, n))
    ties = [xs.count(v) for v in set(xs)]
    var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties)) / 18
    z = (s - (s > 0) + (s < 0)) / math.sqrt(var) if var > 0 else 0.0
    return s, var, 0.5 * (1 + math.erf(z / math.sqrt(2)))


def theil_sen(hours: list[float], xs: list[int]) -> float:
    """Return the median of the pairwise slopes, per hour."""
    n = len(xs)
    return statistics.median(
        (xs[j] - xs[i]) / (hours[j] - hours[i]) for i in range(n) for j in range(i + 1, n)
    )


# -- leaks -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_steady_grower_ranks_first_and_alone_with_the_independent_statistics(
    tmp_path: Path,
) -> None:
    # GIVEN 40 snapshots: one site grows 100 KiB a minute, five jitter by ±1 MiB
    series = jittery(40)
    write_series(tmp_path, series)
    # WHEN
    result = analysis.leaks(tmp_path)
    # THEN only the grower is reported, with the statistics a plain Python loop computes
    assert result.rows["key"].to_pylist() == ["mm/leaky.c:10 func:leaky_alloc"]
    row = result.rows.to_pylist()[0]
    xs = [values[GROWER] for values in series]
    hours = [i / 60 for i in range(len(xs))]
    s, var, confidence = mann_kendall(xs)
    assert row["mk_s"] == s
    assert row["mk_var"] == pytest.approx(var)
    assert row["confidence"] == pytest.approx(confidence, abs=1e-6)
    assert row["bytes_per_hour"] == pytest.approx(theil_sen(hours, xs))
    assert row["first_bytes"] == xs[0] and row["last_bytes"] == xs[-1]
    assert row["growth_bytes"] == xs[-1] - xs[0]
    assert row["reason"].startswith("trend in stationary noise")
    assert result.found == 1


@pytest.mark.slow
def test_a_steady_series_reports_nothing(tmp_path: Path) -> None:
    # GIVEN sites that never change
    steady: dict[Site, int] = {(None, "mm/a.c", k, f"f{k}"): (k + 1) << 20 for k in range(5)}
    write_series(tmp_path, [steady] * 20)
    # WHEN
    result = analysis.leaks(tmp_path)
    # THEN
    assert result.found == 0 and result.others.num_rows == 0


@pytest.mark.slow
def test_sampling_bounds_the_points_and_keeps_the_ends(tmp_path: Path) -> None:
    # GIVEN 40 snapshots, read at no more than 9 points
    series = jittery(40)
    write_series(tmp_path, series)
    # WHEN
    settings = analysis.LeakSettings(max_points=9, min_points=5)
    row = analysis.leaks(tmp_path, settings=settings).rows.to_pylist()[0]
    # THEN the first and the last snapshot are among them
    assert row["points"] <= 9
    assert (row["first_bytes"], row["last_bytes"]) == (series[0][GROWER], series[-1][GROWER])


@pytest.mark.slow
def test_generated_leaks_are_found_and_decoys_are_not(tmp_path: Path) -> None:
    # GIVEN the small generated store: leaks, stairs, steps, sawtooth, humps, noise, drift
    truth = generate(tmp_path / "store", SMALL)
    classes = {truth.sites[t]: c for t, c in truth.classes.items()}
    # WHEN
    found = set(analysis.leaks(tmp_path / "store", top_n=0).rows["key"].to_pylist())
    # THEN
    true = {site for site, c in classes.items() if c in LEAK_CLASSES}
    precision = len(found & true) / len(found)
    recall = len(found & true) / len(true)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    decoys = {classes[site] for site in found - true}
    assert not decoys & {"step", "sawtooth", "hump", "noise", "churn", "steady", "module"}


def test_a_z_that_rounds_to_zero_is_said_as_0_0_as_the_spark_port_says_it(
    tmp_path: Path,
) -> None:
    # GIVEN the small generated store read at 80 points, where a call site that grew past the
    # floor has a Mann–Kendall S just below 0
    generate(tmp_path / "store", SMALL)
    settings = analysis.LeakSettings(max_points=80)
    # WHEN
    result = analysis.leaks(tmp_path / "store", settings=settings, top_n=0)
    # THEN a z under 0.05 either way is written 0.0 (DuckDB's printf wrote -0.0 for -0.002,
    # Spark's port 0.0), judged from the row's own S and variance
    near_zero = [
        r
        for r in result.others.to_pylist()
        if r["verdict"] == "no significant trend"
        and abs((r["mk_s"] - math.copysign(1, r["mk_s"])) / math.sqrt(r["mk_var"])) < 0.05
    ]
    assert any(r["mk_s"] < 0 for r in near_zero)
    for r in near_zero:
        assert "Mann–Kendall z=0.0 over" in r["reason"], r["reason"]


@pytest.mark.slow
def test_leaks_says_the_same_bytes_however_many_threads_duckdb_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the small generated store, and DuckDB run as on machines of 1, 2 and 8 cores (its
    # threads deliver the rows of one series in a different order each time)
    generate(tmp_path / "store", SMALL)
    connect = duckdb.connect
    outputs = set()
    for threads in (1, 2, 8, 8):
        monkeypatch.setattr(
            duckdb,
            "connect",
            lambda *args, threads=threads, **kwargs: connect(
                *args, **{**kwargs, "config": {"threads": threads}}
            ),
        )
        # WHEN
        result = runner.invoke(app, ["leaks", "--store", str(tmp_path / "store"), "-f", "json"])
        assert result.exit_code == 0, result.output
        outputs.add(result.stdout)
    # THEN every statistic of every series, leak or not, is the same to the last digit
    assert len(outputs) == 1
    assert '"step_lag1"' in outputs.pop()


@pytest.mark.slow
def test_a_window_across_a_reboot_and_profiling_off_is_split_and_said(tmp_path: Path) -> None:
    # GIVEN a boot, then another boot where profiling is off for two snapshots
    series = jittery(30)
    write_series(tmp_path, series[:15], boot="boot-a")
    for i, values in enumerate(series[15:]):
        off = i in (5, 6)
        at = T0 + timedelta(minutes=15 + i)
        writing.write(tmp_path, snapshot(at, values, boot="boot-b", profiling=0 if off else 1))
    # WHEN
    result = analysis.leaks(tmp_path, settings=analysis.LeakSettings(min_points=5))
    # THEN three epochs, the frozen snapshots left out, and a warning for each
    epochs = result.epochs.rows.to_pylist()
    assert [e["epoch"] for e in epochs] == ["test boot-a", "test boot-b", "test boot-b on#1"]
    assert [e["snapshots"] for e in epochs] == [15, 5, 8]
    assert sum(e["profiling_off"] for e in epochs) == 2
    assert any("crosses 3 epochs" in w for w in result.epochs.warnings)
    assert any("profiling off" in w for w in result.epochs.warnings)
    assert set(result.rows["epoch"].to_pylist()) <= {e["epoch"] for e in epochs}


@pytest.mark.slow
def test_an_unloaded_module_breaks_the_series_instead_of_freeing(tmp_path: Path) -> None:
    # GIVEN a module site that climbs, vanishes while unloaded, and comes back from zero
    site: Site = ("dummy", "drivers/net/dummy.c", 42, "dummy_alloc")
    series = []
    for i in range(30):
        values: dict[Site, int] = {(None, "mm/a.c", 1, "steady"): 1 << 20}
        if i < 12:
            values[site] = (4 << 20) + i * (256 << 10)
        elif i >= 18:
            values[site] = (i - 18) * 1024
        series.append(values)
    write_series(tmp_path, series)
    # WHEN
    result = analysis.leaks(tmp_path, settings=analysis.LeakSettings(min_points=5), top_n=0)
    # THEN the climb before the unload is judged on its own, marked as part 1 of 2
    rows = result.rows.to_pylist()
    assert [(r["key"], r["part"], r["parts"], r["points"]) for r in rows] == [
        ("drivers/net/dummy.c:42 [dummy] func:dummy_alloc", 1, 2, 12)
    ]
    assert rows[0]["last_bytes"] == series[11][site]


@pytest.mark.slow
def test_since_counts_back_from_the_newest_snapshot(tmp_path: Path) -> None:
    # GIVEN an hour of snapshots long ago
    write_series(tmp_path, jittery(60))
    # WHEN
    span = analysis.epochs(tmp_path, analysis.Window(since="10m"))
    # THEN the last ten minutes of the store, not of the wall clock
    assert span.snapshots == 11
    assert span.last_at == T0 + timedelta(minutes=59)


@pytest.mark.slow
def test_fail_on_leak_exits_5_after_rendering(tmp_path: Path) -> None:
    # GIVEN
    write_series(tmp_path, jittery(30))
    # WHEN
    result = runner.invoke(app, ["leaks", "--store", str(tmp_path), "--fail-on-leak"])
    # THEN
    assert result.exit_code == ExitCode.LEAK_FOUND
    assert "mm/leaky.c:10 func:leaky_alloc" in result.stdout
    assert "trend in stationary noise" in result.stdout


@pytest.mark.slow
def test_tag_filters_select_call_sites(tmp_path: Path) -> None:
    # GIVEN two steady growers, one under fs/ and one under mm/, among jittering fs/ sites
    fs_grower: Site = (None, "fs/grow.c", 7, "grow_alloc")
    series = jittery(30)
    for i, values in enumerate(series):
        values[fs_grower] = (4 << 20) + i * (100 << 10)
    write_series(tmp_path, series)
    fs_key, mm_key = "fs/grow.c:7 func:grow_alloc", "mm/leaky.c:10 func:leaky_alloc"
    # WHEN no filter, THEN both are leaks
    assert set(analysis.leaks(tmp_path).rows["key"].to_pylist()) == {fs_key, mm_key}
    # WHEN a filter keeps one file tree, THEN only its call sites are judged, and its grower found
    for tree, key in [("fs/", fs_key), ("mm/", mm_key)]:
        result = analysis.leaks(tmp_path, keep=Filter(file=tree + "*"))
        assert result.rows["key"].to_pylist() == [key]
        assert result.found == 1
        judged = result.rows["key"].to_pylist() + result.others["key"].to_pylist()
        assert all(k.startswith(tree) for k in judged), judged


# -- the public six-day ice leak: three points -------------------------------------------------


@pytest.fixture
def ice_store(tmp_path: Path) -> Path:
    """Return a store of the three public ice excerpts, imported at day 0, 4 and 6."""
    root = tmp_path / "ice"
    for name, at in (
        ("11_pulchart_ice_fresh_boot_sort_g_tail15_2025-06-26.txt", "2025-06-26T12:00:00Z"),
        ("12_pulchart_ice_uptime_4days_sort_g_tail15_2025-06-30.txt", "2025-06-30T12:00:00Z"),
        ("13_pulchart_ice_uptime_6days_sort_g_tail15_2025-07-02.txt", "2025-07-02T12:00:00Z"),
    ):
        args = ["import", str(data(PUBLIC / name)), "--at", at, "--host", "pulchart"]
        result = runner.invoke(app, [*args, "--store", str(root)])
        assert result.exit_code == 0, result.output
    return root


ICE = "drivers/net/ethernet/intel/ice/ice_txrx.c:681 [ice] func:ice_alloc_mapped_page"
ICE_BYTES = [1105125376, 2544877568, 3341238272]  # day 0, 4, 6 in the excerpts


@pytest.mark.slow
def test_top_puts_the_ice_driver_first(ice_store: Path) -> None:
    row = analysis.top(ice_store).rows.to_pylist()[0]
    assert row["key"] == ICE
    assert row["delta_bytes"] == ICE_BYTES[2] - ICE_BYTES[0]
    assert row["bytes_per_hour"] == round((ICE_BYTES[2] - ICE_BYTES[0]) / (6 * 24))


@pytest.mark.slow
def test_growth_compares_medians_as_a_rate(ice_store: Path) -> None:
    # A is day 0; B is days 4 and 6, whose median time is day 5
    row = analysis.growth(ice_store).rows.to_pylist()[0]
    median_b = statistics.median(ICE_BYTES[1:])
    assert row["key"] == ICE
    assert (row["median_a"], row["median_b"]) == (ICE_BYTES[0], median_b)
    assert row["bytes_per_hour"] == round((median_b - ICE_BYTES[0]) / (5 * 24))


@pytest.mark.slow
def test_history_shows_the_ice_series(ice_store: Path) -> None:
    result = analysis.history(ice_store, "ice_alloc_mapped_page")
    assert result.rows["bytes"].to_pylist() == ICE_BYTES
    report = window_tables.history_report(result, analysis.Grouping(), points=False)
    # by hand: (v - min) / (max - min) * 7, rounded: 0, 4.5 -> 5, 7
    assert report.rows["sparkline"].to_pylist() == ["▁▆█"]
    cli = runner.invoke(app, ["history", "ice_alloc", "--store", str(ice_store), "-f", "csv"])
    assert cli.exit_code == 0
    assert cli.stdout.splitlines()[1:] == [
        f"{ICE},pulchart,pulchart boot unknown,{at},{b},{c},1"
        for at, b, c in zip(
            ("2025-06-26T12:00:00+00:00", "2025-06-30T12:00:00+00:00", "2025-07-02T12:00:00+00:00"),
            ICE_BYTES,
            (139252, 315003, 412215),
            strict=True,
        )
    ]


@pytest.mark.slow
def test_leaks_says_three_points_are_too_few_for_a_trend_test(ice_store: Path) -> None:
    # Mann–Kendall on 3 increasing points: S = 3, var = 3*2*11/18, z = 2/sqrt(var) ≈ 1.04,
    # a confidence of 85%: even a perfect order of three cannot reach 99%
    result = analysis.leaks(ice_store)
    assert result.found == 0
    ice = [r for r in result.others.to_pylist() if r["key"] == ICE][0]
    assert ice["verdict"] == "too few points"
    assert ice["confidence"] == pytest.approx(mann_kendall(ICE_BYTES)[2], abs=1e-6)
    assert ice["reason"].startswith("3 points: too few to tell (need 8)")
    text = runner.invoke(app, ["leaks", "--store", str(ice_store)]).stdout
    assert "no leaks found" in text
    assert "fewer than 8 points a trend test cannot be confident" in text


# -- real VM captures: modules loaded, then removed ---------------------------------------------


@pytest.mark.slow
def test_real_module_rows_that_vanish_are_not_frees(tmp_path: Path) -> None:
    # GIVEN boot-1 of the 6.12 VM: modules loaded at snap-3, removed before snap-4
    for i, seconds in enumerate((1.46, 3.46, 7.81, 11.56, 15.73)):
        at = (T0 + timedelta(seconds=seconds)).isoformat()
        args = ["import", str(data(REAL / f"snap-{i}.txt")), "--at", at, "--host", "vm"]
        assert runner.invoke(app, [*args, "--store", str(tmp_path)]).exit_code == 0
    # WHEN
    moved = analysis.top(tmp_path, top_n=0).rows.to_pylist()
    # THEN ext4's rows, present only while loaded (snap-3), are not reported as freed by the
    # unload: they did not move while present, so top does not list them at all
    assert [r for r in moved if "[ext4]" in r["key"]] == []
    assert moved, "top lists the call sites that did move"
    history = analysis.history(tmp_path, "ext4", grouping=analysis.Grouping("module"))
    assert history.rows["taken_at"].to_pylist() == [T0 + timedelta(seconds=11.56)]
    assert history.rows["bytes"].to_pylist()[0] > 0
    assert len(history.rows) == 1  # present in one snapshot only


# -- the commands ------------------------------------------------------------------------------


@pytest.mark.slow
def test_csv_is_data_only_and_epoch_warnings_go_to_stderr(tmp_path: Path) -> None:
    # GIVEN a window across a reboot
    series = jittery(20)
    write_series(tmp_path, series[:10], boot="boot-a")
    for i, values in enumerate(series[10:]):
        writing.write(tmp_path, snapshot(T0 + timedelta(minutes=10 + i), values, boot="boot-b"))
    # WHEN
    result = runner.invoke(app, ["top", "--store", str(tmp_path), "-f", "csv"])
    # THEN
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("key,host,epoch,status,first_bytes,last_bytes")
    assert "warning" not in result.stdout
    assert "warning: the window crosses 2 epochs" in result.stderr


def test_top_shows_both_directions(tmp_path: Path) -> None:
    # GIVEN one site that grows by 3 MiB and one that shrinks by 5 MiB
    up: Site = (None, "mm/up.c", 1, "up")
    down: Site = (None, "mm/down.c", 2, "down")
    write_series(tmp_path, [{up: 1 << 20, down: 8 << 20}, {up: 4 << 20, down: 3 << 20}])
    # WHEN
    rows = analysis.top(tmp_path).rows.to_pylist()
    # THEN largest |Δ| first, whatever its sign
    assert [(r["key"], r["delta_bytes"]) for r in rows] == [
        ("mm/down.c:2 func:down", -(5 << 20)),
        ("mm/up.c:1 func:up", 3 << 20),
    ]


@pytest.mark.slow
def test_top_reads_a_bounded_sample_and_keeps_each_epochs_ends(tmp_path: Path) -> None:
    # GIVEN 50 snapshots of six jittering sites, and a seventh that appears at snapshot 20
    series = jittery(50)
    late: Site = (None, "mm/late.c", 7, "late_alloc")
    for i, values in enumerate(series[20:], start=20):
        values[late] = (1 << 20) + i * (64 << 10)
    write_series(tmp_path, series)

    def moved(**kw: object) -> dict[str, tuple[int, int, str]]:
        rows = analysis.top(tmp_path, top_n=0, **kw).rows.to_pylist()  # type: ignore[arg-type]
        return {r["key"]: (r["first_bytes"], r["last_bytes"], r["status"]) for r in rows}

    # WHEN top reads every snapshot, the default 120 (more than there are), or only 2 per epoch
    every, default, two = moved(max_points=None), moved(), moved(max_points=2)
    # THEN the sites present all along compare the first snapshot with the last, whatever the bound
    ends = {
        f"{file}:{line} func:{function}": (series[0][site], series[-1][site], "")
        for site in series[0]
        for (_, file, line, function) in [site]
        if series[0][site] != series[-1][site]
    }
    assert {k: v for k, v in two.items() if k in ends} == ends
    assert {k: v for k, v in every.items() if k in ends} == ends
    # AND the late site is new from its own first snapshot when every snapshot is read; read at
    # the epoch's two ends only, it is seen once and has not moved
    assert every["mm/late.c:7 func:late_alloc"] == (series[20][late], series[-1][late], "new")
    assert default == every
    assert "mm/late.c:7 func:late_alloc" not in two
    # AND the command refuses a bound of one snapshot
    done = runner.invoke(app, ["top", "--store", str(tmp_path), "--max-points", "1"])
    assert (
        done.exit_code == 2
        and "--max-points must be 0 (every snapshot) or at least 2" in done.stderr
    )


@pytest.mark.slow
def test_growth_split_and_json_leaks(tmp_path: Path) -> None:
    # GIVEN 30 minutes of the jittery series
    series = jittery(30)
    write_series(tmp_path, series)
    # WHEN B starts 10 minutes before the newest snapshot
    row = analysis.growth(tmp_path, split="10m").rows.to_pylist()[0]
    # THEN medians of minutes 0–18 and 19–29, 15 minutes apart (minute 9 against minute 24)
    assert row["key"] == "mm/leaky.c:10 func:leaky_alloc"
    a = statistics.median(v[GROWER] for v in series[:19])
    b = statistics.median(v[GROWER] for v in series[19:])
    assert (row["median_a"], row["median_b"]) == (a, b)
    assert row["bytes_per_hour"] == round((b - a) / 0.25)
    # AND the JSON of leaks carries every statistic
    out = runner.invoke(app, ["leaks", "--store", str(tmp_path), "-f", "json"]).stdout
    assert '"verdict": "leak"' in out and '"mk_s": ' in out


@pytest.mark.slow
def test_grouping_sums_members_before_the_floors(tmp_path: Path) -> None:
    # GIVEN two sites of one file, each growing 40 KiB an hour for 19 hours: 760 KiB each
    sites: list[Site] = [(None, "net/core/skb.c", 10, "a"), (None, "net/core/skb.c", 20, "b")]
    series = [dict.fromkeys(sites, (1 << 20) + i * (40 << 10)) for i in range(20)]
    write_series(tmp_path, series, every=timedelta(hours=1))
    # WHEN
    by_tag = analysis.leaks(tmp_path)
    by_file = analysis.leaks(tmp_path, grouping=analysis.Grouping("file"))
    # THEN each site alone is under the floors (1 MiB over a window past 16 h, 64 KiB/h); the
    # file, their sum (1.5 MiB at 80 KiB/h), is over both
    assert by_tag.found == 0
    assert by_file.rows["key"].to_pylist() == ["net/core/skb.c"]
    assert by_file.rows["growth_bytes"].to_pylist() == [2 * 19 * (40 << 10)]


@pytest.mark.slow
def test_a_short_window_scales_the_growth_floor_to_the_rate_floor(tmp_path: Path) -> None:
    # GIVEN an hour, a snapshot a minute: a site leaking 512 KiB an hour (12 MiB a day), one
    # rising 32 KiB an hour (under the 64 KiB/h rate floor), and one growing 512 KiB in a step
    fast: Site
    slow: Site
    step: Site
    fast, slow, step = (
        (None, "fs/fast.c", 1, "f"),
        (None, "fs/slow.c", 2, "s"),
        (None, "fs/step.c", 3, "t"),
    )
    series: list[dict[Site, int]] = [
        {
            fast: (4 << 20) + i * (512 << 10) // 60,
            slow: (4 << 20) + i * (32 << 10) // 60,
            step: (4 << 20) + (512 << 10) * (i >= 30),
        }
        for i in range(61)
    ]
    write_series(tmp_path, series)
    # WHEN
    result = analysis.leaks(tmp_path, top_n=0)
    # THEN the fast leak grew 512 KiB, half the 1 MiB floor, but past what the 64 KiB/h rate
    # floor adds up to in an hour (64 KiB): it is judged, a leak, flagged short
    assert result.rows["key"].to_pylist() == ["fs/fast.c:1 func:f"]
    assert result.rows["growth_bytes"].to_pylist() == [60 * (512 << 10) // 60]
    assert "short: 1.0 h" in result.rows["reason"][0].as_py()
    # AND the slow one is under both floors; the step is judged, and is no leak
    others = dict(
        zip(result.others["key"].to_pylist(), result.others["verdict"].to_pylist(), strict=True)
    )
    assert "fs/slow.c:2 func:s" not in others
    assert others["fs/step.c:3 func:t"] != "leak"


@pytest.mark.slow
def test_a_staircase_of_small_steps_is_told_from_a_walk_by_its_skewed_steps(tmp_path: Path) -> None:
    # GIVEN 120 snapshots two minutes apart: a staircase that keeps 100 KiB at about one
    # snapshot in eight, under 20 KiB of jitter (its steps neither jump past five noise sds
    # nor anti-correlate), and a random walk that climbs 18 KiB a snapshot on average
    stairs: Site = (None, "fs/stairs.c", 7, "keep")
    walk: Site = (None, "fs/walk.c", 8, "wander")
    rng = random.Random(0)
    level, wander = 8 << 20, float(8 << 20)
    series: list[dict[Site, int]] = []
    for _ in range(120):
        if rng.random() < 0.12:
            level += 100 << 10
        wander += rng.gauss(18 << 10, 40 << 10)
        series.append({stairs: level + int(rng.gauss(0, 20 << 10)), walk: int(wander)})
    write_series(tmp_path, series, every=timedelta(minutes=2))
    # WHEN every point is read
    result = analysis.leaks(tmp_path, top_n=0, settings=analysis.LeakSettings(max_points=None))
    # THEN the staircase is a leak, decided by the skewness of its steps (computed here)
    values = [v[stairs] for v in series]
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    mean = sum(steps) / len(steps)
    sd = math.sqrt(sum((d - mean) ** 2 for d in steps) / len(steps))
    skew = sum((d - mean) ** 3 for d in steps) / len(steps) / sd**3
    z = skew * math.sqrt(len(steps) / 6)
    assert z > 2.326
    assert result.rows["key"].to_pylist() == ["fs/stairs.c:7 func:keep"]
    assert f"skewed up: skewness {skew:.2f}, z={z:.1f}" in result.rows["reason"][0].as_py()
    assert result.rows["step_skew"][0].as_py() == pytest.approx(skew, rel=1e-9)
    # AND the walk, whose steps are symmetric, still drifts
    (other,) = result.others.to_pylist()
    assert other["key"] == "fs/walk.c:8 func:wander" and other["verdict"] == "drifts (random walk)"
    assert "nor skewed up" in other["reason"]
