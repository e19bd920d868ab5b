"""Store evolution: compaction, pruning, recovery, locks and schema versions, on real captures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allocsnap import analysis
from allocsnap.analysis import query
from allocsnap.errors import StoreError, StoreLocked
from allocsnap.kernel import capture, source
from allocsnap.model import SCHEMA_VERSION, Snapshot
from allocsnap.store import compaction, durable, housekeeping, layout, locks, unit_coding, writing
from tests import oracle

BOOT = Path(__file__).parent / "data" / "real" / "6.12.117-allocsnap" / "boot-1"
# negative bytes and underflowed calls, from a public bug report
ODD = (
    Path(__file__).parent
    / "data"
    / "public"
    / "06_davidwang_6.12.0_abnormal_negative_values_2024-11.txt"
)
T0 = datetime(2026, 11, 25, 13, 40, tzinfo=UTC)
HOSTS = ("vm1", "vm2")


def _snap(index: int, at: datetime, host: str = "vm1") -> Snapshot:
    raw = source.read_dump(str(BOOT / f"snap-{index % 5}.txt"))
    return capture.snapshot(raw, host=host, at=at)


def _fill(root: Path, n: int, step: timedelta = timedelta(minutes=2)) -> list[Snapshot]:
    snaps = [_snap(i, T0 + i * step) for i in range(n)]
    for s in snaps:
        writing.write(root, s)
    return snaps


def _data_files(root: Path, table: str) -> list[str]:
    return sorted(p.name for p in (root / table).rglob("*.parquet"))


def _view_rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    with query.connect(layout.open_store(root)) as con:
        return con.sql(sql).fetchall()


@pytest.mark.slow
def test_closed_hours_then_days_compact_and_read_back_the_same(tmp_path: Path) -> None:
    # GIVEN 40 snapshots two minutes apart: 13:40 to 14:58, two hours of one day
    root = tmp_path / "store"
    snaps = _fill(root, 40)
    metas_before = analysis.snapshots(root)

    # WHEN compacted at 14:30: only the 13:00 hour has closed
    done = compaction.compact(root, T0.replace(hour=14, minute=30), grace_s=0)

    # THEN the 10 snapshots of 13:xx share one file per table, the rest stay hot
    assert (done.units, done.snapshots) == (1, 10)
    assert "h13-g1.parquet" in _data_files(root, "samples")
    assert len(_data_files(root, "samples")) == 1 + 30
    assert analysis.snapshots(root) == metas_before

    # WHEN the day has closed
    done = compaction.compact(root, T0 + timedelta(days=1), grace_s=0)

    # THEN the whole day is one file per table, and every snapshot reads back unchanged
    assert (done.units, done.snapshots) == (1, 40)
    assert _data_files(root, "samples") == ["day-g2.parquet"]
    assert _data_files(root, "snapshots") == ["day-g2.parquet"]
    assert analysis.snapshots(root) == metas_before
    for s in snaps[::9]:
        assert analysis.load(s.meta.snapshot_id, root).samples.equals(s.samples)
    sums = _view_rows(root, "select snapshot_id, count(*), sum(bytes) from samples group by all")
    assert sorted(sums) == sorted(
        (s.meta.snapshot_id, s.samples.num_rows, sum(s.samples["bytes"].to_pylist())) for s in snaps
    )


@pytest.mark.slow
def test_compacted_file_is_sorted_by_tag_then_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a compacted hour, merged a few thousand rows at a time
    monkeypatch.setattr(compaction, "CHUNK_ROWS", 5_000)
    root = tmp_path / "store"
    _fill(root, 10)
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    path = next((root / "samples").rglob("h13-g1.parquet"))

    # WHEN read with plain pyarrow
    rows = pq.read_table(path, columns=["tag_id", "occurrence", "taken_at"]).to_pylist()

    # THEN rows are in (tag_id, occurrence, taken_at) order, in several row groups that each
    # hold whole cells of the tag-id grid (a reader prunes row groups by tag range)
    keys = [(r["tag_id"], r["occurrence"], r["taken_at"]) for r in rows]
    assert keys == sorted(keys)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups > 1
    cell = 2**64 // compaction.GRID
    column = meta.schema.names.index("tag_id")
    ranges = [meta.row_group(g).column(column).statistics for g in range(meta.num_row_groups)]
    for before, after in zip(ranges, ranges[1:], strict=False):
        assert (before.max + 2**63) // cell < (after.min + 2**63) // cell


@pytest.mark.slow
def test_many_small_inputs_are_merged_in_levels_of_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an hour of 10 hot snapshots, merged 2 at a time: 5 parts, then 3, then 2, then 1
    monkeypatch.setattr(compaction, "BATCH", 2)
    root = tmp_path / "store"
    snaps = _fill(root, 10, step=timedelta(minutes=1))

    # WHEN the hour is compacted
    done = compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)

    # THEN one file holds every snapshot whole, and no part is left behind
    assert (done.units, done.snapshots) == (1, 10)
    sums = _view_rows(root, "select snapshot_id, count(*), sum(bytes) from samples group by all")
    assert sorted(sums) == sorted(
        (s.meta.snapshot_id, s.samples.num_rows, sum(s.samples["bytes"].to_pylist())) for s in snaps
    )
    assert not list(root.rglob("*.tmp"))


@pytest.mark.slow
def test_views_keep_their_columns_after_compaction(tmp_path: Path) -> None:
    # GIVEN the columns of the three views over a hot store
    root = tmp_path / "store"
    _fill(root, 4)
    columns = {
        v: [c[0] for c in _view_rows(root, f"describe {v}")]
        for v in ("snapshots", "samples", "tags")
    }

    # WHEN compacted, THEN the views have the same columns (no generation leaks out)
    compaction.compact(root, T0 + timedelta(days=1), grace_s=0)
    for view, names in columns.items():
        assert [c[0] for c in _view_rows(root, f"describe {view}")] == names
    assert "generation" not in columns["samples"] + columns["snapshots"]


@pytest.mark.slow
def test_late_snapshots_of_a_compacted_hour_get_a_new_generation(tmp_path: Path) -> None:
    # GIVEN a compacted 13:00 hour, then one more snapshot imported into it
    root = tmp_path / "store"
    snaps = _fill(root, 5)
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    late = _snap(1, T0.replace(minute=59))
    writing.write(root, late)

    # WHEN compacted again
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)

    # THEN one file holds all six, once each
    assert _data_files(root, "samples") == ["h13-g2.parquet"]
    counts = _view_rows(root, "select snapshot_id, count(*) from samples group by all")
    assert sorted(counts) == sorted((s.meta.snapshot_id, s.meta.rows) for s in [*snaps, late])


@pytest.mark.slow
def test_files_written_in_the_compacted_layout_name_snapshots_as_compaction_does(
    tmp_path: Path,
) -> None:
    # GIVEN an hour of hot snapshots, two of them at the same instant (dumps imported --at it)
    root = tmp_path / "store"
    snaps = _fill(root, 5)
    writing.write(root, _snap(3, snaps[2].meta.taken_at))
    hot = pa.concat_tables(pq.read_table(p) for p in (root / "samples").rglob("*.parquet"))
    key = ["snapshot_id", "taken_at", "tag_id", "occurrence", "bytes"]

    # WHEN the same rows are written directly in the compacted layout (bench/generate.py's
    # stores), and the store compacts the hour
    direct = tmp_path / "direct.parquet"
    compaction.write_compacted(
        hot.sort_by([("tag_id", "ascending"), ("taken_at", "ascending")]), direct
    )
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    [compacted] = (root / "samples").rglob("h13-*.parquet")

    # THEN both name a snapshot only where its time is shared: the benchmarks read the layout
    # a recorder leaves
    rows = [sorted(pq.read_table(p, columns=key).to_pylist(), key=str) for p in (direct, compacted)]
    assert rows[0] == rows[1]
    unnamed = sum(s.meta.rows for i, s in enumerate(snaps) if i != 2)  # the four alone
    assert sum(r["snapshot_id"] is None for r in rows[0]) == unnamed


def _two_hosts_first_hour_compacted(root: Path) -> list[Snapshot]:
    """Write 16 snapshots of each host, 4 minutes apart from T0 (13:40), and compact the first
    hour: its file names snapshots by their time (snapshot_id NULL), the rest stay hot."""
    snaps = [_snap(i, T0 + i * timedelta(minutes=4), host) for i in range(16) for host in HOSTS]
    for s in snaps:
        writing.write(root, s)
    compaction.compact(root, T0.replace(hour=14, minute=30), days=False, grace_s=0)
    return snaps


def test_window_samples_are_the_samples_views_rows_of_the_picked_snapshots(
    tmp_path: Path,
) -> None:
    # GIVEN two hosts at the same instants, the first hour compacted (its files name snapshots
    # by their time: snapshot_id NULL) and the rest hot, and two more snapshots of vm1 at the
    # time of one in the compacted hour (dumps imported --at the same instant)
    root = tmp_path / "store"
    snaps = _two_hosts_first_hour_compacted(root)
    same = [_snap(i, snaps[2].meta.taken_at) for i in (3, 4)]
    for s in same:
        writing.write(root, s)
    compacted = next((root / "samples" / "host=vm2").rglob("h13-*.parquet"))
    assert pq.read_table(compacted, columns=["snapshot_id"]).column(0).null_count > 0
    totals = {s.meta.snapshot_id: s.meta.total_bytes for s in [*snaps, *same]}

    with query.connect(layout.open_store(root)) as con:
        for window in (
            (None, None, None, None, None, 5),
            (None, None, None, None, None, None),
            ("vm2", None, None, None, None, 7),
            (None, T0 + timedelta(minutes=10), None, None, None, 4),
            ("vm1", None, None, 1800.0, None, 3),
        ):
            # WHEN the table macro reads a window's picked snapshots
            got = con.sql(
                "select * from window_samples(?, ?, ?, ?, ?, ?) order by all", params=window
            )
            # THEN its rows are the samples view's rows of those snapshots, and each snapshot's
            # bytes add up to what its capture said
            expected = con.sql(
                "select s.* from samples as s semi join window_snapshots_picked(?, ?, ?, ?, ?, ?)"
                " as p on s.host = p.host and s.snapshot_id = p.snapshot_id order by all",
                params=window,
            )
            assert got.columns == expected.columns
            rows = got.fetchall()
            assert rows == expected.fetchall() and rows
            picked = con.sql(
                "select snapshot_id, sum(bytes) from window_samples(?, ?, ?, ?, ?, ?) group by 1",
                params=window,
            ).fetchall()
            assert all(totals[sid] == total for sid, total in picked)


@pytest.mark.parametrize("analysis_name", ["growth", "outliers"])
def test_growth_and_outliers_read_a_compacted_hour_at_their_snapshots_times_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, analysis_name: str
) -> None:
    # GIVEN two hosts at the same instants, the first hour compacted (snapshot_id NULL in its
    # file) and the rest hot
    root = tmp_path / "store"
    snaps = _two_hosts_first_hour_compacted(root)
    # WHEN growth (2 snapshots a part) or outliers (each host's first and last) runs, its
    # query profiled by DuckDB
    profile = tmp_path / "profile.json"
    run = query.run

    def profiled(con: query.Connection, name: str, **params: object) -> pa.Table:
        if name != analysis_name:
            return run(con, name, **params)
        con.execute("pragma enable_profiling = 'json'")
        con.execute(f"pragma profiling_output = '{profile}'")
        try:
            return run(con, name, **params)
        finally:
            con.execute("pragma disable_profiling")

    monkeypatch.setattr(query, "run", profiled)
    if analysis_name == "growth":
        analysis.growth(root, max_points=2)
        times = {T0 + i * timedelta(minutes=4) for i in (0, 7, 8, 15)}  # each part's ends
    else:
        analysis.outliers(root)
        times = {T0, T0 + 15 * timedelta(minutes=4)}

    # THEN the scan of the samples files returned the rows at those times only (the samples
    # view, joined on ids that a compacted file leaves NULL, returned every row of the store)
    def scans(node: dict[str, object]) -> list[dict[str, object]]:
        children = [scans(c) for c in node.get("children", [])]  # type: ignore[attr-defined]
        own = [node] if node.get("name") == "READ_PARQUET" else []
        return own + [s for found in children for s in found]

    plan = json.loads(profile.read_text())
    samples_scans = [
        s
        for op in plan["operator"]
        for s in scans(op)
        if "bytes" in s["extra_info"]["Projections"]  # type: ignore[index]
    ]
    at_times = sum(s.meta.rows for s in snaps if s.meta.taken_at in times)
    assert samples_scans
    assert sum(s["intermediate_rows"] for s in samples_scans) == at_times  # type: ignore[misc]


def test_snapshots_taken_at_the_same_instant_stay_apart_through_compactions(
    tmp_path: Path,
) -> None:
    # GIVEN a compacted hour, then two more snapshots at the time of one already in it (two
    # dumps imported --at the same instant), and a snapshot of another host at that instant
    root = tmp_path / "store"
    snaps = _fill(root, 5)
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    same = [_snap(i, snaps[2].meta.taken_at) for i in (3, 4)]
    other = _snap(0, snaps[2].meta.taken_at, host="vm2")
    for s in [*same, other]:
        writing.write(root, s)
    everything = [*snaps, *same, other]
    expected = sorted(
        (s.meta.snapshot_id, s.meta.rows, sum(s.samples["bytes"].to_pylist())) for s in everything
    )
    sql = "select snapshot_id, count(*), sum(bytes) from samples group by all"

    # WHEN the hour is compacted again, then the day
    for now, days in ((T0 + timedelta(hours=1), False), (T0 + timedelta(days=1), True)):
        compaction.compact(root, now, days=days, grace_s=0)

        # THEN every snapshot has its own rows, once, under its own id
        assert sorted(_view_rows(root, sql)) == expected
    for s in same:
        assert analysis.load(s.meta.snapshot_id, root).samples.equals(s.samples)

    # AND the compacted file names only the snapshots whose time is not theirs alone
    path = next((root / "samples" / "host=vm1").rglob("day-g3.parquet"))
    named = pq.read_table(path, columns=["snapshot_id"]).column(0).drop_null().unique()
    assert sorted(named.to_pylist()) == sorted(s.meta.snapshot_id for s in [snaps[2], *same])


@pytest.mark.slow
def test_compacted_bytes_read_back_with_plain_sql(tmp_path: Path) -> None:
    # GIVEN an hour of real snapshots, and one with negative bytes and underflowed calls
    root = tmp_path / "store"
    dumps = {s.meta.taken_at: BOOT / f"snap-{i % 5}.txt" for i, s in enumerate(_fill(root, 10))}
    odd_at = T0.replace(minute=59)
    writing.write(root, capture.snapshot(source.read_dump(str(ODD)), host="vm1", at=odd_at))
    dumps[odd_at] = ODD

    # WHEN the hour is compacted
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    path = next((root / "samples").rglob("h13-g1.parquet"))

    # THEN plain DuckDB over the file, with docs/storage.md's reconstruction of calls, reads
    # every snapshot's rows as the kernel printed them (the oracle's reading of the dumps)
    sql = """
        select taken_at, ordinal, bytes, calls is null as coded,
            coalesce(calls, cast(bytes / unit_bytes as ubigint)) as c
        from read_parquet($path) order by taken_at, ordinal
    """
    rows = duckdb.connect().execute(sql, {"path": str(path)}).fetchall()
    got: dict[datetime, list[tuple[int, int]]] = {}
    for at, _ordinal, value, _coded, calls in rows:
        got.setdefault(at, []).append((value, calls))
    assert got == {at: [(r.bytes, r.calls) for r in oracle.rows(p)] for at, p in dumps.items()}

    # AND most rows leave calls to bytes / unit_bytes (call sites allocate one size)
    assert sum(r[3] for r in rows) > 0.9 * len(rows)
    # AND the samples view reads the odd snapshot as the dump has it
    view = "select bytes, calls from samples where taken_at = $at order by ordinal"
    with query.connect(layout.open_store(root)) as con:
        odd = con.execute(view, {"at": odd_at}).fetchall()
    assert odd == [(r.bytes, r.calls) for r in oracle.rows(ODD)]


def test_units_round_trip_every_kind_of_row() -> None:
    # GIVEN series of one size, of two sizes, zero calls with bytes, negative bytes,
    # underflowed calls, and sizes and counts beyond the coded range
    big = 2**31
    rows = [
        (1, 0, 0),
        (1, 4096, 1),
        (1, 8192, 2),
        (1, 8192, 2),
        (2, 64, 1),
        (2, 96, 2),  # another size: kept as it is
        (2, 0, 0),
        (3, 512, 0),  # bytes without calls
        (4, -4096, 2**64 - 1),  # underflowed calls
        (4, -8192, 2),
        (5, 2**40, 1),  # a unit too large to code
        (6, 3 * big, big),  # calls too large to code
        (7, 0, 0),
    ]
    table = pa.table(
        {
            "tag_id": pa.array([r[0] for r in rows], pa.int64()),
            "occurrence": pa.array([0] * len(rows), pa.uint16()),
            "bytes": pa.array([r[1] for r in rows], pa.int64()),
            "calls": pa.array([r[2] for r in rows], pa.uint64()),
        }
    )

    # WHEN coded
    coded = unit_coding.with_units(table)

    # THEN it decodes to the same rows, through Arrow and through SQL
    assert unit_coding.without_units(coded).equals(table)
    con = duckdb.connect()
    con.register("coded", coded)
    sql = "select coalesce(calls, cast(bytes / unit_bytes as ubigint)) from coded"
    assert [r[0] for r in con.execute(sql).fetchall()] == [r[2] for r in rows]
    # AND calls is NULL exactly where bytes is calls times the series' first size
    nulls = np.array(coded["calls"].is_null().to_pylist())
    assert [i for i, n in enumerate(nulls) if n] == [0, 1, 2, 3, 4, 6, 9, 12]


@pytest.mark.slow
def test_compaction_marks_a_schema_2_store_as_schema_3(tmp_path: Path) -> None:
    # GIVEN a store an allocsnap of schema 2 made, with hot snapshots
    root = tmp_path / "store"
    snaps = _fill(root, 3)
    marker = root / layout.MARKER
    marker.write_text(json.dumps({"schema_version": 2, "created_by": "allocsnap 0.1.0"}))

    # WHEN compacted, THEN the marker says 3 (an allocsnap of schema 2 refuses it from now on
    # rather than read the NULL calls) and the snapshots read back the same
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    assert json.loads(marker.read_text())["schema_version"] == SCHEMA_VERSION == 3
    for s in snaps:
        assert analysis.load(s.meta.snapshot_id, root).samples.equals(s.samples)


@pytest.mark.slow
def test_prune_removes_old_files_whole(tmp_path: Path) -> None:
    # GIVEN a compacted 13:00 hour and hot snapshots of 14:00
    root = tmp_path / "store"
    snaps = _fill(root, 20)
    compaction.compact(root, T0.replace(hour=14, minute=30), days=False, grace_s=0)

    # WHEN pruning what is older than an hour at 15:10 (cutoff 14:10)
    done = housekeeping.prune(root, timedelta(hours=1), T0.replace(hour=15, minute=10))

    # THEN the 13:00 file and hot snapshots before 14:10 are gone, later ones kept
    kept = [s.meta.snapshot_id for s in snaps if s.meta.taken_at >= T0.replace(hour=14, minute=10)]
    assert len(kept) == 5
    assert [m.snapshot_id for m in analysis.snapshots(root)] == kept
    assert done.snapshots == 20 - len(kept)
    assert "h13-g1.parquet" not in _data_files(root, "samples")


@pytest.mark.slow
def test_recover_removes_temp_orphan_and_superseded_files(tmp_path: Path) -> None:
    # GIVEN a store with one snapshot, compacted, plus what crashes leave behind:
    root = tmp_path / "store"
    kept = _fill(root, 1)[0]
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    part = root / "samples" / "host=vm1" / "date=2026-11-25"
    # a temp file, samples of a snapshot whose row was never written, and a superseded hot pair
    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # its writer: a process that ended
    gone.wait()
    (part / f".h14-g1.parquet.{gone.pid}.tmp").write_bytes(b"PAR1 half")
    orphan = _snap(2, T0.replace(minute=50))
    writing.hot_samples(orphan.samples, orphan.meta)
    durable.atomic_write(writing.hot_samples(orphan.samples, orphan.meta), part / "orphan.parquet")
    stale = root / "stale"
    writing.write(stale, kept)
    for table in ("samples", "snapshots"):
        for f in (stale / table).rglob("*.parquet"):
            f.rename(root / f.relative_to(stale))

    # WHEN recovered
    done = housekeeping.recover(root, grace_s=0)

    # THEN only the compacted pair is left and the snapshot reads back once
    assert done.temp_removed == 1 and done.files_removed == 3
    assert _data_files(root, "samples") == _data_files(root, "snapshots") == ["h13-g1.parquet"]
    assert analysis.load(kept.meta.snapshot_id, root).samples.equals(kept.samples)


@pytest.mark.slow
def test_store_of_a_newer_version_is_refused_clearly(tmp_path: Path) -> None:
    # GIVEN a store whose marker says schema SCHEMA_VERSION + 1
    root = tmp_path / "store"
    _fill(root, 1)
    marker = root / layout.MARKER
    marker.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))

    # WHEN ls runs on it, THEN it exits 1 with one line saying to upgrade
    result = _cli("ls", "--store", str(root))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {root} was written by a newer allocsnap (schema {SCHEMA_VERSION + 1}; "
        f"this one reads {SCHEMA_VERSION}): upgrade allocsnap\n"
    )
    with pytest.raises(StoreError, match="newer allocsnap"):
        compaction.compact(root)


def test_store_of_schema_1_is_refused_clearly(tmp_path: Path) -> None:
    # GIVEN a store made by allocsnap 0.1 (schema 1: no generations)
    root = tmp_path / "store"
    _fill(root, 1)
    (root / layout.MARKER).write_text(json.dumps({"schema_version": 1}))

    # WHEN opened, THEN the message names the older schema instead of misreading it
    with pytest.raises(StoreError, match=r"older allocsnap \(schema 1; this one reads 2 to 3\)"):
        analysis.snapshots(root)


def test_lock_names_the_holder_and_is_taken_back_from_a_dead_one(tmp_path: Path) -> None:
    # GIVEN another process holding the recorder lock
    root = tmp_path / "store"
    layout.ensure_store(root)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"

    # WHEN this process asks for it, THEN the error names the holder's pid
    with pytest.raises(StoreLocked, match=f"being recorded by pid {holder.pid} "):
        with locks.recorder_lock(root):
            pass

    # WHEN the holder is killed with SIGKILL, THEN the lock is free again
    holder.kill()
    holder.wait()
    holder.stdout.close()
    with locks.recorder_lock(root):
        assert (root / layout.RECORDER_LOCK).read_text() == f"{os.getpid()}\n"


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from allocsnap.store import locks
with locks.recorder_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "allocsnap", *args], capture_output=True, text=True, timeout=60
    )
