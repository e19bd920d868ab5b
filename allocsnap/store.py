"""Parquet on disk: single snapshot files and the store directory (docs/storage.md).

A store is three tables any Parquet reader can open — ``snapshots``, ``tags`` and ``samples`` —
with snapshots and samples hive-partitioned by host and date. Every file is written to a temp
name, fsynced and renamed, and a snapshot's row in ``snapshots`` is written last: readers only see
samples of snapshots listed there, so a write killed at any instant leaves no partial snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from allocsnap import __version__
from allocsnap.errors import StoreError, StoreNotFound
from allocsnap.model import SAMPLE_SCHEMA, SCHEMA_VERSION, SNAPSHOT_SCHEMA, Snapshot, SnapshotMeta

MARKER = "allocsnap-store.json"
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
]
STORE_SNAPSHOT_SCHEMA = SNAPSHOT_SCHEMA.remove(SNAPSHOT_SCHEMA.get_field_index("host"))
_PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_statistics": True}


# -- single snapshot files ---------------------------------------------------------------------


def write_snapshot_file(path: Path, snap: Snapshot) -> None:
    """Write one snapshot as a self-describing Parquet file (rows + metadata), atomically."""
    metadata = {
        META_KEY: json.dumps(snap.meta.to_row(), default=_json_default).encode(),
        VERSION_KEY: str(SCHEMA_VERSION).encode(),
    }
    table = snap.samples.replace_schema_metadata(metadata)
    _atomic_write(table, path)


def read_snapshot_file(path: Path) -> Snapshot:
    """Read a file written by ``write_snapshot_file``; refuse other Parquet files clearly."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise StoreError(f"cannot read {path}: {e}") from e
    metadata = table.schema.metadata or {}
    if META_KEY not in metadata:
        raise StoreError(f"{path} is a Parquet file but not an allocsnap snapshot")
    _check_version(int(metadata.get(VERSION_KEY, b"0")), str(path))
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
    """Where a store's tables live, as globs for a Parquet reader."""

    snapshots: str
    tags: str
    samples: str


def open_store(root: Path) -> StoreFiles:
    """Return the table globs of an existing store; raise ``StoreNotFound`` if it has none."""
    marker = root / MARKER
    if not marker.is_file():
        if root.is_dir() and any(root.iterdir()):
            raise StoreNotFound(f"{root} is not an allocsnap store (no {MARKER})")
        raise StoreNotFound(f"no snapshots in {root}")
    try:
        version = int(json.loads(marker.read_text())["schema_version"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{marker} is damaged: {e}") from e
    _check_version(version, str(root))
    if not any((root / "snapshots").glob("host=*/date=*/*.parquet")):
        raise StoreNotFound(f"no snapshots in {root}")
    return StoreFiles(
        snapshots=str(root / "snapshots" / "host=*" / "date=*" / "*.parquet"),
        tags=str(root / "tags" / "*.parquet"),
        samples=str(root / "samples" / "host=*" / "date=*" / "*.parquet"),
    )


def write(root: Path, snap: Snapshot) -> Path:
    """Add a snapshot to the store at ``root`` (created if needed); return its snapshots file."""
    _ensure_store(root)
    meta = snap.meta
    if "/" in meta.host or meta.host.startswith("."):
        raise StoreError(f"host name {meta.host!r} cannot name a partition")
    # readers find a snapshot's files by its UTC date (analysis._stored_samples)
    taken_at = meta.taken_at if meta.taken_at.tzinfo is None else meta.taken_at.astimezone(UTC)
    partition = f"host={meta.host}/date={taken_at.date().isoformat()}"
    tags = (
        snap.samples.select(TAG_COLUMNS)
        .group_by("tag_id", use_threads=False)
        .aggregate([(c, "first") for c in TAG_COLUMNS[1:]])
    )
    tags = tags.rename_columns(["tag_id", *TAG_COLUMNS[1:]]).sort_by("tag_id")
    ids = ",".join(str(i) for i in tags["tag_id"].to_pylist()).encode()
    tagset = hashlib.blake2b(ids, digest_size=8).hexdigest()
    tags_path = root / "tags" / f"{tagset}.parquet"
    if not tags_path.exists():
        _atomic_write(tags, tags_path)

    n = snap.samples.num_rows
    samples = snap.samples.select(STORE_SAMPLE_COLUMNS[2:])
    samples = samples.add_column(
        0, "taken_at", pa.array([meta.taken_at] * n, pa.timestamp("us", "UTC"))
    )
    samples = samples.add_column(0, "snapshot_id", pa.array([meta.snapshot_id] * n, pa.string()))
    _atomic_write(samples, root / "samples" / partition / f"{meta.snapshot_id}.parquet")

    row = meta.to_row()
    del row["host"]
    snapshot_path = root / "snapshots" / partition / f"{meta.snapshot_id}.parquet"
    _atomic_write(pa.Table.from_pylist([row], schema=STORE_SNAPSHOT_SCHEMA), snapshot_path)
    return snapshot_path


def _ensure_store(root: Path) -> None:
    marker = root / MARKER
    if marker.is_file():
        open_store_version = json.loads(marker.read_text()).get("schema_version")
        _check_version(int(open_store_version), str(root))
        return
    if root.is_dir() and any(p.name != MARKER for p in root.iterdir()):
        raise StoreError(f"{root} exists and is not an allocsnap store; choose another --store")
    root.mkdir(parents=True, exist_ok=True)
    content = {"schema_version": SCHEMA_VERSION, "created_by": f"allocsnap {__version__}"}
    _atomic_write_bytes(json.dumps(content, indent=1).encode() + b"\n", marker)


def _check_version(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} was written by a newer allocsnap (schema {version}; this one reads "
            f"{SCHEMA_VERSION}): upgrade allocsnap"
        )
    if version < 1:
        raise StoreError(f"{where} has no valid allocsnap schema version")


def _atomic_write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, **_PARQUET_OPTIONS)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, pa.ArrowException) as e:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {e}") from e
    _fsync_dir(path.parent)


def _atomic_write_bytes(data: bytes, path: Path) -> None:
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {e.strerror}") from e
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in snapshot metadata")
