"""patching: files encoded by writing new values into pyarrow's encoding of a same-shaped file
are pyarrow's own bytes, read back as the dumps say, and patching stops at any disagreement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allocsnap.kernel import capture, fastparse, source
from allocsnap.model import Filter
from allocsnap.store import patching, writing
from tests import oracle
from tests.conftest import real

AT = datetime(2026, 11, 26, 14, 0, 5, tzinfo=UTC)
BOOT = "847023cf-f409-4725-8242-49157f49e88e"
# A recorder's series: one boot's idle reads again and again, then modules loaded (a new tag
# set), then again; snap-4 comes after the modules were unloaded.
SERIES = [0, 1, 2, 0, 1, 2, 1, 3, 3, 3, 4, 4, 0]
OPTIONS = {"compression": "none", "use_dictionary": False, "write_statistics": False}


def record(root: Path, *, patch: bool, keep: Filter | None = None) -> writing.Writer:
    """Write SERIES into a store the way the recorder does: cached parser, one Writer."""
    writer = writing.Writer(root, patch=patch)
    parser = fastparse.CachedParser()
    for i, index in enumerate(SERIES):
        raw = source.RawRead(
            text=real("6.12", 1, index).read_bytes(),
            source="procfs",
            taken_at=AT + timedelta(seconds=10 * i, microseconds=i),
            boottime_s=100.0 + 10 * i,
            boot_id=BOOT,
            kernel="6.12.117-allocsnap",
            profiling=1,
            read_s=0.002 + i / 1000,
            modules=("ext4", "loop"),
        )
        snap = capture.snapshot(
            raw, keep=keep, host="vm", parser=parser, snapshot_id=f"{i:012x}", labels={"a": "b"}
        )
        writer.add(snap)
    return writer


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


@pytest.mark.slow
@pytest.mark.parametrize("keep", [None, Filter(module="ext4"), Filter(nonzero=True)], ids=str)
def test_patched_store_is_byte_for_byte_what_pyarrow_writes(
    tmp_path: Path, keep: Filter | None
) -> None:
    # GIVEN a recorder's series written twice: patching files, and pyarrow encoding each one
    patched = record(tmp_path / "patched", patch=True, keep=keep)
    plain = record(tmp_path / "plain", patch=False, keep=keep)

    # THEN most files were patched, and every file is the same in both stores
    assert plain.patched == 0
    assert patched.patched >= len(SERIES) - 1  # filtered: empty tables are not patched
    assert files(tmp_path / "patched") == files(tmp_path / "plain")


@pytest.mark.slow
def test_patched_files_read_back_as_the_dumps_say(tmp_path: Path) -> None:
    # GIVEN a recorder's series written with patching
    root = tmp_path / "store"
    assert record(root, patch=True).patched > 0

    # WHEN each snapshot's files are read by a plain Parquet reader
    for i, index in enumerate(SERIES):
        sid = f"{i:012x}"
        partition = root / "snapshots" / "host=vm" / "date=2026-11-26"
        row = pq.read_table(partition / f"{sid}.parquet").to_pylist()[0]
        samples = pq.read_table(root / "samples" / "host=vm" / "date=2026-11-26" / f"{sid}.parquet")

        # THEN the values are those of the dump it was read from (an independent reader)
        rows = oracle.rows(real("6.12", 1, index))
        assert row["snapshot_id"] == sid
        assert row["taken_at"] == AT + timedelta(seconds=10 * i, microseconds=i)
        assert (row["boottime_s"], row["read_s"]) == (100.0 + 10 * i, 0.002 + i / 1000)
        assert (row["rows"], row["profiling"], row["skipped_lines"]) == (len(rows), 1, 0)
        assert row["total_bytes"] == sum(r.bytes for r in rows)
        assert row["total_calls"] == sum(r.signed_calls for r in rows)
        assert set(samples["snapshot_id"].to_pylist()) == {sid}
        assert set(samples["taken_at"].to_pylist()) == {row["taken_at"]}
        got = zip(samples["bytes"].to_pylist(), samples["calls"].to_pylist(), strict=True)
        assert sorted(got) == sorted((r.bytes, r.calls) for r in rows)


def imported(root: Path, folder: Path, *, patch: bool) -> writing.Writer:
    """Write a folder of dumps the way ``import`` does: each dump's path is its origin."""
    writer = writing.Writer(root, patch=patch, exclusive=True)
    parser = fastparse.CachedParser()
    for i, dump in enumerate(sorted(folder.iterdir(), key=lambda p: int(p.stem[5:]))):
        raw = source.read_dump(str(dump))
        writer.add(
            capture.snapshot(raw, host="vm", at=AT + timedelta(seconds=10 * i), parser=parser)
        )
    return writer


def test_imported_rows_are_patched_with_each_dumps_path(tmp_path: Path) -> None:
    # GIVEN a folder of twelve dumps of one boot, snap-0 to snap-11 (the path's length changes
    # once), written twice as import writes them: patching files, and pyarrow encoding each
    folder = tmp_path / "dumps"
    folder.mkdir()
    for i in range(12):
        (folder / f"snap-{i}.txt").write_bytes(real("7.3", 2, i % 2).read_bytes())
    patched = imported(tmp_path / "patched", folder, patch=True)
    plain = imported(tmp_path / "plain", folder, patch=False)

    # THEN the snapshots rows were patched, but for the first of each path length and the one
    # after it that checks the template, and every file is the same in both stores
    assert plain.patched == 0
    assert patched._rows.patched == 12 - 4
    assert files(tmp_path / "patched") == files(tmp_path / "plain")
    # AND each row names its own dump
    rows = [
        pq.read_table(path).to_pylist()[0]
        for path in (tmp_path / "patched" / "snapshots").rglob("*.parquet")
    ]
    assert sorted(r["origin"] for r in rows) == sorted(str(p) for p in folder.iterdir())


