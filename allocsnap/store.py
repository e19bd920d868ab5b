"""Parquet on disk: single snapshot files and the store directory (docs/storage.md).

A store is three tables any Parquet reader can open — ``snapshots``, ``tags`` and ``samples`` —
with snapshots and samples hive-partitioned by host and date. Every file is written to a temp
name, fsynced and renamed, and a snapshot's row in ``snapshots`` is written last: readers only see
samples of snapshots listed there, so a write killed at any instant leaves no partial snapshot.

Hot data is one samples file and one snapshots file per snapshot (generation 0). Compaction
(``allocsnap.compaction``) rewrites closed hours, then closed days, into files sorted by
(tag_id, occurrence, taken_at) with a higher ``generation``; a snapshot's newest row names the
generation that holds its samples, so readers switch over at one rename (docs/recorder.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import struct
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allocsnap import __version__, remote
from allocsnap.errors import StoreError, StoreLocked, StoreNotFound
from allocsnap.model import SAMPLE_SCHEMA, SCHEMA_VERSION, SNAPSHOT_SCHEMA, Snapshot, SnapshotMeta
from allocsnap.patching import Buffer, Encoder
from allocsnap.remote import Location as Location
from allocsnap.remote import Remote as Remote
from allocsnap.remote import location as location

if TYPE_CHECKING:
    import pyarrow.fs as pafs

MARKER = "allocsnap-store.json"
RECORDER_LOCK = "recorder.lock"
WRITER_LOCK = "writer.lock"
STORE_MIN_VERSION = 2  # schema 1 stores had no generations: their views would double-count
META_KEY = b"allocsnap.snapshot"
VERSION_KEY = b"allocsnap.schema_version"
TAG_COLUMNS = ["tag_id", "file", "line", "module", "function"]
STORE_SAMPLE_COLUMNS = [
    "snapshot_id",
    "taken_at",
    "tag_id",
    "occurrence",
    "ordinal",
    "bytes",
    "calls",
    "accurate",
    "extras",
    "generation",
]
STORE_SAMPLE_SCHEMA = pa.schema(
    [
        # NULL in compacted files where taken_at alone names the snapshot (docs/recorder.md)
        pa.field("snapshot_id", pa.string()),
        pa.field("taken_at", pa.timestamp("us", tz="UTC"), nullable=False),
        *(SAMPLE_SCHEMA.field(name) for name in STORE_SAMPLE_COLUMNS[2:-1]),
        pa.field("generation", pa.int32(), nullable=False),
    ]
)
STORE_SNAPSHOT_SCHEMA = SNAPSHOT_SCHEMA.remove(SNAPSHOT_SCHEMA.get_field_index("host")).append(
    pa.field("generation", pa.int32(), nullable=False)
)
_STATIC_COLUMNS = ["tag_id", "occurrence", "ordinal", "accurate", "extras"]
_PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_statistics": True}
# Hot files live an hour: written as cheaply as possible (the recorder's budget is 2 ms of CPU
# per snapshot; compression alone would take a third of it); compaction makes them small.
# snapshot_id and taken_at are one value repeated: a dictionary page and a run of zeros. No
# Arrow schema in the footer: Parquet's own types read back the same, for less CPU.
_HOT_OPTIONS: dict[str, Any] = {
    "compression": "none",
    "use_dictionary": ["snapshot_id", "taken_at"],
    "write_statistics": False,
    "store_schema": False,
}
_ROW_OPTIONS: dict[str, Any] = {
    "compression": "none",
    "use_dictionary": False,
    "write_statistics": False,
    "store_schema": False,
}
# A tags file is written once per kernel and module set and read by every query: it is made
# small rather than fast. tag_id is a hash (8 random bytes: no encoding helps) and most other
# values are distinct, so no dictionaries; rows in the kernel's order keep a file's lines
# together. On a real 3,360-tag table: 87 KB -> 63 KB (docs/performance.md).
_TAG_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 19,
    "use_dictionary": ["module"],
    "column_encoding": {"line": "DELTA_BINARY_PACKED"},
    "store_schema": False,
}
_HOT_SCHEMA = STORE_SAMPLE_SCHEMA.set(
    0, pa.field("snapshot_id", pa.dictionary(pa.int32(), pa.string()))
)
# What changes between two snapshots rows of one recorder, with its PLAIN format: written into
# the last row's file (allocsnap.patching); hot files patch snapshot_id, taken_at, bytes, calls.
_ROW_PATCHED = {
    "snapshot_id": "",
    "taken_at": "<q",
    "boottime_s": "<d",
    "read_s": "<d",
    "profiling": "<i",  # int8 is stored as INT32
    "rows": "<q",
    "total_bytes": "<q",
    "total_calls": "<q",
    "skipped_lines": "<q",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- single snapshot files ---------------------------------------------------------------------


def write_snapshot_file(path: Path, snap: Snapshot) -> None:
    """Write one snapshot as a self-describing Parquet file (rows + metadata), atomically."""
    metadata = {
        META_KEY: json.dumps(snap.meta.to_row(), default=_json_default).encode(),
        VERSION_KEY: str(SCHEMA_VERSION).encode(),
    }
    table = snap.samples.replace_schema_metadata(metadata)
    atomic_write(table, path)


def read_snapshot_file(path: Path) -> Snapshot:
    """Read a file written by ``write_snapshot_file``; refuse other Parquet files clearly."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise StoreError(f"cannot read {path}: {e}") from e
    metadata = table.schema.metadata or {}
    if META_KEY not in metadata:
        raise StoreError(f"{path} is a Parquet file but not an allocsnap snapshot")
    # A single file's layout has not changed since schema 1, so any version up to ours reads.
    _check_version(int(metadata.get(VERSION_KEY, b"0")), str(path), oldest=1)
    row = json.loads(metadata[META_KEY])
    row["taken_at"] = datetime.fromisoformat(row["taken_at"])
    meta = SnapshotMeta.from_row(row)
    return Snapshot(meta=meta, samples=table.replace_schema_metadata(None).cast(SAMPLE_SCHEMA))


