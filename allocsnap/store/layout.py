"""Parquet on disk: single snapshot files and the store directory (docs/storage.md).

A store is three tables any Parquet reader can open — ``snapshots``, ``tags`` and ``samples`` —
with snapshots and samples hive-partitioned by host and date. Every file is written to a temp
name, fsynced and renamed, and a snapshot's row in ``snapshots`` is written last: readers only see
samples of snapshots listed there, so a write killed at any instant leaves no partial snapshot.

Hot data is one samples file and one snapshots file per snapshot (generation 0). Compaction
(``allocsnap.store.compaction``) rewrites closed hours, then closed days, into files sorted by
(tag_id, occurrence, taken_at) with a higher ``generation``; a snapshot's newest row names the
generation that holds its samples, so readers switch over at one rename (docs/recorder.md).
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from allocsnap import __version__
from allocsnap.errors import StoreError, StoreNotFound, UsageError
from allocsnap.model import SAMPLE_SCHEMA, SCHEMA_VERSION, SNAPSHOT_SCHEMA, check_host
from allocsnap.store import remote
from allocsnap.store.durable import (
    DIR_MODE,
    atomic_write_bytes,
    check_tree,
    open_folder,
    set_group,
    share_tree,
    why,
)
from allocsnap.store.remote import Location, Remote
from allocsnap.store.views import StoreFiles as StoreFiles

if TYPE_CHECKING:
    import pyarrow.fs as pafs

MARKER = "allocsnap-store.json"
RECORDER_LOCK = "recorder.lock"
WRITER_LOCK = "writer.lock"
_MARKER_BYTES = 1 << 16  # a marker is a few lines of JSON
STORE_MIN_VERSION = 2  # schema 1 stores had no generations: their views would double-count
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


def open_store(where: Location | str | os.PathLike[str]) -> StoreFiles:
    """Return the table files of an existing store, local or remote (a path, or its text as
    a notebook gives it: ``"data"``, ``"s3://bucket/prefix"``); raise ``StoreNotFound`` if it
    has none."""
    import pyarrow.fs as pafs  # here: the recorder, which imports this module, needs none

    where = remote.location(where)

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
        return files._replace(filesystem=s3)
    if where.is_dir() and not os.access(where, os.R_OK | os.X_OK):
        raise StoreError(
            f"cannot read {where}: permission denied; a store is root's alone (0700, as "
            "/proc/allocinfo is 0400): read it with sudo, or let a group of yours read it with "
            "--group (docs/storage.md)"
        )
    try:
        return list_store(pafs.LocalFileSystem(), str(where), str(where))
    except OSError as e:
        raise StoreError(f"cannot read {where}: {why(e)}") from e


def list_store(filesystem: pafs.FileSystem, root: str, name: str) -> StoreFiles:
    """List the visible files of the store at ``root`` in a pyarrow file system (local or S3).

    The rules for every store: the marker file makes a folder a store; tables are
    ``tags/*.parquet`` and ``{snapshots,samples}/host=*/date=*/*.parquet`` (temp files end in
    ``.tmp``); snapshots are listed before samples (see ``StoreFiles``).
    """
    import pyarrow.fs as pafs

    marker = filesystem.get_file_info(f"{root}/{MARKER}")
    if marker.type != pafs.FileType.File:
        kind = filesystem.get_file_info(root).type
        if kind == pafs.FileType.Directory and any(
            filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        ):
            raise StoreNotFound(f"{name} is not an allocsnap store (no {MARKER})")
        if isinstance(filesystem, pafs.LocalFileSystem):  # object stores have no folders
            if kind == pafs.FileType.NotFound:
                raise StoreNotFound(
                    f"store {name} does not exist (snap, import or record create it; "
                    "--store or $ALLOCSNAP_STORE name another)"
                )
            if kind == pafs.FileType.File:
                raise StoreNotFound(f"store {name} is a file, not a store directory")
        raise StoreNotFound(f"no snapshots in {name}")
    with filesystem.open_input_stream(marker.path) as f:
        check_version(_parse_marker(f.read(_MARKER_BYTES), f"{name}/{MARKER}"), name)
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


def partition_of(host: str, taken_at: datetime) -> str:
    """Return the ``host=H/date=D`` partition of a snapshot."""
    check_host(host)  # a name with '=', '/', '%' or '\\' would be read back as another
    # readers find a snapshot's files by its UTC date
    utc = taken_at if taken_at.tzinfo is None else taken_at.astimezone(UTC)
    return f"host={host}/date={utc.date().isoformat()}"


def ensure_store(root: Path, group: str | None = None) -> None:
    """Create the store at ``root`` if needed (0700); refuse a foreign folder or another
    version, and, run as root, a store another user owns or may write (``check_owner``).

    ``group`` makes the store readable by that group from now on (its files 0640, folders
    0750; a store setting kept in the marker, docs/storage.md); without it, the store's own
    setting holds.
    """
    marker = root / MARKER
    wanted = _gid(group) if group is not None else None  # an unknown group changes nothing
    if not root.is_dir():
        try:
            root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create store {root}: {e.strerror}") from e
    if marker.is_file():  # read with a bound, never through a link: before any check
        content = _marker_content(root)
        check_version(_version_of(content, str(marker)), str(root))
    elif any(p.name != MARKER for p in root.iterdir()):
        raise StoreError(f"{root} exists and is not an allocsnap store; choose another --store")
    else:
        content = {"schema_version": SCHEMA_VERSION, "created_by": f"allocsnap {__version__}"}
    # a store's folders only: --store /tmp or / is refused above, not walked or blamed here
    os.close(open_folder(root, root))  # refuses a store root must not write to
    check_tree(root)
    if wanted is not None and content.get("group") != group:
        content["group"] = group
        set_group(root, wanted)
        atomic_write_bytes(json.dumps(content, indent=1).encode() + b"\n", marker, root=root)
        share_tree(root, wanted)
        return
    kept = content.get("group")
    set_group(root, _gid(kept, marker) if isinstance(kept, str) and kept else None)
    if not marker.is_file():
        atomic_write_bytes(json.dumps(content, indent=1).encode() + b"\n", marker, root=root)


def _gid(group: str, marker: Path | None = None) -> int:
    import grp

    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if marker is None:
            raise UsageError(f"no group {group!r} on this host (see /etc/group)") from None
        raise StoreError(
            f"{marker} lets group {group!r} read the store, and this host has no such group: "
            "create it, or give the store another with --group"
        ) from None


def check_store(root: Path) -> None:
    """Raise unless ``root`` is a store this allocsnap reads (its marker, its schema version)."""
    if not (root / MARKER).is_file():
        raise StoreNotFound(f"{root} is not an allocsnap store (no {MARKER})")
    check_version(_marker_version(root), str(root))


def _marker_version(root: Path) -> int:
    return _parse_marker(read_marker(root), str(root / MARKER))


def _marker_content(root: Path) -> dict[str, Any]:
    where = str(root / MARKER)
    try:
        content = json.loads(read_marker(root))
    except ValueError as e:
        raise StoreError(f"{where} is damaged: {e}") from e
    if not isinstance(content, dict):
        raise StoreError(f"{where} is damaged: not a JSON object")
    return content


def _version_of(content: dict[str, Any], where: str) -> int:
    try:
        return int(content["schema_version"])
    except (ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{where} is damaged: {e}") from e


def _parse_marker(content: bytes, where: str) -> int:
    try:
        return int(json.loads(content)["schema_version"])
    except (ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{where} is damaged: {e}") from e


def read_marker(root: Path) -> bytes:
    """Return the marker file's bytes: a regular file, read up to a bound, never a link."""
    marker = root / MARKER
    try:
        fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(f"{marker} is not a regular file; remove it")
            return os.read(fd, _MARKER_BYTES)
        finally:
            os.close(fd)
    except OSError as e:
        raise StoreError(f"{marker} is damaged: {why(e)}") from e


def check_version(version: int, where: str, *, oldest: int = STORE_MIN_VERSION) -> None:
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