def test_a_template_is_used_once_it_reproduced_pyarrow() -> None:
    # GIVEN an encoder and three tables of one shape
    encoder = patching.Encoder(OPTIONS)
    tables = [pa.table({"n": pa.array([i, 2 * i], pa.int64()), "s": ["x", "y"]}) for i in (1, 2, 3)]

    # WHEN they are encoded in turn
    out = [encode(encoder, table) for table in tables]

    # THEN the third came from the template checked on the second, and all are pyarrow's
    assert encoder.patched == 1
    for table, data in zip(tables, out, strict=True):
        assert data == encoder.pyarrow(table)
        assert pq.read_table(pa.BufferReader(data)).equals(table)


def test_a_template_that_disagrees_with_pyarrow_stops_patching() -> None:
    # GIVEN an encoder that checks every file, whose template went wrong (a fault that cannot
    # be caused for real: here its bytes are damaged)
    encoder = patching.Encoder(OPTIONS, check_every=1)
    tables = [pa.table({"n": pa.array([i], pa.int64())}) for i in range(4)]
    for table in tables[:2]:
        encode(encoder, table)
    assert encoder._template is not None
    key, template = encoder._template
    damaged = bytearray(template.data)
    damaged[0] ^= 1
    encoder._template = (key, patching.Template(bytes(damaged), template.spans))

    # WHEN the next tables are encoded
    out = [encode(encoder, table) for table in tables[2:]]

    # THEN pyarrow's bytes are written, and no template is used any more
    for data, table in zip(out, tables[2:], strict=True):
        assert data == encoder.pyarrow(table)
    assert not encoder.enabled
    assert encoder.patched == 1  # the damaged render, caught


@pytest.mark.parametrize(
    ("table", "options"),
    [
        (pa.table({"n": pa.array([1, None], pa.int64())}), OPTIONS),  # a null
        (pa.table({"n": pa.array([1, 2], pa.int64())}), {**OPTIONS, "compression": "zstd"}),
        (pa.table({"n": pa.array([1, 2], pa.int64())}), {**OPTIONS, "row_group_size": 1}),
        (pa.table({"n": pa.array(["a", "b"])}), OPTIONS),  # strings of variable length
        (pa.table({"n": pa.array([True, False])}), OPTIONS),  # bits, not bytes
    ],
    ids=["null", "compressed", "two-row-groups", "strings", "booleans"],
)
def test_what_cannot_be_patched_is_refused(table: pa.Table, options: dict[str, object]) -> None:
    # GIVEN pyarrow's encoding of a table whose column is not one run of plain values
    data = patching.Encoder(options).pyarrow(table)

    # WHEN a template is located, THEN there is none
    assert patching.Template.locate(data, table, ["n"]) is None


def test_a_value_of_another_size_is_refused() -> None:
    table = pa.table({"n": pa.array([1, 2], pa.int64())})
    template = patching.Template.locate(patching.Encoder(OPTIONS).pyarrow(table), table, ["n"])
    assert template is not None
    with pytest.raises(ValueError, match="a run of 16 bytes cannot hold 8"):
        template.render([b"\0" * 8])


def encode(encoder: patching.Encoder, table: pa.Table) -> bytes:
    """Encode a table whose column ``n`` is patched, as the store does."""

    def values() -> dict[str, patching.Buffer]:
        value = patching.plain(table["n"])
        assert value is not None
        return {"n": value}

    return b"".join(encoder.encode("key", lambda: table, values))


def test_a_template_is_compared_with_pyarrow_on_each_of_its_first_files() -> None:
    # GIVEN an encoder with the default checks, whose template went wrong right after it was
    # adopted (damaged bytes: a fault that cannot be caused for real)
    encoder = patching.Encoder(OPTIONS)
    tables = [pa.table({"n": pa.array([i], pa.int64())}) for i in range(4)]
    for table in tables[:2]:
        encode(encoder, table)
    assert encoder._template is not None
    key, template = encoder._template
    damaged = bytearray(template.data)
    damaged[0] ^= 1
    encoder._template = (key, patching.Template(bytes(damaged), template.spans))

    # WHEN the next file is encoded (the first after adoption; 255 files before the first
    # check, as it was, would have written it and 254 more)
    data = encode(encoder, tables[2])

    # THEN the damage is caught at once: pyarrow's bytes, and patching stops
    assert data == encoder.pyarrow(tables[2])
    assert not encoder.enabled and encoder.stopped_by is not None


def test_values_a_template_cannot_hold_fall_back_to_pyarrow() -> None:
    # GIVEN an encoder patching a shape, then asked for values of another width under the same
    # key (a caller's key that failed to name everything that fixes the layout)
    encoder = patching.Encoder(OPTIONS)
    tables = [pa.table({"n": pa.array([i, i], pa.int64())}) for i in range(3)]
    for table in tables[:2]:
        encode(encoder, table)
    wider = pa.table({"n": pa.array([7, 7, 7], pa.int64())})

    # WHEN it is encoded (render raised ValueError before, out of Writer.add)
    data = b"".join(
        encoder.encode("key", lambda: wider, lambda: {"n": patching.plain(wider["n"]) or b""})
    )

    # THEN pyarrow wrote it, and patching stopped, saying why
    assert data == encoder.pyarrow(wider)
    assert not encoder.enabled and "cannot hold" in (encoder.stopped_by or "")
