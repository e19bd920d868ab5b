"""Durable files: written to a temp name, fsynced and renamed, so a reader or a crash sees the
old file or the new one, never a part (docs/recorder.md, "Crash safety")."""

from __future__ import annotations

import functools
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa

from allocsnap.errors import StoreError

if TYPE_CHECKING:  # patching is the recorder's encoder: pyarrow.parquet and numpy
    from allocsnap.store.patching import Buffer

PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_statistics": True}
FILE_MODE = 0o600  # what the kernel shows root only stays root's (docs/storage.md)
DIR_MODE = 0o700
SHARED_FILE_MODE = 0o640  # a store with a group (allocsnap record --group adm)
SHARED_DIR_MODE = 0o750
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def atomic_write(
    table: pa.Table,
    path: Path,
    options: dict[str, Any] | None = None,
    *,
    root: Path | None = None,
) -> int:
    """Write a Parquet file via temp + fsync + rename; return its size in bytes (``root``: as
    ``atomic_write_data``)."""
    # Encoded in memory, then one write and an fsync on the same descriptor: less CPU than
    # Arrow's file writer on a path (a filesystem lookup, many small writes, a reopen).
    import pyarrow.parquet as pq  # here: readers of a store (diff, show) write nothing

    sink = pa.BufferOutputStream()
    try:
        pq.write_table(table, sink, **(options or PARQUET_OPTIONS))
    except pa.ArrowException as e:
        raise StoreError(f"cannot write {path}: {why(e)}") from e
    return atomic_write_data([sink.getvalue()], path, root=root)


def atomic_write_data(
    parts: Sequence[Buffer],
    path: Path,
    *,
    root: Path | None = None,
    mode: int | None = None,
    create: bool = True,
) -> int:
    """Write an encoded file, given as pieces in order, via temp + fsync + rename; return its
    size in bytes.

    With ``root`` (the store ``path`` is in), no symlink below ``root`` is followed and missing
    folders are created 0700 (``open_folder``; not without ``create``); the file is 0600 (0640
    and 0750 in a store given a group: ``set_group``), or ``mode`` when given.
    """
    views = [memoryview(part).cast("B") for part in parts]
    size = sum(view.nbytes for view in views)
    try:
        folder = open_folder(path.parent, root, create=create)
    except StoreError as e:
        raise StoreError(f"cannot write {path}: {e}") from e
    tmp = temp_name(path.name)
    try:
        _write_durably(folder, tmp, views, root, mode)
        os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        os.fsync(folder)
    except OSError as e:
        _discard_at(folder, tmp)
        raise StoreError(f"cannot write {path}: {why(e)}") from e
    finally:
        os.close(folder)
    return size


def _write_durably(
    folder: int, name: str, views: list[memoryview], root: Path | None, mode: int | None = None
) -> None:
    fd = os.open(name, NEW_FILE, FILE_MODE, dir_fd=folder)
    try:
        share(fd, root, folder=False)
        if mode is not None:  # exactly this mode, whatever the umask
            os.fchmod(fd, mode)
        while views:  # writev may write less than asked: go on from where it stopped
            done = os.writev(fd, views)
            while views and done >= views[0].nbytes:
                done -= views.pop(0).nbytes
            if views:
                views[0] = views[0][done:]
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes, path: Path, *, root: Path | None = None) -> None:
    """Write bytes via temp + fsync + rename."""
    atomic_write_data([data], path, root=root)


def publish(data: bytes, path: Path, mode: int) -> None:
    """Write a file for other programs to read (node_exporter's textfile collector) via temp +
    fsync + rename, with exactly ``mode``, into its folder, which must exist.

    The temp file is created O_EXCL | O_NOFOLLOW under a random name in that folder, and the
    rename replaces a symlink planted at ``path`` instead of writing through it.
    """
    atomic_write_data([data], path, mode=mode, create=False)


def temp_name(name: str) -> str:
    """Return a temp file name for the file ``name``: ``.{name}.{pid}.{token}.tmp``.

    The random token makes it unpredictable (a planted file or link of that name cannot be
    waiting: it is created O_EXCL); the pid tells a cleanup whether its writer still runs.
    """
    return f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"


def temp_path(path: Path) -> Path:
    """Return a fresh temp path beside ``path`` (``temp_name``)."""
    return path.parent / temp_name(path.name)


