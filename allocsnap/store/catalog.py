"""The catalog: every committed snapshot's row, kept beside the store so that ``ls`` and the
resolution of ``first``, ``latest``, names, id prefixes and times need not open every
snapshots file (docs/storage.md, "The catalog").

A cache, never an authority. It names each snapshots file it was built from with the file's
size, mtime and inode; every use lists ``snapshots/host=*/date=*/`` (a few ``scandir`` calls)
and re-reads only the files that are new or changed, drops those gone, and rewrites it. A
catalog that is a link, not a regular file, too big for its store, of another version, or
whose checksum or contents are wrong is ignored and rebuilt; a store with any link among its
snapshots folders, or whose host names a reader could take for numbers or times, is answered
by the store itself (None here). Importing this module imports neither pyarrow nor DuckDB: a
fresh catalog answers ``ls`` without them (allocsnap/cli/store_argv.py).
"""

from __future__ import annotations

import json
import os
import re
import stat
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path

from allocsnap import units

TYPE_CHECKING = False  # typing stays out of ls's one-shot path (cli/store_argv.py)
if TYPE_CHECKING:
    from typing import Any

    Entry = tuple[Any, ...]
    """A committed snapshot: its newest row's ``FIELDS`` values, its host, and the snapshots
    file that holds the row (below snapshots/: ``host=H/date=D/NAME.parquet``)."""
    FileKey = tuple[int, int, int]
    """A snapshots file as listed: size, mtime in ns, inode."""
    Kept = tuple[dict[str, tuple[FileKey, list[Entry]]], dict[str, FileKey]]
    """A stored catalog: per snapshots file its key and entries; the other files it checked."""

NAME = "snapshots-catalog.json"
VERSION = 1
MAGIC = b"allocsnap-catalog"
MARKER = "allocsnap-store.json"  # layout.MARKER (layout imports pyarrow)
_MIN_LIMIT = 1 << 20
_PER_BYTE = 64  # a catalog row of a snapshots file's compressed row is about 5 times its size
_MAX_SNAPSHOTS_FILE = 1 << 30  # a snapshots file is read whole into memory to rebuild
_MAX_GLOB = 1024  # filters.MAX_GLOB_CHARS (filters imports pyarrow)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

FIELDS = (
    "snapshot_id",
    "name",
    "taken_at",  # microseconds since the epoch, UTC
    "boottime_s",
    "boot_id",
    "kernel",
    "format",
    "source",
    "origin",
    "profiling",
    "filter",
    "read_s",
    "modules",
    "labels",  # [[key, value], ...]
    "notes",
    "rows",
    "total_bytes",
    "total_calls",
    "skipped_lines",
    "schema_version",
    "generation",
)
_COLUMN = {name: i for i, name in enumerate(FIELDS)}
_NONE: type = type(None)
_TEXT: set[type] = {str, _NONE}
_INT: set[type] = {int, _NONE}
_FLOAT: set[type] = {float, int, _NONE}
_OTHER = re.compile(r"(samples/host=[^/\0]+/date=[^/\0]+/|tags/)[^/\0]+\.parquet")
_PATH = re.compile(r"host=[^/\0]+/date=[^/\0]+/[^/\0]+\.parquet")
_LISTS = ("modules", "labels", "notes")  # stored once each, in "lists", and named by index
_TYPES: dict[str, set[type]] = {  # the types of a column's values in a catalog file
    "snapshot_id": {str},
    "taken_at": {int},
    "boottime_s": _FLOAT,
    "profiling": _INT,
    "read_s": _FLOAT,
    "rows": _INT,
    "total_bytes": _INT,
    "total_calls": _INT,
    "skipped_lines": _INT,
    "schema_version": _INT,
    "generation": {int},
    **dict.fromkeys(_LISTS, _INT),
}
# hive partition values a reader may type as something else than text (a number, a time, a
# boolean) and print back otherwise: a store whose every host looks so is read the old way
_TYPED_WORDS = {"true", "false", "t", "f", "yes", "no", "on", "off", "null", "nan", "inf"}
_NOT_TEXT = re.compile(r"[0-9+\-.:eEtTzZ _]*")


