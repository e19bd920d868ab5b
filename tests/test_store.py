"""store: snapshot files and the hive-partitioned store, read back with and without allocsnap."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from allocsnap import analysis
from allocsnap.analysis import query
from allocsnap.errors import StoreError, StoreNotFound
from allocsnap.kernel import capture, source
from allocsnap.model import SCHEMA_VERSION, Snapshot
from allocsnap.store import housekeeping, layout, single_file, writing
from tests import oracle
from tests.conftest import real

AT = datetime(2026, 11, 26, 14, 0, 5, tzinfo=UTC)


def snapshot_of(path: Path, **kwargs: object) -> Snapshot:
    raw = source.RawRead(
        text=path.read_bytes(),
        source="file",
        origin=str(path),
        taken_at=AT,
        boot_id="847023cf-f409-4725-8242-49157f49e88e",
        kernel="6.12.117-allocsnap",
        profiling=1,
        modules=("ext4", "loop"),
        notes=("a note",),
    )
    return capture.snapshot(raw, **kwargs)  # type: ignore[arg-type]


def test_snapshot_file_roundtrip_keeps_rows_and_metadata(tmp_path: Path) -> None:
    # GIVEN a snapshot of a real capture with every metadata field set
    snap = snapshot_of(real("6.12", 1, 3), name="mods", host="vm1", labels={"ticket": "7"})
    path = tmp_path / "snap.parquet"

    # WHEN written to one file and read back
    single_file.write_snapshot_file(path, snap)
    back = single_file.read_snapshot_file(path)

    # THEN rows and metadata are equal, and the totals are the independent reader's
    assert back.samples.equals(snap.samples)
    assert back.meta == snap.meta
    rows = oracle.rows(real("6.12", 1, 3))
    assert back.meta.rows == len(rows)
    assert back.meta.total_bytes == sum(r.bytes for r in rows)
    assert back.meta.total_calls == sum(r.signed_calls for r in rows)
    assert (back.meta.name, back.meta.host, back.meta.labels) == ("mods", "vm1", {"ticket": "7"})
    assert back.meta.modules == ("ext4", "loop") and back.meta.notes == ("a note",)
    assert single_file.is_parquet(path) and not single_file.is_parquet(real("6.12", 1, 3))
    assert not list(tmp_path.glob(".*.tmp"))


def test_snapshot_file_keeps_signed_totals_of_underflowed_calls(tmp_path: Path) -> None:
    # GIVEN fixture 06-like rows whose calls underflowed
    path = tmp_path / "neg.txt"
    path.write_text("  -4096 18446744073709551615 mm/a.c:1 func:f \n  8192  3 mm/b.c:2 func:g \n")
    snap = snapshot_of(path)

    # WHEN written and read back
    single_file.write_snapshot_file(tmp_path / "neg.parquet", snap)
    back = single_file.read_snapshot_file(tmp_path / "neg.parquet")

    # THEN calls stay u64-exact, and the total reads the underflow as -1
    assert back.samples["calls"].to_pylist() == [2**64 - 1, 3]
    assert (back.meta.total_bytes, back.meta.total_calls) == (4096, 2)


def test_plain_parquet_file_is_not_a_snapshot(tmp_path: Path) -> None:
    # GIVEN a Parquet file allocsnap did not write
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}), path)

    # WHEN read as a snapshot, THEN a clear StoreError
    with pytest.raises(StoreError, match="not an allocsnap snapshot"):
        single_file.read_snapshot_file(path)


def test_newer_schema_version_in_file_is_refused(tmp_path: Path) -> None:
    # GIVEN a snapshot file whose metadata claims a newer schema
    path = tmp_path / "new.parquet"
    single_file.write_snapshot_file(path, snapshot_of(real("7.3", 2, 0)))
    table = pq.read_table(path)
    metadata = dict(table.schema.metadata)
    metadata[single_file.VERSION_KEY] = str(SCHEMA_VERSION + 1).encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)

    # WHEN read, THEN the error says a newer allocsnap wrote it
    with pytest.raises(StoreError, match="newer allocsnap"):
        single_file.read_snapshot_file(path)


def test_store_layout_and_readback(store_dir: Path) -> None:
    # GIVEN two snapshots of one host on one day
    first = snapshot_of(real("6.12", 1, 2), name="before", host="vm1")
    second = snapshot_of(real("6.12", 1, 3), name="after", host="vm1", at=AT.replace(minute=5))

    # WHEN written to a new store
    writing.write(store_dir, first)
    path = writing.write(store_dir, second)

    # THEN files sit in the documented hive layout
    day = "date=2026-11-26"
    assert path == store_dir / "snapshots" / "host=vm1" / day / f"{second.meta.snapshot_id}.parquet"
    assert (store_dir / layout.MARKER).is_file()
    for snap in (first, second):
        sid = snap.meta.snapshot_id
        assert (store_dir / "snapshots" / "host=vm1" / day / f"{sid}.parquet").is_file()
        assert (store_dir / "samples" / "host=vm1" / day / f"{sid}.parquet").is_file()
    assert list((store_dir / "tags").glob("*.parquet"))
    assert not list(store_dir.rglob("*.tmp"))

    # AND reading back gives the same metadata and rows
    metas = analysis.snapshots(store_dir)
    assert metas == [first.meta, second.meta]
    for snap in (first, second):
        loaded = analysis.load(snap.meta.snapshot_id, store_dir)
        assert loaded.meta == snap.meta
        assert loaded.samples.equals(snap.samples)


def test_store_is_readable_without_allocsnap(store_dir: Path) -> None:
    # GIVEN a store with one snapshot of a 7.3 capture
    path = real("7.3", 2, 0)
    snap = snapshot_of(path, name="boot", host="vm2")
    writing.write(store_dir, snap)
    rows = oracle.rows(path)

    # WHEN opened with plain pyarrow (hive partitioning, no allocsnap code)
    samples = ds.dataset(store_dir / "samples", format="parquet", partitioning="hive").to_table()
    snapshots = ds.dataset(
        store_dir / "snapshots", format="parquet", partitioning="hive"
    ).to_table()
    tags = pq.read_table(next((store_dir / "tags").glob("*.parquet")))

    # THEN the samples, joined to tags by tag_id, are the capture's rows
    assert samples.num_rows == len(rows)
    assert set(samples["host"].to_pylist()) == {"vm2"}
    assert snapshots["name"].to_pylist() == ["boot"]
    assert snapshots["rows"].to_pylist() == [len(rows)]
    assert snapshots["total_bytes"].to_pylist() == [sum(r.bytes for r in rows)]
    site = {
        t["tag_id"]: (t["file"], t["line"], t["module"], t["function"]) for t in tags.to_pylist()
    }
    ordered = sorted(samples.to_pylist(), key=lambda s: s["ordinal"])
    assert [(s["bytes"], s["calls"], *site[s["tag_id"]]) for s in ordered] == [
        (r.bytes, r.calls, r.file, r.line, r.module, r.function) for r in rows
    ]
    assert sum(not s["accurate"] for s in ordered) == sum("accurate:no" in r.extras for r in rows)


def test_newer_schema_version_in_marker_is_refused(store_dir: Path) -> None:
    # GIVEN a store whose marker says a newer allocsnap made it
    writing.write(store_dir, snapshot_of(real("6.12", 1, 0)))
    marker = store_dir / layout.MARKER
    content = json.loads(marker.read_text())
    content["schema_version"] = SCHEMA_VERSION + 1
    marker.write_text(json.dumps(content))

    # WHEN read or written, THEN a clear StoreError says to upgrade
    with pytest.raises(StoreError, match="newer allocsnap.*upgrade"):
        analysis.snapshots(store_dir)
    with pytest.raises(StoreError, match="newer allocsnap"):
        writing.write(store_dir, snapshot_of(real("6.12", 1, 1)))


def test_writing_into_a_non_store_folder_is_refused(tmp_path: Path) -> None:
    # GIVEN a folder with someone else's file in it
    (tmp_path / "notes.txt").write_text("mine")

    # WHEN a snapshot is written there, THEN it is refused and the folder is untouched
    with pytest.raises(StoreError, match="not an allocsnap store"):
        writing.write(tmp_path, snapshot_of(real("6.12", 1, 0)))
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(StoreNotFound, match="not an allocsnap store"):
        layout.open_store(tmp_path)


def test_missing_file_foreign_and_empty_stores_have_their_own_messages(tmp_path: Path) -> None:
    # GIVEN a missing folder, a file, a folder of other things, an empty folder and a store
    # whose snapshots were all pruned
    (tmp_path / "file").write_text("x")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    pruned = tmp_path / "pruned"
    writing.write(pruned, snapshot_of(real("6.12", 1, 0)))
    housekeeping.prune(pruned, timedelta(0), now=datetime(2100, 1, 1, tzinfo=UTC))

    # THEN each says what is wrong, all with exit code 4
    expected = {
        "absent": "does not exist",
        "file": "is a file, not a store directory",
        "foreign": "is not an allocsnap store",
        "empty": "no snapshots in",
        "pruned": "no snapshots in",
    }
    for name, message in expected.items():
        with pytest.raises(StoreNotFound, match=message) as e:
            analysis.snapshots(tmp_path / name)
        assert e.value.exit_code == 4


@pytest.mark.slow
def test_interrupted_write_is_invisible(store_dir: Path) -> None:
    # GIVEN a store with one committed snapshot
    kept = snapshot_of(real("6.12", 1, 0), name="kept", host="vm1")
    writing.write(store_dir, kept)

    # AND a second write interrupted after its samples file (no snapshots row), plus a stray .tmp
    lost = snapshot_of(real("6.12", 1, 1), name="lost", host="vm1", at=AT.replace(hour=15))
    writing.write(store_dir / "scratch", lost)
    for table in ("samples", "tags"):
        for f in (store_dir / "scratch" / table).rglob("*.parquet"):
            target = store_dir / f.relative_to(store_dir / "scratch")
            target.parent.mkdir(parents=True, exist_ok=True)
            f.rename(target)
    part = store_dir / "snapshots" / "host=vm1" / "date=2026-11-26"
    (part / f".{lost.meta.snapshot_id}.parquet.1234.tmp").write_bytes(b"PAR1 half written")

    # WHEN the store is read
    metas = analysis.snapshots(store_dir)

    # THEN only the committed snapshot is seen, and the lost one cannot be loaded
    assert [m.name for m in metas] == ["kept"]
    assert analysis.resolve(store_dir, "latest").name == "kept"
    with pytest.raises(StoreNotFound):
        analysis.load(lost.meta.snapshot_id, store_dir)
    loaded = analysis.load("kept", store_dir)
    assert loaded.samples.equals(kept.samples)
    with query.connect(layout.open_store(store_dir)) as con:
        ids = con.sql("select distinct snapshot_id from samples").fetchall()
    assert ids == [(kept.meta.snapshot_id,)]


def test_non_utc_time_is_stored_under_its_utc_date(store_dir: Path) -> None:
    # GIVEN a snapshot taken at 01:00 on Jan 2 in UTC+2, which is 23:00 on Jan 1 in UTC
    at = datetime(2026, 1, 2, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    snap = snapshot_of(real("6.12", 1, 0), name="tz", host="vm", at=at)

    # WHEN written to the store and loaded back by name
    writing.write(store_dir, snap)
    loaded = analysis.load("tz", store_dir)

    # THEN it sits under the UTC date, keeps the instant, and every row is found
    assert (store_dir / "samples" / "host=vm" / "date=2026-01-01").is_dir()
    assert loaded.meta.taken_at == at
    assert loaded.samples.num_rows == len(oracle.rows(real("6.12", 1, 0)))