def create_file(path: Path, root: Path | None = None) -> BinaryIO:
    """Create a new file (never an existing one, never through a symlink), mode 0600 (or the
    store's group's 0640), and return it open for writing; its folder is opened as
    ``open_folder`` does."""
    folder = open_folder(path.parent, root, create=True)
    try:
        fd = os.open(path.name, NEW_FILE, FILE_MODE, dir_fd=folder)
        try:
            share(fd, root, folder=False)
        except OSError:
            os.close(fd)
            _discard_at(folder, path.name)
            raise
    except OSError as e:
        raise StoreError(f"cannot create {path}: {why(e)}") from e
    finally:
        os.close(folder)
    return os.fdopen(fd, "wb")


def replace(tmp: Path, path: Path, root: Path | None = None) -> None:
    """Rename ``tmp`` over ``path`` in the same folder, and flush the folder: a rename
    replaces a symlink at ``path`` rather than following it."""
    folder = open_folder(path.parent, root)
    try:
        os.replace(tmp.name, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        os.fsync(folder)
    finally:
        os.close(folder)


def open_folder(path: Path, root: Path | None = None, *, create: bool = False) -> int:
    """Open the folder ``path`` and return its descriptor (the caller closes it).

    With ``root``, ``path`` is ``root`` or a folder below it, and below ``root`` no symlink is
    followed: each folder is opened O_NOFOLLOW from its parent's descriptor, and created 0700
    when missing and ``create``. Run as root, each one (``root`` too) must be owned by root and
    writable by no one else (``check_owner``). Without ``root``, ``path`` is opened as given (a
    folder the user named, such as ``snap -o``'s).
    """
    parts: tuple[str, ...] = ()
    if root is None:
        base = path
        if create:
            _make_folders(path)
    else:
        base, parts = root, path.relative_to(root).parts
    try:
        fd = os.open(base, _FOLDER)
    except OSError as e:
        raise StoreError(f"cannot open {base}: {why(e)}") from e
    # the recorder comes here twice a snapshot: paths are only made for messages
    checked = root is not None and as_root()
    try:
        if checked:
            check_owner(fd, base, root)
        for i, part in enumerate(parts):
            parent, fd = fd, -1
            try:
                fd = _open_below(parent, part, base, parts[: i + 1], create)
            finally:
                os.close(parent)
            if checked and (problem := _owner_problem(fd)) is not None:
                raise _owner_error(problem, base.joinpath(*parts[: i + 1]), root)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    return fd


def _open_below(parent: int, name: str, base: Path, parts: tuple[str, ...], create: bool) -> int:
    for attempt in range(2):
        try:
            fd = os.open(name, _FOLDER | os.O_NOFOLLOW, dir_fd=parent)
            if attempt:  # made here: a group-readable store's group
                _share_new(fd, base)
            return fd
        except FileNotFoundError:
            where = base.joinpath(*parts)
            if not create or attempt:
                raise StoreError(f"cannot open {where}: it does not exist") from None
            try:
                os.mkdir(name, DIR_MODE, dir_fd=parent)
            except FileExistsError:  # another writer made it meanwhile
                pass
            except OSError as e:
                raise StoreError(f"cannot create {where}: {why(e)}") from e
        except OSError as e:
            where = base.joinpath(*parts)
            if _is_link(parent, name):
                raise StoreError(
                    f"{where} is a symbolic link: allocsnap follows none inside a store; "
                    "remove it (and check who made it)"
                ) from e
            raise StoreError(f"cannot open {where}: {why(e)}") from e
    raise AssertionError("unreachable")


_GROUPS: dict[str, int] = {}
"""Store root -> the group that may read it (a store setting: layout.ensure_store)."""


def set_group(root: Path, gid: int | None) -> None:
    """Make the files and folders created from now on in the store at ``root`` readable by the
    group ``gid`` (0640, 0750), or by root alone (None: 0600, 0700)."""
    if gid is None:
        _GROUPS.pop(str(root), None)
    else:
        _GROUPS[str(root)] = gid


def share(fd: int, root: Path | None, *, folder: bool) -> None:
    """Give a file or folder just created in ``root`` the store's group, if it has one."""
    gid = _GROUPS.get(str(root)) if root is not None else None
    if gid is not None:
        os.fchown(fd, -1, gid)
        os.fchmod(fd, SHARED_DIR_MODE if folder else SHARED_FILE_MODE)


def share_tree(root: Path, gid: int) -> None:
    """Give every folder and file of the store at ``root`` the group ``gid`` (0750, 0640):
    a store given a group later is readable by it whole. Links were refused before."""
    for folder, _dirs, files in os.walk(root):
        for path, mode in [(folder, SHARED_DIR_MODE)] + [
            (os.path.join(folder, name), SHARED_FILE_MODE) for name in files
        ]:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:  # a temp file renamed, a partition pruned meanwhile
                continue
            except OSError as e:
                raise StoreError(f"cannot give {path} the group {gid}: {why(e)}") from e
            try:
                os.fchown(fd, -1, gid)
                os.fchmod(fd, mode)
            except OSError as e:
                raise StoreError(f"cannot give {path} the group {gid}: {why(e)}") from e
            finally:
                os.close(fd)


def _share_new(fd: int, root: Path) -> None:
    try:
        share(fd, root, folder=True)
    except OSError as e:
        os.close(fd)
        raise StoreError(f"cannot give a new folder of {root} its group: {why(e)}") from e


def _is_link(folder: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _make_folders(path: Path) -> None:
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create {path}: {why(e)}") from e


def check_owner(fd: int, where: Path, root: Path | None) -> None:
    """Refuse, when running as root, a store folder (or file) that another user owns or that
    group or others may write: whoever can change it can make root write anywhere (ssh refuses
    such key folders for the same reason)."""
    if not as_root():
        return
    problem = _owner_problem(fd)
    if problem is not None:
        raise _owner_error(problem, where, root)


def check_owner_stat(st: os.stat_result, where: Path, root: Path | None) -> None:
    """``check_owner`` of a file whose status the caller has at hand."""
    if as_root() and (st.st_uid != 0 or st.st_mode & 0o022):
        raise _owner_error(st, where, root)


@functools.cache
def as_root() -> bool:
    """Return True when this process runs as root (asked once: allocsnap never changes it)."""
    return os.geteuid() == 0


def _owner_problem(fd: int) -> os.stat_result | None:
    st = os.fstat(fd)
    return st if st.st_uid != 0 or st.st_mode & 0o022 else None


def _owner_error(st: os.stat_result, where: Path, root: Path | None) -> StoreError:
    store = root or where
    if st.st_uid != 0:
        return StoreError(
            f"{where} is owned by uid {st.st_uid}, not root: a user who owns a folder of a store "
            f"root writes to can send root's writes elsewhere; if the store is yours, fix it "
            f"with: chown -R root: {store} && chmod -R go-w {store}"
        )
    return StoreError(
        f"{where} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}): "
        f"another user could plant links in it; fix it with: chmod -R go-w {store}"
    )


def check_tree(root: Path, *, owners: bool = True) -> None:
    """Refuse, when running as root, a store holding a symlink anywhere, or (``owners``) a
    folder that another user owns or group or others may write (``check_owner``): what prune
    and recovery delete, and readers read, stays inside the store. A few thousand entries a
    year of data. ``owners=False`` checks only for links: a store that root reads but never
    writes (a merge's source, which another user may own)."""
    if not as_root():
        return
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:  # a partition pruned meanwhile
            continue
        except OSError as e:
            raise StoreError(f"cannot read {folder}: {why(e)}") from e
        for entry in entries:
            if entry.is_symlink():
                raise StoreError(
                    f"{entry.path} is a symbolic link: allocsnap follows none inside a store; "
                    "remove it (and check who made it)"
                )
            if entry.is_dir(follow_symlinks=False):
                if not owners:
                    folders.append(Path(entry.path))
                    continue
                try:
                    fd = os.open(entry.path, _FOLDER | os.O_NOFOLLOW)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    raise StoreError(f"cannot open {entry.path}: {why(e)}") from e
                try:
                    check_owner(fd, Path(entry.path), root)
                finally:
                    os.close(fd)
                folders.append(Path(entry.path))


def open_read(path: Path) -> BinaryIO:
    """Open a file for reading without following a link in its last component."""
    return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")


def _discard_at(folder: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        pass


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