HOST = len(FIELDS)  # an entry is a row's FIELDS values, then its host and its file
FILE = HOST + 1


def value(entry: Entry, name: str) -> Any:
    """Return an entry's value of one of ``FIELDS``."""
    return entry[_COLUMN[name]]


def taken_at(entry: Entry) -> datetime:
    """Return an entry's time (UTC)."""
    micros: int = entry[2]
    return _EPOCH + micros * _MICROSECOND


def as_row(entry: Entry) -> dict[str, Any]:
    """Return the snapshot's row as the ``snapshots`` view gives it (host included)."""
    row = dict(zip(FIELDS, entry[:HOST], strict=True))
    row["taken_at"] = taken_at(entry)
    labels = row["labels"]
    row["labels"] = None if labels is None else [(k, v) for k, v in labels]
    row["host"] = entry[HOST]
    return row


class Catalog:
    """The committed snapshots of a store, newest generation each."""

    def __init__(
        self, root: Path, entries: list[Entry], *, written: bool, others: dict[str, FileKey]
    ) -> None:
        self.root = root
        self.entries = entries
        self.written = written  # False when answered from memory (the store not writable)
        self.others = others  # the samples and tags files it checked, by path below the store

    def snapshots(self, match: Callable[[str], bool]) -> list[Entry]:
        """Return what ``queries/snapshots.sql`` returns with no bounds, then ordered as
        ``analysis.snapshots`` orders it: by time, host and the natural order of origins."""
        ids = {e[0] for e in self.entries if match(e[HOST])}
        chosen = [e for e in self.entries if e[0] in ids]
        # sorted by (time, id), then by (time, host, origin) kept stable: one sort on all four
        natural = {o: units.natural_key(o or "") for o in {e[8] for e in chosen}}
        return sorted(chosen, key=lambda e: (e[2], e[HOST], natural[e[8]], e[0]))

    def resolve(
        self, kind: str, ref: str | None, at: datetime | None, match: Callable[[str], bool]
    ) -> list[Entry]:
        """Return the rows ``queries/resolve.sql`` returns (at most two, in its order)."""
        if kind in ("first", "latest"):
            found = [e for e in self.entries if match(e[HOST])]
        elif kind == "name":
            found = [e for e in self.entries if e[1] == ref and match(e[HOST])]
        elif kind == "id":
            assert ref is not None
            found = [e for e in self.entries if e[0].startswith(ref) and match(e[HOST])]
        else:
            assert at is not None
            limit = (at - _EPOCH) // _MICROSECOND
            found = [e for e in self.entries if e[2] <= limit and match(e[HOST])]
        if kind == "first":
            found.sort(key=lambda e: (e[2], e[0]))
        else:
            found.sort(key=lambda e: (-e[2], e[0]))
        return found[:2]

    def named(self, ref: str, match: Callable[[str], bool]) -> Entry | None:
        """Return the snapshot a reference names, tried in the order of ``attempts``; None
        when it names none or several (``analysis.resolve`` says which, in its words)."""
        for kind, text, at in attempts(ref):
            found = self.resolve(kind, text, at, match)
            if len(found) > 1 and (kind == "id" or found[0][2] == found[1][2]):
                return None
            if found:
                return found[0]
        return None


def attempts(ref: str) -> list[tuple[str, str | None, datetime | None]]:
    """Return the ways a reference may name a snapshot, in the order they are tried by the
    ``resolve`` query (DuckDB's and Spark's) and by ``Catalog.resolve``: first/latest, name,
    id prefix, time. A reference that starts as a date but is no time raises ``UsageError``."""
    if ref in ("first", "latest"):
        return [(ref, None, None)]
    found: list[tuple[str, str | None, datetime | None]] = [("name", ref, None)]
    if re.fullmatch(r"[0-9a-f]{4,12}", ref):
        found.append(("id", ref, None))
    if re.match(r"^\d{4}-\d{2}-\d{2}", ref):
        found.append(("time", None, units.parse_time(ref)))
    return found


