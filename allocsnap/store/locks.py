"""The store's two locks: the writer lock (held while files are added, replaced or removed) and
the one-recorder-per-store lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from allocsnap.errors import StoreError, StoreLocked
from allocsnap.store.layout import RECORDER_LOCK, WRITER_LOCK, ensure_store


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
