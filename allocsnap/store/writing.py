"""Adding snapshots to a store: the hot samples file, the tags file of a new tag set and, last,
the snapshot's row that commits them (docs/storage.md, docs/recorder.md)."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allocsnap.errors import StoreError, UsageError
from allocsnap.model import Snapshot, SnapshotMeta
from allocsnap.store.durable import atomic_write, atomic_write_data, why
from allocsnap.store.layout import (
    STORE_SAMPLE_COLUMNS,
    STORE_SAMPLE_SCHEMA,
    STORE_SNAPSHOT_SCHEMA,
    TAG_COLUMNS,
    ensure_store,
    partition_of,
)
from allocsnap.store.locks import writer_lock
from allocsnap.store.patching import Buffer, Encoder

_STATIC_COLUMNS = ["tag_id", "occurrence", "ordinal", "accurate", "extras"]
# Hot files live an hour: written as cheaply as possible (the recorder has a CPU budget per
# snapshot that compression alone would eat into); compaction makes them small.
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
# together (the sizes are in docs/performance.md).
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
# What changes between two snapshots rows of one recorder, or of one import of a folder (each
# dump's path), with its PLAIN format ("": a string, patched by one of the same length):
# written into the last row's file (store.patching); hot files patch snapshot_id, taken_at,
# bytes, calls.
_ROW_PATCHED = {
    "snapshot_id": "",
    "origin": "",
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


def write(root: Path, snap: Snapshot, *, exclusive: bool = False) -> Path:
    """Add a snapshot to the store at ``root`` (created if needed); return its snapshots file.

    ``exclusive`` refuses a snapshot of a host at an instant that holds another one already.
    """
    return Writer(root, exclusive=exclusive).add(snap)


def holder(root: Path, host: str, at: datetime) -> dict[str, Any] | None:
    """Return the snapshots row (id, origin) of ``host``'s snapshot taken at ``at``, or None.

    Reads the partition's snapshots files: for imports, not the recorder's hot path.
    """
    return Instants(root).holder(host, at)


class Instants:
    """The snapshots rows (id, time, origin) of a store's partitions, read once per file.

    ``holder`` lists the partition at each call. While it holds the same names as the last time,
    its instants come from a table kept since: an ``import`` of 1,000 dumps checks an instant
    before each write, and going through every file of the partition each time made it
    quadratic; the files a ``Writer`` writes are told to it (``wrote``) rather than read back.
    A snapshot's name is its content address (a hot file's id covers its time; a compacted
    file's generation is new), so one name keeps its instants. When the names change, each
    file is read unless it was read before under its name and inode number (which a listing
    gives without a stat): a file replaced by renaming another over it is read again.

    ``once`` lists each partition only the first time it is asked about: for a check before
    writing (``import`` refusing a taken instant before it writes anything), which the
    ``Writer``'s own check, under the store's lock, backs up.
    """

    def __init__(self, root: Path, *, once: bool = False) -> None:
        self.root = root
        self.once = once
        self._read: dict[str, tuple[int, list[dict[str, Any]]]] = {}  # path: inode, rows
        # per partition: the names it held when last read, and the first row per instant
        self._listed: dict[Path, tuple[set[str], dict[datetime, dict[str, Any]]]] = {}

    def holder(self, host: str, at: datetime) -> dict[str, Any] | None:
        """Return the snapshots row (id, origin) of ``host``'s snapshot taken at ``at``, or None."""
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        found = self._instants(self.root / "snapshots" / partition_of(host, at)).get(at)
        return None if found is None else dict(found)

    def _instants(self, folder: Path) -> dict[datetime, dict[str, Any]]:
        """Return the partition's first row per instant, its files taken in name order."""
        known = self._listed.get(folder)
        if known is not None and self.once:
            return known[1]
        if known is not None and known[0] == _names(folder):
            return known[1]
        entries = _entries(folder)
        by_time: dict[datetime, dict[str, Any]] = {}
        for entry in sorted(entries, key=lambda e: e.name):
            # links and other non-files are not read
            if entry.name.endswith(".parquet") and entry.is_file(follow_symlinks=False):
                for row in self._rows(entry):
                    by_time.setdefault(row["taken_at"], row)
        self._listed[folder] = ({e.name for e in entries}, by_time)
        return by_time

    def wrote(self, path: Path, meta: SnapshotMeta) -> None:
        """Remember the snapshots file just written for ``meta``, so it is not read back."""
        row = {"snapshot_id": meta.snapshot_id, "taken_at": meta.taken_at, "origin": meta.origin}
        inode = os.stat(path, follow_symlinks=False).st_ino
        self._read[str(path)] = (inode, [row])
        known = self._listed.get(path.parent)
        if known is not None:  # the listing it had, plus this file: relisted when another changed
            names, by_time = known
            names.add(path.name)
            if by_time.get(meta.taken_at, row)["snapshot_id"] == meta.snapshot_id:
                by_time[meta.taken_at] = row
            else:
                del self._listed[path.parent]  # two rows at one instant: read in name order

    def _rows(self, entry: os.DirEntry[str]) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        inode = entry.inode()
        known = self._read.get(entry.path)
        if known is not None and known[0] == inode:
            return known[1]
        try:
            table = pq.read_table(entry.path, columns=["snapshot_id", "taken_at", "origin"])
        except (OSError, pa.ArrowException) as e:
            raise StoreError(f"cannot read {entry.path}: {why(e)}") from e
        rows: list[dict[str, Any]] = table.to_pylist()
        self._read[entry.path] = (inode, rows)
        return rows