def open_catalog(root: Path, *, rebuild: bool = True, write: bool = True) -> Catalog | None:
    """Return the catalog of the local store at ``root``, brought up to date with its
    snapshots files, or None when the store must be read the old way (no marker, no
    snapshots, a link in its snapshots folders, a file that cannot be read: the old way says
    why, in its words).

    Without ``rebuild``, only a fresh catalog is returned (the caller imports no pyarrow).
    With ``write``, a catalog rebuilt is stored (atomically, 0600); if that fails (a user who
    may read the store but not write it) the answer comes from memory all the same.
    """
    try:
        marker = _marker_key(root)
        listed = list_files(root)
        others = list_others(root)
    except OSError:
        return None
    if marker is None or not listed or others is None or not _text_hosts(listed):
        return None
    kept, checked = _read(root, marker, sum(key[0] for key in listed.values()))
    fresh = {path: rows for path, (key, rows) in kept.items() if listed.get(path) == key}
    if len(fresh) == len(listed) == len(kept) and checked == others:
        return Catalog(root, _newest(fresh), written=True, others=others)
    if not rebuild or not _valid_store(root):
        return None
    # a samples or tags file whose footer cannot be read fails the views of every reading
    # (ls included): the store's own reading names it, or leaves it out
    if not all(checked.get(path) == key or _readable(root, path) for path, key in others.items()):
        return None
    keys: dict[str, FileKey] = {}
    rows: dict[str, list[tuple[Any, ...]]] = {}
    try:
        for path in sorted(listed):
            if path in fresh:
                keys[path], rows[path] = listed[path], fresh[path]
            else:
                keys[path], rows[path] = _read_snapshots_file(root, path)
    except _Unreadable:
        return None
    written = write and _write(root, marker, keys, rows, others)
    return Catalog(root, _newest(rows), written=written, others=others)


def host_test(pattern: str | None) -> Callable[[str], bool] | None:
    """Return a test of host names against a ``filters.hosts_regex`` expression (RE2, as
    DuckDB matches it), or None when Python's ``re`` could read it otherwise (a POSIX class)."""
    if pattern is None:
        return lambda _host: True
    if "[:" in pattern:
        return None
    compiled = re.compile(pattern)
    return lambda host: compiled.fullmatch(host) is not None


def hosts_test(globs: list[str] | None) -> Callable[[str], bool] | None:
    """Return a test of host names against ``--host`` names and globs (``*``, ``?``) as
    ``filters.hosts_regex`` matches them; None for one read otherwise here (a bracket class,
    a NUL, one longer than ``filters.MAX_GLOB_CHARS``: the CLI's and the views' to read)."""
    globs = globs or []
    if any("[" in g or "\0" in g or len(g) > _MAX_GLOB for g in globs):
        return None
    return host_test(globs_regex(globs))


def globs_regex(globs: list[str]) -> str | None:
    """Return ``filters.hosts_regex`` of globs without brackets (``*``, ``?``, literals)."""
    if not globs:
        return None
    return "|".join(
        "(?:^"
        + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
        + "$)"
        for glob in globs
    )


