"""The store's two locks: the writer lock (held while files are added, replaced or removed) and
the one-recorder-per-store lock."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from allocsnap.errors import StoreError, StoreLocked
from allocsnap.store.durable import FILE_MODE, open_folder, why
from allocsnap.store.durable import check_owner_stat as check_owner
from allocsnap.store.layout import RECORDER_LOCK, WRITER_LOCK, ensure_store

# read and written, created when missing, never truncated here, never through a symlink
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Hold the store's writer lock (blocking) while files are added, replaced or removed."""
    with _open_lock(root, WRITER_LOCK) as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        yield


@contextmanager
def recorder_lock(root: Path) -> Iterator[None]:
    """Hold the one-recorder-per-store lock; raise ``StoreLocked`` naming the holder's pid.

    The kernel drops an flock when its holder dies, so a lock left by a killed recorder is
    simply taken back; the pid in the file is only for the message.
    """
    ensure_store(root)
    with _open_lock(root, RECORDER_LOCK) as f:
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
def _open_lock(root: Path, name: str) -> Iterator[IO[str]]:
    """Open a lock file of the store, created 0600 if missing: never through a symlink, never
    truncated on opening (a holder's pid stays), and only a regular file of one link (the
    recorder's lock is rewritten: a hard link would carry that write elsewhere)."""
    path = root / name
    folder = open_folder(root, root)
    try:
        fd = os.open(name, _LOCK_FLAGS, FILE_MODE, dir_fd=folder)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(
                f"lock {path} is a symbolic link: allocsnap follows none inside a store; "
                "remove it (and check who made it)"
            ) from e
        raise StoreError(f"cannot open lock {path}: {why(e)}") from e
    finally:
        os.close(folder)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise StoreError(
                f"lock {path} is not a plain file (a hard link, a device or a pipe?); remove it"
            )
        check_owner(st, path, root)
        f = os.fdopen(fd, "r+")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f