def _names(folder: Path) -> set[str]:
    """Return the names in a partition folder (none when it does not exist)."""
    try:
        return set(os.listdir(folder))
    except FileNotFoundError:
        return set()
    except OSError as e:
        raise StoreError(f"cannot read {folder}: {why(e)}") from e


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """Return the entries of a partition folder (none when it does not exist)."""
    try:
        with os.scandir(folder) as listing:
            return list(listing)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StoreError(f"cannot read {folder}: {why(e)}") from e


class Writer:
    """Adds snapshots to one store, remembering which tag sets it already wrote.

    Each ``add`` takes the store's writer lock for the few milliseconds of the write, so that
    one-shot ``snap``/``import`` runs and a recorder can share a store. A file shaped like the
    last one of its kind (the recorder's case) is encoded by writing its new values into that
    one (``allocsnap.store.patching``: the same bytes as pyarrow's, for a tenth of the CPU), unless
    ``patch`` is False.
    """

    def __init__(self, root: Path, *, patch: bool = True, exclusive: bool = False) -> None:
        ensure_store(root)
        self.root = root
        self.exclusive = exclusive
        self._instants = Instants(root)
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
            raise StoreError(f"cannot write {samples_path}: {why(e)}") from e
        with writer_lock(self.root):
            if self.exclusive:
                taken = self._instants.holder(meta.host, meta.taken_at)
                if taken is not None and taken["snapshot_id"] != meta.snapshot_id:
                    raise UsageError(
                        f"{meta.origin or meta.source}: the store holds snapshot "
                        f"{taken['snapshot_id']} of host {meta.host} taken at "
                        f"{meta.taken_at:%Y-%m-%d %H:%M:%S} UTC already "
                        f"({taken['origin'] or 'recorded'}), and a host has one snapshot per "
                        "instant: give this one another time (allocsnap import --at)"
                    )
            if tags_path.name not in self._tagsets:
                if not tags_path.exists():
                    tags = _tag_table(samples)
                    self.bytes_written += atomic_write(
                        tags, tags_path, _TAG_OPTIONS, root=self.root
                    )
                self._tagsets.add(tags_path.name)
            self.bytes_written += atomic_write_data(hot, samples_path, root=self.root)
            self.bytes_written += atomic_write_data(snapshots, snapshot_path, root=self.root)
            if self.exclusive:
                self._instants.wrote(snapshot_path, meta)
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
            if same_buffer(cached.chunk, chunk) or all(
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
    # which are NULL (not in the file's runs), and the length of each string
    patched = tuple(
        None if row[k] is None else len(row[k].encode()) if fmt == "" else 0
        for k, fmt in _ROW_PATCHED.items()
    )
    return fixed, patched


def _row_values(row: dict[str, Any]) -> dict[str, Buffer]:
    values: dict[str, Buffer] = {}
    for name, fmt in _ROW_PATCHED.items():
        value = row[name]
        if value is None:
            continue
        if fmt == "":
            values[name] = value.encode()
        elif name == "taken_at":
            values[name] = _micros(value)
        else:
            values[name] = struct.pack(fmt, value)
    return values


def _frozen(value: Any) -> Hashable:
    return tuple(_frozen(v) for v in value) if isinstance(value, list | tuple) else value


def same_buffer(a: pa.Array, b: pa.Array) -> bool:
    """Return whether two arrays are views of the same values: one buffer, whole, both."""
    return bool(
        len(a) == len(b)
        and a.offset == b.offset
        and a.buffers()[1].address == b.buffers()[1].address
    )


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
    in the recorder for a table written once per kernel and module set.
    """
    _ids, first = np.unique(samples["tag_id"].to_numpy(), return_index=True)
    return samples.select(TAG_COLUMNS).take(pa.array(np.sort(first)))
