"""Spark SQL (queries/spark/, Spark in local mode) and DuckDB agree on the same store.

The store is a small fleet: host ``bench`` from bench/generate.py (two hours at 10 s of 1,000
call sites with ground-truth leaks, a reboot and a module unloaded then reloaded, in hour files
like the recorder's compacted ones), and host ``vm1`` from real captures in tests/data, written
hot by the store's Writer, its first hour compacted while the replaced hot files are still
there (a compaction's grace period), and one snapshot whose write stopped before its commit
point. DuckDB's answers come from allocsnap's own functions (``analysis``); Spark's from
``allocsnap.spark``; the views are also checked against counts taken from the captures.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from allocsnap import analysis
from allocsnap.analysis import query
from allocsnap.kernel import capture, source
from allocsnap.model import Snapshot
from allocsnap.store import compaction, layout, writing
from bench.generate import SMALL, generate

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

if shutil.which("java") is None:
    pytest.skip(
        "Java is missing: Spark needs a Java 17+ runtime (.ci/run installs "
        "openjdk-17-jre-headless)",
        allow_module_level=True,
    )

from allocsnap import spark as on_spark

pytestmark = [
    pytest.mark.slow,  # a JVM starts Spark
    pytest.mark.filterwarnings(
        # pyspark checks the pandas version when it converts; the tests only use Arrow
        "ignore:PySpark does not yet fully support pandas:FutureWarning"
    ),
]

BOOT = Path(__file__).parent / "data" / "real" / "6.12.117-allocsnap" / "boot-1"
T0 = datetime(2026, 11, 25, 13, 40, tzinfo=UTC)
STEP = timedelta(minutes=4)
LOCAL = {
    "spark.driver.memory": "2g",
    "spark.sql.shuffle.partitions": "4",  # a small store on two cores, not a cluster
    "spark.ui.enabled": "false",
}


def _snap(index: int) -> Snapshot:
    raw = source.read_dump(str(BOOT / f"snap-{index % 5}.txt"))
    return capture.snapshot(raw, host="vm1", at=T0 + index * STEP)


class Fleet:
    """The store and what was written to it."""

    def __init__(self, root: Path, written: list[Snapshot], uncommitted: Snapshot) -> None:
        self.root = root
        self.written = written
        self.uncommitted = uncommitted


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    root = tmp_path_factory.mktemp("fleet") / "store"
    written = [_snap(i) for i in range(12)]  # 13:40 to 14:24
    for snap in written:
        writing.write(root, snap)
    # the 13:00 hour compacted; its hot inputs stay for readers that listed them (grace)
    compaction.compact(root, T0.replace(hour=14, minute=30), days=False, grace_s=3600)
    # host bench joins the fleet (generated beside it: compaction leaves its files alone)
    bench = root.parent / "bench"
    generate(bench, SMALL)
    for part in ("snapshots/host=bench", "samples/host=bench", "tags/generated.parquet"):
        (bench / part).rename(root / part)
    # a write interrupted before its commit point: tags and samples, no snapshots row
    uncommitted = capture.snapshot(
        source.read_dump(str(BOOT / "snap-4.txt")), host="vm1", at=T0 + 13 * STEP
    )
    writing.write(root, uncommitted).unlink()
    return Fleet(root, written, uncommitted)


@pytest.fixture(scope="session")
def spark(fleet: Fleet) -> Iterator[SparkSession]:
    session = on_spark.session("local[2]", LOCAL)
    session.sparkContext.setLogLevel("ERROR")
    on_spark.register(session, str(fleet.root))
    yield session
    session.stop()


def test_the_fleet_holds_every_kind_of_file(fleet: Fleet) -> None:
    # GIVEN the store, THEN it has generated hour files, a compacted hour, the hot files that
    # compaction replaced (still there) and hot files it did not touch, and an uncommitted one
    names = {p.name for p in (fleet.root / "samples").rglob("*.parquet")}
    hot = {f"{s.meta.snapshot_id}.parquet" for s in fleet.written}
    assert any(n.startswith("gen-") for n in names)
    assert "h13-g1.parquet" in names
    assert hot <= names  # 13:xx replaced but kept, 14:xx never compacted
    assert f"{fleet.uncommitted.meta.snapshot_id}.parquet" in names


def test_views_agree_with_duckdb_and_the_captures(fleet: Fleet, spark: SparkSession) -> None:
    # WHEN both engines count each visible snapshot's rows and bytes
    sql = "select snapshot_id, count(*) as n, sum(bytes) as b from samples group by snapshot_id"
    with query.connect(layout.open_store(fleet.root)) as con:
        duck = sorted(con.sql(sql).fetchall())
    sparks = sorted(tuple(r.values()) for r in spark.sql(sql).toArrow().to_pylist())

    # THEN they agree, every snapshot once
    assert sparks == duck
    assert len(duck) == SMALL.snapshots + len(fleet.written)
    # AND the real snapshots have the rows of their captures, the interrupted one none
    counted = {snapshot_id: (n, b) for snapshot_id, n, b in duck}
    for snap in fleet.written:
        bytes_ = sum(snap.samples["bytes"].to_pylist())
        assert counted[snap.meta.snapshot_id] == (snap.samples.num_rows, bytes_)
    assert fleet.uncommitted.meta.snapshot_id not in counted
    # AND the snapshots view has one row per snapshot, with the same times and hosts
    meta = "select snapshot_id, taken_at, host, date from snapshots order by snapshot_id"
    with query.connect(layout.open_store(fleet.root)) as con:
        duck_meta = con.sql(meta).to_arrow_table()
    spark_meta = spark.sql(meta).toArrow()
    _assert_same(duck_meta, spark_meta)


@pytest.mark.parametrize(
    ("pair", "by"),
    [
        ((0, 3), "tag"),  # hot before and after (modules loaded, ext4 used)
        ((3, 4), "module"),  # ... and unloaded again: 'unloaded' rows
        ((1, 10), "dir:2"),  # a compacted hour's snapshot against a hot one
    ],
)
def test_diff_agrees(fleet: Fleet, spark: SparkSession, pair: tuple[int, int], by: str) -> None:
    # GIVEN two stored snapshots of host vm1
    before, after = (fleet.written[i].meta.snapshot_id for i in pair)
    grouping = analysis.Grouping.parse(by)

    # WHEN both engines diff them
    duck = analysis.diff(
        analysis.load(before, fleet.root),
        analysis.load(after, fleet.root),
        grouping=grouping,
        top_n=None,
    )
    rows = on_spark.diff(spark, before, after, grouping=grouping, top_n=None).toArrow()

    # THEN the same groups, numbers and order come back
    assert duck.rows.num_rows > 5
    assert rows["changed_groups"][0].as_py() == duck.changed
    _assert_same(duck.rows, rows.drop_columns(["changed_groups"]))


def test_diff_of_generated_snapshots_by_reference_agrees(fleet: Fleet, spark: SparkSession) -> None:
    # GIVEN the first snapshot of the store and the last of host bench, named as the CLI would
    last_bench = "2026-01-05T01:59:50Z"
    duck = analysis.diff(
        analysis.load("first", fleet.root), analysis.load(last_bench, fleet.root), top_n=50
    )
    rows = on_spark.diff(spark, "first", last_bench, top_n=50).toArrow()

    # THEN both engines name the same snapshots and agree on the top 50 groups
    assert duck.before.taken_at == datetime(2026, 1, 5, tzinfo=UTC)
    assert rows.num_rows == duck.rows.num_rows == 50
    _assert_same(duck.rows, rows.drop_columns(["changed_groups"]))


def test_leaks_agree(fleet: Fleet, spark: SparkSession) -> None:
    # WHEN both engines judge every series of the whole store (both hosts, three epochs)
    duck = analysis.leaks(fleet.root, top_n=None)
    rows = on_spark.leaks(spark).toArrow()

    # THEN every series, verdict, statistic and reason is the same, in the same order
    expected = pa.concat_tables([duck.rows, duck.others])
    verdicts = set(expected["verdict"].to_pylist())
    assert duck.found > 10 and len(verdicts) >= 3  # leaks and several kinds of non-leak
    _assert_same(expected, rows)


def test_leaks_agree_on_a_window_that_ends_before_its_epochs(
    fleet: Fleet, spark: SparkSession
) -> None:
    # GIVEN a window of host bench that ends 40 minutes before its newest snapshot: its second
    # epoch goes on after it
    window = analysis.Window(until="40m", host="bench")

    # WHEN both engines judge it, each also reading the rest of those epochs
    duck = analysis.leaks(fleet.root, window, top_n=None)
    rows = on_spark.leaks(spark, window).toArrow()

    # THEN every series, verdict, statistic and reason is the same, the fall after the window
    # included (measured for the series judged past the shape tests, NULL for the others)
    expected = pa.concat_tables([duck.rows, duck.others])
    later = [v for v in expected["later_fall_share"].to_pylist() if v is not None]
    assert duck.found > 5 and len(later) > 5
    _assert_same(expected, rows)


def test_leaks_agree_on_a_leak_after_a_change_point(
    fleet: Fleet, spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN a store of one site that climbs, frees part of it at once, then leaks, and one
    # freed later (what follows its free is too short to be judged on its own)
    from tests.test_trends import Site, write_series
    from tests.test_verdicts import _hump_then_leak

    sites: list[Site] = [(None, "mm/early.c", 1, "early"), (None, "mm/late.c", 2, "late")]
    early, late = _hump_then_leak(40), _hump_then_leak(60, seed=5)
    pairs = zip(early, late, strict=True)  # two minutes apart: 3.3 hours, past short_hours
    series = [dict(zip(sites, pair, strict=True)) for pair in pairs]
    write_series(tmp_path, series, timedelta(minutes=2))
    duck = analysis.leaks(tmp_path, top_n=None)
    # WHEN both engines judge it
    rows = _leaks_of(spark, fleet, tmp_path, None)

    # THEN both say the same: the first a leak from its change point, the second no leak
    expected = pa.concat_tables([duck.rows, duck.others])
    reasons = dict(zip(expected["key"].to_pylist(), expected["reason"].to_pylist(), strict=True))
    assert reasons["mm/early.c:1 func:early"].startswith("since a change point")
    assert duck.found == 1
    _assert_same(expected, rows)


def test_leaks_agree_on_a_staircase_judged_with_its_boot_before_the_window(
    fleet: Fleet, spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN a staircase of 3 MiB every 20 minutes and a pool grown twice by 4 MiB, over 100
    # minutes with 64 KiB of jitter, and a window of their last 45 minutes: two of the
    # staircase's steps, one of the pool's
    import random

    from tests.test_trends import Site, write_series

    rng = random.Random(5)
    stairs: Site = (None, "mm/stairs.c", 1, "stairs")
    pool: Site = (None, "mm/pool.c", 2, "pool")
    series = [
        {
            stairs: (8 << 20) + (3 << 20) * (i // 20) + rng.randint(0, 64 << 10),
            pool: (8 << 20) + (4 << 20) * ((i >= 35) + (i >= 70)) + rng.randint(0, 64 << 10),
        }
        for i in range(100)
    ]
    write_series(tmp_path, series)
    window = analysis.Window(since="45m")
    duck = analysis.leaks(tmp_path, window, top_n=None)
    # WHEN both engines judge it, each also reading the boot before the window
    rows = _leaks_of(spark, fleet, tmp_path, window)

    # THEN both say the same: the staircase a leak with its 54 minutes before the window, the
    # pool (two steps in all) no leak
    expected = pa.concat_tables([duck.rows, duck.others])
    reasons = dict(zip(expected["key"].to_pylist(), expected["reason"].to_pylist(), strict=True))
    assert reasons["mm/stairs.c:1 func:stairs"].startswith("with the 54 points of its boot")
    assert duck.found == 1
    _assert_same(expected, rows)


def test_leaks_agree_on_a_staircase_whose_theil_sen_slope_is_under_the_floor(
    fleet: Fleet, spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN six hours, three minutes apart, of a pool that keeps 112 KiB five times: 94 KiB/h
    # end to end, its Theil–Sen slope on its flat runs under the 64 KiB/h floor
    import random

    from tests.test_trends import Site, write_series

    rng = random.Random(7)
    pool: Site = (None, "mm/pool.c", 1, "pool")
    steps = [5, 15, 25, 100, 112]
    series = [
        {pool: (4 << 20) + (112 << 10) * sum(i >= s for s in steps) + rng.randint(0, 2 << 10)}
        for i in range(120)
    ]
    write_series(tmp_path, series, timedelta(minutes=3))
    duck = analysis.leaks(tmp_path, top_n=None)
    # WHEN both engines judge it
    rows = _leaks_of(spark, fleet, tmp_path, None)

    # THEN both call it a staircase leak and say why its slope is under the floor
    assert duck.found == 1 and "on its flat runs" in duck.rows["reason"][0].as_py()
    _assert_same(pa.concat_tables([duck.rows, duck.others]), rows)


def test_leaks_agree_on_a_hump_given_back_after_a_stretch_of_profiling_off(
    fleet: Fleet, spark: SparkSession, tmp_path: Path
) -> None:
    # GIVEN a climb, profiling switched off and on again in the same boot, then a fall: the
    # climb's epoch is followed into the next one
    from tests.test_verdicts import _hump_across_profiling_off

    top = (4 << 20) + 59 * (256 << 10)
    root = _hump_across_profiling_off(
        tmp_path, [top - (k + 1) * (10 << 20) // 30 for k in range(30)]
    )
    duck = analysis.leaks(root, top_n=None)
    # WHEN both engines judge it
    rows = _leaks_of(spark, fleet, root, None)
    # THEN both say the climb was given back later in its boot, with the same figures
    expected = pa.concat_tables([duck.rows, duck.others])
    assert "given back later in the boot" in expected["verdict"].to_pylist()
    _assert_same(expected, rows)


def _leaks_of(
    spark: SparkSession, fleet: Fleet, root: Path, window: analysis.Window | None
) -> pa.Table:
    """Return Spark's leaks of another store than the fleet's, then register the fleet's again."""
    on_spark.register(spark, str(root))
    try:
        return on_spark.leaks(spark, window).toArrow()
    finally:
        on_spark.register(spark, str(fleet.root))


def _assert_same(duck: pa.Table, spark: pa.Table) -> None:
    """Assert equal columns and rows; doubles within 1e-9 relative (both engines compute in
    IEEE doubles, but not always in the same order); integer widths may differ."""
    assert duck.column_names == spark.column_names
    assert duck.num_rows == spark.num_rows
    for i, (a, b) in enumerate(zip(duck.to_pylist(), spark.to_pylist(), strict=True)):
        for name in duck.column_names:
            assert _close(a[name], b[name]), (
                f"row {i} {name}: DuckDB {a[name]!r}, Spark {b[name]!r}"
            )


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)