def list_files(root: Path, table: str = "snapshots") -> dict[str, FileKey] | None:
    """Return the snapshots (or samples) files ``layout.list_store`` lists, each with its
    key, by their path below the table's folder; None when a link is met (the catalog then
    stays out)."""
    found: dict[str, FileKey] = {}
    try:
        hosts = _entries(root / table)
    except FileNotFoundError:
        return found
    for host in hosts:
        if host.is_symlink():
            return None
        if not host.is_dir(follow_symlinks=False) or not host.name.startswith("host="):
            continue
        for day in _entries(Path(host.path)):
            if day.is_symlink():
                return None
            if not day.is_dir(follow_symlinks=False) or not day.name.startswith("date="):
                continue
            for file in _entries(Path(day.path)):
                if file.is_symlink():
                    return None
                if not file.name.endswith(".parquet") or not file.is_file(follow_symlinks=False):
                    continue
                st = file.stat(follow_symlinks=False)
                found[f"{host.name}/{day.name}/{file.name}"] = _key(st)
    return found


def list_others(root: Path) -> dict[str, FileKey] | None:
    """Return the samples and tags files ``layout.list_store`` lists, with their keys, by
    their path below the store (``samples/host=H/date=D/NAME``, ``tags/NAME``); None when a
    link is met."""
    samples = list_files(root, "samples")
    if samples is None:
        return None
    found = {f"samples/{path}": key for path, key in samples.items()}
    try:
        tags = _entries(root / "tags")
    except FileNotFoundError:
        return found
    for file in tags:
        if file.is_symlink():
            return None
        if file.name.endswith(".parquet") and file.is_file(follow_symlinks=False):
            found[f"tags/{file.name}"] = _key(file.stat(follow_symlinks=False))
    return found


