"""Durable files: written to a temp name, fsynced and renamed, so a reader or a crash sees the
old file or the new one, never a part (docs/recorder.md, "Crash safety")."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from allocsnap.errors import StoreError
from allocsnap.store.patching import Buffer

PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_statistics": True}


def atomic_write(table: pa.Table, path: Path, options: dict[str, Any] | None = None) -> int:
    """Write a Parquet file via temp + fsync + rename; return its size in bytes."""
    # Encoded in memory, then one write and an fsync on the same descriptor: less CPU than
    # Arrow's file writer on a path (a filesystem lookup, many small writes, a reopen).
    sink = pa.BufferOutputStream()
    try:
        pq.write_table(table, sink, **(options or PARQUET_OPTIONS))
    except pa.ArrowException as e:
        raise StoreError(f"cannot write {path}: {why(e)}") from e
    return atomic_write_data([sink.getvalue()], path)


def atomic_write_data(parts: Sequence[Buffer], path: Path) -> int:
    """Write an encoded file, given as pieces in order, via temp + fsync + rename; return its
    size in bytes."""
    tmp = temp_path(path)
    views = [memoryview(part).cast("B") for part in parts]
    size = sum(view.nbytes for view in views)
    try:
        _write_durably(tmp, views)
        os.replace(tmp, path)
        fsync(path.parent)
    except OSError as e:
        discard(tmp)
        raise StoreError(f"cannot write {path}: {why(e)}") from e
    return size


def temp_path(path: Path) -> Path:
    """Return a temp name beside ``path``: ``.{name}.{pid}.{token}.tmp``, owned by this process
    (recovery removes a temp file only once its pid is gone; docs/storage.md)."""
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"


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


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write bytes via temp + fsync + rename."""
    atomic_write_data([data], path)


def discard(path: Path) -> None:
    """Remove a temp file if it is there; a failure here must not hide the original error."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def fsync(path: Path) -> None:
    """Flush a closed file's data, or a folder's renames and unlinks, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def why(e: BaseException) -> str:
    """Return the one-line reason of an OS or Arrow error, for a message."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0] if str(e) else type(e).__name__