def is_parquet(path: Path) -> bool:
    """Return True when ``path`` is a file that starts with Parquet's magic bytes."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


# -- the store ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreFiles:
    """A store's files at one instant, for a Parquet reader.

    Listed snapshots first, then samples: a writer adds samples before the snapshots row that
    commits them, so every committed generation listed here has its samples listed too (two
    globs expanded by the reader in another order could miss a compaction's samples file).
    A remote store's files are paths in ``filesystem`` (pyarrow's); a local store's are paths
    a reader opens itself (``filesystem`` None).
    """

    snapshots: list[str]
    tags: list[str]
    samples: list[str]
    filesystem: Any = None
    listed: dict[str, Any] = field(default_factory=dict)  # path -> pyarrow FileInfo (size, mtime)


def open_store(where: Location) -> StoreFiles:
    """Return the table files of an existing store, local or remote; raise ``StoreNotFound``
    if it has none."""
    import pyarrow.fs as pafs  # here: the recorder, which imports this module, needs none

    if isinstance(where, Remote):
        s3, root = remote.filesystem(where)
        try:
            files = list_store(s3, root, str(where))
        except StoreNotFound:
            if s3.get_file_info(where.bucket).type == pafs.FileType.NotFound:
                raise StoreNotFound(f"bucket {where.bucket!r} of {where} does not exist") from None
            raise
        except OSError as e:
            raise remote.error(where, e) from e
        return replace(files, filesystem=s3)
    try:
        return list_store(pafs.LocalFileSystem(), str(where), str(where))
    except OSError as e:
        raise StoreError(f"cannot read {where}: {_why(e)}") from e


def list_store(filesystem: pafs.FileSystem, root: str, name: str) -> StoreFiles:
    """List the visible files of the store at ``root`` in a pyarrow file system (local or S3).

    The rules for every store: the marker file makes a folder a store; tables are
    ``tags/*.parquet`` and ``{snapshots,samples}/host=*/date=*/*.parquet`` (temp files end in
    ``.tmp``); snapshots are listed before samples (see ``StoreFiles``).
    """
    import pyarrow.fs as pafs

    marker = filesystem.get_file_info(f"{root}/{MARKER}")
    if marker.type != pafs.FileType.File:
        if filesystem.get_file_info(root).type == pafs.FileType.Directory and any(
            filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        ):
            raise StoreNotFound(f"{name} is not an allocsnap store (no {MARKER})")
        raise StoreNotFound(f"no snapshots in {name}")
    with filesystem.open_input_stream(marker.path) as f:
        _check_version(_parse_marker(f.read(), f"{name}/{MARKER}"), name)
    snapshots = _table_files(filesystem, f"{root}/snapshots", partitioned=True)
    if not snapshots:
        raise StoreNotFound(f"no snapshots in {name}")
    samples = _table_files(filesystem, f"{root}/samples", partitioned=True)
    tags = _table_files(filesystem, f"{root}/tags", partitioned=False)
    return StoreFiles(
        snapshots=[info.path for info in snapshots],
        tags=[info.path for info in tags],
        samples=[info.path for info in samples],
        listed={info.path: info for table in (snapshots, samples, tags) for info in table},
    )


def _table_files(
    filesystem: pafs.FileSystem, folder: str, *, partitioned: bool
) -> list[pafs.FileInfo]:
    """Return the ``*.parquet`` files of one table folder (``host=*/date=*/`` below it when
    ``partitioned``), sorted by path."""
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(folder, recursive=partitioned, allow_not_found=True)
    found = []
    for info in filesystem.get_file_info(selector):
        parts = info.path[len(folder) + 1 :].split("/")
        if info.type != pafs.FileType.File or not parts[-1].endswith(".parquet"):
            continue
        if partitioned:
            in_place = len(parts) == 3 and parts[0][:5] == "host=" and parts[1][:5] == "date="
        else:
            in_place = len(parts) == 1
        if in_place:
            found.append(info)
    return sorted(found, key=lambda info: str(info.path))


def write(root: Path, snap: Snapshot) -> Path:
    """Add a snapshot to the store at ``root`` (created if needed); return its snapshots file."""
    return Writer(root).add(snap)


class Writer:
    """Adds snapshots to one store, remembering which tag sets it already wrote.

    Each ``add`` takes the store's writer lock for the few milliseconds of the write, so that
    one-shot ``snap``/``import`` runs and a recorder can share a store. A file shaped like the
    last one of its kind (the recorder's case) is encoded by writing its new values into that
    one (``allocsnap.patching``: the same bytes as pyarrow's, for a tenth of the CPU), unless
    ``patch`` is False.
    """

    def __init__(self, root: Path, *, patch: bool = True) -> None:
        ensure_store(root)
        self.root = root
        self.bytes_written = 0
        self._tagsets: set[str] = set()
        self._tags: _Tags | None = None  # of the last tag_id array seen
        self._samples = Encoder(_HOT_OPTIONS)
        self._rows = Encoder(_ROW_OPTIONS)
        self._samples.enabled = self._rows.enabled = patch

    @property
    def patched(self) -> int:
        """Return how many files were encoded by patching the last one of their shape."""
        return self._samples.patched + self._rows.patched

    def add(self, snap: Snapshot) -> Path:
        """Write the snapshot's tags (when new), samples and, last, its snapshots row."""
        meta = snap.meta
        partition = partition_of(meta.host, meta.taken_at)
        samples = snap.samples
        tags = self._tag_order(samples)
        tags_path = self.root / "tags" / f"{tags.tagset}.parquet"
        samples_path = self.root / "samples" / partition / f"{meta.snapshot_id}.parquet"
        snapshot_path = self.root / "snapshots" / partition / f"{meta.snapshot_id}.parquet"
        sid = meta.snapshot_id.encode()
        at = _micros(meta.taken_at)
        row = meta.to_row()
        del row["host"]
        row["generation"] = 0
        try:
            hot = self._samples.encode(
                (tags, samples.num_rows, len(sid)) if tags.chunk is not None else None,
                lambda: hot_samples(samples, meta, tags.order, tags.static),
                lambda: {
                    "snapshot_id": sid,
                    "taken_at": at,
                    "bytes": _in_order(samples["bytes"], tags),
                    "calls": _in_order(samples["calls"], tags),
                },
            )
            snapshots = self._rows.encode(
                _row_key(row),
                lambda: pa.Table.from_pylist([row], schema=STORE_SNAPSHOT_SCHEMA),
                lambda: _row_values(row),
            )
        except pa.ArrowException as e:
            raise StoreError(f"cannot write {samples_path}: {_why(e)}") from e
        with writer_lock(self.root):
            if tags_path.name not in self._tagsets:
                if not tags_path.exists():
                    tags = _tag_table(samples)
                    self.bytes_written += atomic_write(tags, tags_path, _TAG_OPTIONS)
                self._tagsets.add(tags_path.name)
            self.bytes_written += atomic_write_data(hot, samples_path)
            self.bytes_written += atomic_write_data(snapshots, snapshot_path)
        return snapshot_path

    def _tag_order(self, samples: pa.Table) -> _Tags:
        """Return the rows' order by (tag_id, occurrence) and the tag set's content address.

        The recorder's parser hands out the same tag_id array while the kernel's table keeps
        its shape, so both are computed once per shape (the cache holds the array, so its
        buffer cannot be reused for other data while cached). A filter makes new arrays at
        each snapshot: then rows whose tag columns are equal to the cached ones reuse it.
        """
        column = samples["tag_id"]
        chunk = column.chunk(0) if column.num_chunks == 1 else None
        cached = self._tags
        if chunk is not None and cached is not None:
            if _same_buffer(cached.chunk, chunk) or all(
                samples[name].equals(cached.rows[name]) for name in _STATIC_COLUMNS
            ):
                return cached
        order = pc.sort_indices(samples, [("tag_id", "ascending"), ("occurrence", "ascending")])
        ids = np.ascontiguousarray(column.to_numpy())
        tagset = hashlib.blake2b(ids.tobytes(), digest_size=8).hexdigest()
        if chunk is None:
            return _Tags(None, {}, order, np.asarray(order), tagset, {})
        rows = {name: samples[name] for name in _STATIC_COLUMNS}
        static = {name: samples[name].take(order) for name in _STATIC_COLUMNS}
        self._tags = _Tags(chunk, rows, order, np.asarray(order), tagset, static)
        return self._tags


@dataclass(frozen=True, eq=False)
class _Tags:
    """A tag_id array's order by (tag_id, occurrence), tag set address and sorted static columns.

    Compared by identity: the hot files' template key (one object per tag_id array seen).
    """

    chunk: pa.Array | None  # None when the rows came in several chunks: nothing is cached
    rows: dict[str, pa.ChunkedArray]  # the static columns in the rows' order
    order: pa.Array
    order_np: np.ndarray[Any, Any]
    tagset: str
    static: dict[str, pa.Array]


def _in_order(column: pa.ChunkedArray, tags: _Tags) -> memoryview:
    values: np.ndarray[Any, Any] = column.to_numpy()[tags.order_np]
    return values.data


def _micros(at: datetime) -> bytes:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    return struct.pack("<q", (at - _EPOCH) // timedelta(microseconds=1))


def _row_key(row: dict[str, Any]) -> Hashable:
    """Return what fixes a snapshots row's file apart from the patched values."""
    fixed = tuple(_frozen(v) for k, v in row.items() if k not in _ROW_PATCHED)
    patched = tuple(row[k] is None for k in _ROW_PATCHED)
    return fixed, patched, len(row["snapshot_id"].encode())


def _row_values(row: dict[str, Any]) -> dict[str, Buffer]:
    values: dict[str, Buffer] = {"snapshot_id": row["snapshot_id"].encode()}
    values["taken_at"] = _micros(row["taken_at"])
    for name, fmt in list(_ROW_PATCHED.items())[2:]:
        if row[name] is not None:
            values[name] = struct.pack(fmt, row[name])
    return values


def _frozen(value: Any) -> Hashable:
    return tuple(_frozen(v) for v in value) if isinstance(value, list | tuple) else value


def _same_buffer(a: pa.Array, b: pa.Array) -> bool:
    return bool(
        len(a) == len(b)
        and a.offset == b.offset
        and a.buffers()[1].address == b.buffers()[1].address
    )


def partition_of(host: str, taken_at: datetime) -> str:
    """Return the ``host=H/date=D`` partition of a snapshot."""
    if "/" in host or host.startswith(".") or not host:
        raise StoreError(f"host name {host!r} cannot name a partition")
    # readers find a snapshot's files by its UTC date
    utc = taken_at if taken_at.tzinfo is None else taken_at.astimezone(UTC)
    return f"host={host}/date={utc.date().isoformat()}"


def hot_samples(
    samples: pa.Table,
    meta: SnapshotMeta,
    order: pa.Array | None = None,
    static: dict[str, pa.Array] | None = None,
) -> pa.Table:
    """Return a snapshot's rows as a hot samples file: store columns, sorted by tag.

    ``static`` holds columns already in that order (the recorder's tags do not change).
    """
    n = samples.num_rows
    if order is None:
        order = pc.sort_indices(samples, [("tag_id", "ascending"), ("occurrence", "ascending")])
    static = static or {}
    zeros = np.zeros(n, dtype=np.int32)
    indices = pa.array(zeros)
    columns = [
        pa.DictionaryArray.from_arrays(indices, pa.array([meta.snapshot_id], pa.string())),
        pa.array([meta.taken_at], pa.timestamp("us", "UTC")).take(indices),
        *(
            static[name] if name in static else samples[name].take(order)
            for name in STORE_SAMPLE_COLUMNS[2:-1]
        ),
        indices,
    ]
    return pa.Table.from_arrays(columns, schema=_HOT_SCHEMA)


def _tag_table(samples: pa.Table) -> pa.Table:
    """Return one row per tag_id (its first), in the order of the samples (the kernel's).

    numpy rather than a pyarrow group_by: Acero's engine and thread pool would stay resident
    in the recorder (15 MB measured) for a table written once per kernel and module set.
    """
    _ids, first = np.unique(samples["tag_id"].to_numpy(), return_index=True)
    return samples.select(TAG_COLUMNS).take(pa.array(np.sort(first)))


def ensure_store(root: Path) -> None:
    """Create the store at ``root`` if needed; refuse a foreign folder or another version."""
    marker = root / MARKER
    if marker.is_file():
        _check_version(_marker_version(root), str(root))
        return
    if root.is_dir() and any(p.name != MARKER for p in root.iterdir()):
        raise StoreError(f"{root} exists and is not an allocsnap store; choose another --store")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create store {root}: {e.strerror}") from e
    content = {"schema_version": SCHEMA_VERSION, "created_by": f"allocsnap {__version__}"}
    atomic_write_bytes(json.dumps(content, indent=1).encode() + b"\n", marker)


def check_store(root: Path) -> None:
    """Raise unless ``root`` is a store this allocsnap reads (its marker, its schema version)."""
    if not (root / MARKER).is_file():
        raise StoreNotFound(f"{root} is not an allocsnap store (no {MARKER})")
    _check_version(_marker_version(root), str(root))


def _marker_version(root: Path) -> int:
    marker = root / MARKER
    try:
        return _parse_marker(marker.read_bytes(), str(marker))
    except OSError as e:
        raise StoreError(f"{marker} is damaged: {e}") from e


def _parse_marker(content: bytes, where: str) -> int:
    try:
        return int(json.loads(content)["schema_version"])
    except (ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{where} is damaged: {e}") from e


def _check_version(version: int, where: str, *, oldest: int = STORE_MIN_VERSION) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} was written by a newer allocsnap (schema {version}; this one reads "
            f"{SCHEMA_VERSION}): upgrade allocsnap"
        )
    if version < 1:
        raise StoreError(f"{where} has no valid allocsnap schema version")
    if version < oldest:
        raise StoreError(
            f"{where} was written by an older allocsnap (schema {version}; this one reads "
            f"{oldest} to {SCHEMA_VERSION}): read it with that version, or import its dumps anew"
        )


# -- locks -------------------------------------------------------------------------------------


@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Hold the store's writer lock (blocking) while files are added, replaced or removed."""
    with _open_lock(root / WRITER_LOCK) as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        yield


@contextmanager
def recorder_lock(root: Path) -> Iterator[None]:
    """Hold the one-recorder-per-store lock; raise ``StoreLocked`` naming the holder's pid.

    The kernel drops an flock when its holder dies, so a lock left by a killed recorder is
    simply taken back; the pid in the file is only for the message.
    """
    ensure_store(root)
    with _open_lock(root / RECORDER_LOCK) as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise StoreLocked(
                f"{root} is being recorded by pid {holder} (lock {root / RECORDER_LOCK}); "
                "stop that recorder first"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()


@contextmanager
def _open_lock(path: Path) -> Iterator[IO[str]]:
    try:
        f = open(path, "a+")  # noqa: SIM115  closed below; never truncates a holder's pid
    except OSError as e:
        raise StoreError(f"cannot open lock {path}: {e.strerror}") from e
    try:
        yield f
    finally:
        f.close()


# -- atomic files ------------------------------------------------------------------------------


def atomic_write(table: pa.Table, path: Path, options: dict[str, Any] | None = None) -> int:
    """Write a Parquet file via temp + fsync + rename; return its size in bytes."""
    # Encoded in memory, then one write and an fsync on the same descriptor: less CPU than
    # Arrow's file writer on a path (a filesystem lookup, many small writes, a reopen).
    sink = pa.BufferOutputStream()
    try:
        pq.write_table(table, sink, **(options or _PARQUET_OPTIONS))
    except pa.ArrowException as e:
        raise StoreError(f"cannot write {path}: {_why(e)}") from e
    return atomic_write_data([sink.getvalue()], path)


def atomic_write_data(parts: Sequence[Buffer], path: Path) -> int:
    """Write an encoded file, given as pieces in order, via temp + fsync + rename; return its
    size in bytes."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    views = [memoryview(part).cast("B") for part in parts]
    size = sum(view.nbytes for view in views)
    try:
        _write_durably(tmp, views)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        discard(tmp)
        raise StoreError(f"cannot write {path}: {_why(e)}") from e
    return size


def _write_durably(path: Path, views: list[memoryview]) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:  # the first file of a partition
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o644)
    try:
        while views:  # writev may write less than asked: go on from where it stopped
            done = os.writev(fd, views)
            while views and done >= views[0].nbytes:
                done -= views.pop(0).nbytes
            if views:
                views[0] = views[0][done:]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write bytes via temp + fsync + rename."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        discard(tmp)
        raise StoreError(f"cannot write {path}: {e.strerror}") from e


def discard(path: Path) -> None:
    """Remove a temp file if it is there; a failure here must not hide the original error."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in snapshot metadata")
