"""Single snapshot files (``allocsnap snap -o FILE.parquet``): the rows and the snapshot's
metadata in one self-describing Parquet file (docs/storage.md)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from allocsnap.errors import StoreError
from allocsnap.model import SAMPLE_SCHEMA, SCHEMA_VERSION, Snapshot, SnapshotMeta
from allocsnap.store.durable import atomic_write
from allocsnap.store.layout import check_version

META_KEY = b"allocsnap.snapshot"
VERSION_KEY = b"allocsnap.schema_version"


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
    import pyarrow.parquet as pq  # here: diff a.txt b.txt reads no Parquet

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise StoreError(f"cannot read {path}: {e}") from e
    metadata = table.schema.metadata or {}
    if META_KEY not in metadata:
        raise StoreError(f"{path} is a Parquet file but not an allocsnap snapshot")
    # A single file's layout has not changed since schema 1, so any version up to ours reads.
    check_version(int(metadata.get(VERSION_KEY, b"0")), str(path), oldest=1)
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


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in snapshot metadata")