def _readable(root: Path, path: str) -> bool:
    """Return True when a Parquet file's footer reads (all the views read of a file they
    register: its schema), opened through no link."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        fd = os.open(root / path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            pq.ParquetFile(f).schema_arrow  # noqa: B018 - reading it is the test
        except (pa.ArrowException, OSError, ValueError):
            return False
    return True


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as listing:
        return list(listing)


def limit(snapshots_bytes: int) -> int:
    """Return the largest catalog accepted for a store whose snapshots files hold this many
    bytes: a catalog row is a few times its compressed row, never a hundred."""
    return _MIN_LIMIT + _PER_BYTE * snapshots_bytes


def _key(st: os.stat_result) -> FileKey:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _marker_key(root: Path) -> list[int] | None:
    """Return the marker's key (what a catalog was built beside), or None without one."""
    try:
        st = os.stat(root / MARKER, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return list(_key(st))


def _valid_store(root: Path) -> bool:
    """Return True when the store's marker is one this allocsnap reads (checked before a
    catalog is rebuilt: a fresh one was built beside this very marker)."""
    from allocsnap.errors import AllocsnapError
    from allocsnap.store import layout  # pyarrow: on the rebuild only

    try:
        layout.check_store(root)
    except AllocsnapError:
        return False
    return True


def _text_hosts(listed: dict[str, FileKey]) -> bool:
    """Return True when some host name is text to any reader, so all are read back as text."""
    hosts = {path.split("/", 1)[0][5:] for path in listed}
    return any(not _NOT_TEXT.fullmatch(h) and h.lower() not in _TYPED_WORDS for h in hosts)


def _newest(files: dict[str, list[Entry]]) -> list[Entry]:
    """Return each snapshot's row of the highest generation (the ``snapshots`` view's rule)."""
    entries = list(chain.from_iterable(files.values()))
    keys = zip(map(itemgetter(HOST), entries), map(itemgetter(0), entries), strict=True)
    if len(set(keys)) == len(entries):
        return entries  # each snapshot in one file: no compaction under way
    best: dict[tuple[str, str], Entry] = {}
    for e in entries:
        old = best.get((e[HOST], e[0]))
        if old is None or e[HOST - 1] > old[HOST - 1]:
            best[(e[HOST], e[0])] = e
    return list(best.values())


# -- the file -----------------------------------------------------------------------------


def _read(root: Path, marker: list[int], snapshots_bytes: int) -> Kept:
    """Return the files a stored catalog describes, or nothing when it is not to be trusted:
    a link, not a regular file, too big, damaged, of another version or another marker."""
    try:
        fd = os.open(root / NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return {}, {}
    try:
        st = os.fstat(fd)
        bound = limit(snapshots_bytes)
        if not stat.S_ISREG(st.st_mode) or st.st_size > bound:
            return {}, {}
        data = _read_all(fd, st.st_size + 1)
    except OSError:
        return {}, {}
    finally:
        os.close(fd)
    try:
        return _parse(data, marker)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return {}, {}


def _read_all(fd: int, most: int) -> bytes:
    parts = []
    left = most
    while left > 0:
        part = os.read(fd, left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _parse(data: bytes, marker: list[int]) -> Kept:
    head, _, body = data.partition(b"\n")
    magic, version, checksum = head.split(b" ")
    if magic != MAGIC or int(version) != VERSION:
        raise ValueError("another catalog")
    if int(checksum) != zlib.crc32(body):
        raise ValueError("damaged")
    document = json.loads(body)
    if document["marker"] != marker or document["fields"] != list(FIELDS):
        raise ValueError("another store or layout")
    lists = document["lists"]
    if type(lists) is not list or not all(map(_a_list, lists)):
        raise ValueError("not lists")
    shared = [None if v is None else list(v) for v in lists]
    files: dict[str, tuple[FileKey, list[tuple[Any, ...]]]] = {}
    for path, (size, mtime_ns, inode, columns) in document["files"].items():
        if not _PATH.fullmatch(path):
            raise ValueError("not a snapshots file")
        key = (size, mtime_ns, inode)
        if any(type(v) is not int for v in key):
            raise ValueError("not a key")
        files[path] = (key, _columns_to_rows(columns, shared, path))
    checked: dict[str, FileKey] = {}
    for path, key in document["checked"].items():
        if not _OTHER.fullmatch(path) or len(key) != 3 or any(type(v) is not int for v in key):
            raise ValueError("not a samples or tags file")
        checked[path] = tuple(key)
    return files, checked


def _a_list(value: Any) -> bool:
    """Return True for a list of texts (modules, notes) or of [key, value] pairs (labels)."""
    if type(value) is not list:
        return False
    return all(
        type(v) is str
        or (type(v) is list and len(v) == 2 and type(v[0]) is str and type(v[1]) in _TEXT)
        for v in value
    )


def _columns_to_rows(columns: list[Any], shared: list[Any], path: str) -> list[Entry]:
    """Return the entries of one file's columns, once every value has its column's type."""
    if type(columns) is not list or len(columns) != len(FIELDS):
        raise ValueError("columns of another shape")
    out = []
    for name, column in zip(FIELDS, columns, strict=True):
        runs = None
        if type(column) is dict:  # runs of one value: [[value, count], ...]
            runs = column["runs"]
            if not all(type(r) is list and len(r) == 2 and type(r[1]) is int for r in runs):
                raise ValueError("runs of another shape")
            column = [v for v, _n in runs]
        elif type(column) is not list:
            raise ValueError("a column of another shape")
        if not set(map(type, column)) <= _TYPES.get(name, _TEXT):
            raise ValueError(f"{name}: a value of another type")
        if name in _LISTS:
            if any(i is not None and not 0 <= i < len(shared) for i in column):
                raise ValueError(f"{name}: no such list")
            column = [None if i is None else shared[i] for i in column]
        if runs is not None:
            column = list(chain.from_iterable(map(repeat, column, [n for _v, n in runs])))
        out.append(column)
    n = len(out[0])
    if any(len(c) != n for c in out):
        raise ValueError("columns of other lengths")
    return list(zip(*out, repeat(_host(path), n), repeat(path, n), strict=True))


def _host(path: str) -> str:
    return path.split("/", 1)[0][5:]


def _encoded(column: list[Any]) -> list[Any] | dict[str, list[list[Any]]]:
    """Return a column as it is stored: its values, or runs of one value where those are
    fewer than half as many (a boot's kernel, a recorder's labels)."""
    runs: list[list[Any]] = []
    for v in column:
        if runs and runs[-1][0] == v and type(runs[-1][0]) is type(v):
            runs[-1][1] += 1
        else:
            runs.append([v, 1])
    return {"runs": runs} if 2 * len(runs) < len(column) else column


def _write(
    root: Path,
    marker: list[int],
    keys: dict[str, FileKey],
    rows: dict[str, list[tuple[Any, ...]]],
    checked: dict[str, FileKey],
) -> bool:
    """Store the catalog atomically (0600, no link followed); return False when that failed."""
    from allocsnap.errors import StoreError
    from allocsnap.store.durable import atomic_write_data  # pyarrow: on the rebuild only

    lists: dict[str, int] = {}  # each distinct list once (modules change at a module load)
    files = {}
    for path, file_rows in rows.items():
        columns = [list(c) for c in zip(*file_rows, strict=True)][:HOST]
        columns = columns or [[] for _ in FIELDS]
        for name in _LISTS:
            i = _COLUMN[name]
            columns[i] = [
                None if v is None else lists.setdefault(json.dumps(v), len(lists))
                for v in columns[i]
            ]
        files[path] = [*keys[path], [_encoded(c) for c in columns]]
    document = {
        "marker": marker,
        "fields": list(FIELDS),
        "lists": [json.loads(text) for text in lists],
        "files": files,
        "checked": checked,
    }
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    data = MAGIC + f" {VERSION} {zlib.crc32(body)}\n".encode() + body
    try:
        atomic_write_data([data], root / NAME, root=root, create=False)
    except (StoreError, OSError):
        return False
    return True


# -- reading a snapshots file (the rebuild: pyarrow) -------------------------------------


class _Unreadable(Exception):
    """A snapshots file that could not be read (gone, damaged): the old way says so."""


def _read_snapshots_file(root: Path, path: str) -> tuple[FileKey, list[tuple[Any, ...]]]:
    """Return a snapshots file's key as opened and its rows (``FIELDS``), read through no
    link; raise ``_Unreadable`` when it cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        fd = os.open(
            root / "snapshots" / path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        )
    except OSError as e:
        raise _Unreadable(path) from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_SNAPSHOTS_FILE:
            raise _Unreadable(path)
        data = _read_all(fd, st.st_size + 1)
    except OSError as e:
        raise _Unreadable(path) from e
    finally:
        os.close(fd)
    if len(data) != st.st_size:
        raise _Unreadable(path)  # changed while read
    try:
        table = pq.read_table(pa.BufferReader(data))
        rows = _rows(table, path)
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as e:
        raise _Unreadable(path) from e
    return _key(st), rows


def _rows(table: Any, path: str) -> list[Entry]:
    """Return a snapshots table's rows as catalog rows; a column a file lacks is None, as a
    reader that unites files by their column names gives it."""
    import pyarrow as pa

    if "taken_at" not in table.column_names or "generation" not in table.column_names:
        raise ValueError("not a snapshots file")
    micros = table["taken_at"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    columns: list[list[Any]] = []
    for name in FIELDS:
        if name == "taken_at":
            columns.append(micros.to_pylist())
        elif name in table.column_names:
            values = table[name].to_pylist()
            if name == "labels":
                values = [None if v is None else [list(kv) for kv in v] for v in values]
            columns.append(values)
        else:
            columns.append([None] * table.num_rows)
    n = table.num_rows
    rows = list(zip(*columns, repeat(_host(path), n), repeat(path, n), strict=True))
    # what a catalog file may hold: the same check as when one is read
    listed = [v for name in _LISTS for v in columns[_COLUMN[name]] if v is not None]
    if not all(map(_a_list, listed)):
        raise ValueError("a list of another type")
    for name, column in zip(FIELDS, columns, strict=True):
        if name not in _LISTS and not set(map(type, column)) <= _TYPES.get(name, _TEXT):
            raise ValueError(f"{name}: a value of another type")
    return rows
