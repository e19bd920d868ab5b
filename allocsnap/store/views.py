"""DuckDB over a store's files: the ``queries/`` folder, and connections with allocsnap's macros
and a store's views. Imports DuckDB's engine alone (``_duckdb``), never pyarrow: a command
answered from the catalog reads a snapshot with it (allocsnap/oneshot/stored.py);
analysis/query.py runs queries for Arrow over the same connections, through the ``duckdb``
package, whose relational API is written in Python over that engine and takes 65 ms more to
import (docs/performance.md). The connection, its class and its errors are the same objects
through either name; this module calls none of the package's Python methods.

Views over a store's files are made by queries/store_files.sql, with their paths bound into
variables (paths never enter SQL text): ``snapshot_files``, ``sample_files`` and ``tag_files``.
Definitions are files: ``macro_*`` on every connection, ``view_*`` over a store, and
``explore_view_*`` / ``explore_macro_*`` over a store for people's own SQL (docs/sql.md).
"""

from __future__ import annotations

import atexit
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import _duckdb as duckdb

from allocsnap.errors import QueryError, StoreError
from allocsnap.store import remote

Connection = duckdb.DuckDBPyConnection
"""What ``open_connection`` returns; named here so that callers need not import duckdb."""


class StoreFiles(NamedTuple):
    """A store's files at one instant, for a Parquet reader.

    Listed snapshots first, then samples: a writer adds samples before the snapshots row that
    commits them, so every committed generation listed here has its samples listed too (two
    globs expanded by the reader in another order could miss a compaction's samples file).
    A remote store's files are paths in ``filesystem`` (pyarrow's); a local store's are paths
    a reader opens itself (``filesystem`` None). A named tuple, as ``SnapshotMeta`` is.
    """

    snapshots: list[str]
    tags: list[str]
    samples: list[str]
    filesystem: Any = None
    listed: dict[str, Any] = {}  # path -> pyarrow FileInfo (size, mtime); read only


def queries_dir() -> Path:
    """Return the folder of ``.sql`` files, installed or in a checkout (found from this file,
    without importlib.resources: a few ms of a new process that answers in 0.2 s)."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "queries"  # a wheel: force-include put them here
    if packaged.is_dir():
        return packaged
    root = package.parent  # a source or editable checkout
    if (root / "pyproject.toml").is_file() and (root / "queries").is_dir():
        return root / "queries"
    raise QueryError("the queries/ folder is missing from this installation")


def names() -> list[str]:
    """Return the names of all queries, sorted."""
    return sorted(p.name[:-4] for p in queries_dir().iterdir() if p.name.endswith(".sql"))


@cache
def sql(name: str) -> str:
    """Return the text of ``queries/<name>.sql``."""
    path = queries_dir() / f"{name}.sql"
    if not path.is_file():
        raise QueryError(f"no query named {name!r}")
    return path.read_text(encoding="utf-8")


def declared_params_in(text: str, sigil: str) -> set[str]:
    """Return the parameters a query's header comment declares, one a line: ``-- $name TYPE``
    (DuckDB's ``$``, Spark's ``:``)."""
    declaration = re.compile(rf"--\s+{re.escape(sigil)}(\w+)\s")
    header = [line for line in text.splitlines() if line.startswith("--")]
    return {m.group(1) for line in header if (m := declaration.match(line))}


def used_params_in(text: str, sigil: str) -> set[str]:
    """Return the parameters a query's body uses, comment lines left out (``::`` casts are
    not parameters)."""
    use = re.compile(rf"(?<![:\w]){re.escape(sigil)}([a-z_][a-z0-9_]*)")
    body = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return set(use.findall("\n".join(body)))


def open_connection(
    store: StoreFiles | None = None,
    *,
    explore: bool = False,
    sandbox: bool = False,
    only: tuple[str, ...] | None = None,
    opening: Opening | None = None,
) -> duckdb.DuckDBPyConnection:
    """Return a new connection with allocsnap's macros, and a store's views when one is given.

    ``explore`` adds, over a store, the views and macros made for people's own SQL
    (``queries/explore_*.sql``: series, latest, deltas, dir_totals, movers, new_and_vanished;
    docs/sql.md). The analyses do not read them, and creating them costs about 50 ms on a
    one-day store, so their connections leave them out. The caller closes the connection.

    ``sandbox`` (for SQL from the user: ``allocsnap sql``) lets the connection read the
    store's files and nothing else (``queries/sandbox.sql``); it cannot be refreshed.

    ``only`` names the macros and views to create (their files' names) in place of them all:
    a connection for a few known queries (allocsnap/oneshot/stored.py), in a new process
    whose whole run is a few such queries.

    ``opening`` is the connection to set up, opened beforehand (``Opening``).
    """
    con = opening.connection() if opening is not None else _connect()
    try:
        if store is not None:
            paths = _register_files(con, store)
            if sandbox:
                _statements(con, "sandbox", paths=[path for table in paths for path in table])
        _define(con, _kinds(store is not None, explore), only)
    except duckdb.IOException as e:
        con.close()
        raise StoreError(first_line(e)) from e
    except duckdb.Error as e:
        con.close()
        raise QueryError(first_line(e)) from e
    return con


def _connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(config={"temp_directory": spill_directory()})


class Opening:
    """A connection opened in a thread while the caller imports and reads what it needs before
    it can use one (allocsnap/oneshot: the rest of its modules and the catalog, to know the
    files). DuckDB's start-up, 20-40 ms of a command that answers in about 0.2 s, runs mostly
    without the GIL, so the two overlap; the thread takes the GIL back within a millisecond
    meanwhile (the switch interval, 5 ms by default, made it wait half as long again as the
    start-up). Macros are made by the caller: each statement takes the GIL back several times.
    Pass it to ``open_connection``, or ``close`` it."""

    def __init__(self) -> None:
        self._opened: list[duckdb.DuckDBPyConnection | BaseException] = []
        self._thread = threading.Thread(target=self._open, name="allocsnap-connect", daemon=True)
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        self._thread.start()

    def _open(self) -> None:
        try:
            self._opened.append(_connect())
        except BaseException as e:  # raised again in the caller's thread
            self._opened.append(e)

    def connection(self) -> duckdb.DuckDBPyConnection:
        """Return the connection once it is open; raise what opening it raised."""
        opened = self._joined()
        if isinstance(opened, BaseException):
            raise opened
        return opened

    def close(self) -> None:
        """Close the connection (again, if its user closed it: DuckDB allows that)."""
        opened = self._joined()
        if not isinstance(opened, BaseException):
            opened.close()

    def _joined(self) -> duckdb.DuckDBPyConnection | BaseException:
        self._thread.join()
        sys.setswitchinterval(self._switch)
        return self._opened[0]


@cache
def spill_directory() -> str:
    """Return this process's folder for what DuckDB spills to disk: made with ``mkdtemp``
    (a new name, mode 0700) and removed at exit.

    DuckDB's own default is ``.tmp`` in the current folder, which it creates or follows: a
    root-run allocsnap started in a folder another user can write would write gigabytes of
    spill wherever that user's ``.tmp`` link points.
    """
    folder = tempfile.mkdtemp(prefix="allocsnap-spill-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _statements(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
    """Run ``queries/<name>.sql`` statement by statement, each with the ``$params`` it uses
    (DuckDB binds parameters in the last statement of a text only)."""
    for statement in sql(name).split(";\n"):
        body = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
        if body.strip():
            used = used_params_in(body, "$")
            con.execute(body, {key: params[key] for key in used} or None)


def refresh(con: duckdb.DuckDBPyConnection, store: StoreFiles, *, explore: bool = False) -> None:
    """Point a connection's views at the store's files as they are now (new snapshots, files
    that compaction replaced); the views, macros and the user's own objects stay."""
    try:
        _register_files(con, store)
        _define(con, _kinds(True, explore))
    except duckdb.IOException as e:
        raise StoreError(first_line(e)) from e
    except duckdb.Error as e:
        raise QueryError(first_line(e)) from e


def first_line(e: BaseException) -> str:
    """Return the line of a DuckDB error that says what failed: its first, or for an error
    raised in Python code that DuckDB called (a remote store's file system, reading a file
    that went away or a server that stopped answering), the traceback's last."""
    lines = [line for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
    if not lines[0].startswith("Traceback"):
        return lines[0]
    return f"reading the store failed: {remote.why(Exception(lines[-1]))}"


def _register_files(con: duckdb.DuckDBPyConnection, files: StoreFiles) -> list[list[str]]:
    """Point the views over the store's files at them (queries/store_files.sql: the paths
    are bound, never written into SQL); return their names as DuckDB opens them."""
    paths = [files.snapshots, files.samples, files.tags]
    if files.filesystem is not None:
        paths = _through_filesystem(con, files, paths)
    snapshots, samples, tags = paths
    _statements(con, "store_files", snapshot_paths=snapshots, sample_paths=samples, tag_paths=tags)
    return paths


def _through_filesystem(
    con: duckdb.DuckDBPyConnection, files: StoreFiles, paths: list[list[str]]
) -> list[list[str]]:
    """Register a remote store's file system in DuckDB (allocsnap/remote_reads.py); return its
    files' names there. A pyarrow dataset registered instead was 4 to 8 times slower here
    (docs/performance.md)."""
    from allocsnap.store import remote_reads  # pyarrow's file system: remote stores only

    if remote_reads.PROTOCOL in con.list_filesystems():
        con.unregister_filesystem(remote_reads.PROTOCOL)  # a refresh: the same store, listed anew
    con.register_filesystem(remote_reads.filesystem(files.filesystem, files.listed))
    prefix = f"{remote_reads.PROTOCOL}://"
    return [[prefix + path for path in table] for table in paths]


def _kinds(with_store: bool, explore: bool) -> tuple[str, ...]:
    """Return the file-name prefixes of the definitions a connection gets, in creation order."""
    if not with_store:
        return ("macro_",)
    return (
        ("macro_", "view_", "explore_view_", "explore_macro_") if explore else ("macro_", "view_")
    )


def _define(
    con: duckdb.DuckDBPyConnection, kinds: tuple[str, ...], only: tuple[str, ...] | None = None
) -> None:
    """Create the macros and views whose files start with ``kinds``, kind by kind (or those
    named ``only``, in that order).

    DuckDB binds a view or macro when it is created, so one that reads another must come
    after it: each round creates what it can, until none is left, and one that can never be
    created (it names something that does not exist) is an error.
    """
    if only is not None:
        pending = list(only)
    else:
        all_names = names()
        pending = [n for kind in kinds for n in all_names if n.startswith(kind)]
    while pending:
        failed: list[tuple[str, duckdb.Error]] = []
        for name in pending:
            try:
                con.execute(sql(name))
            except duckdb.CatalogException as e:
                failed.append((name, e))
        if len(failed) == len(pending):
            name, error = failed[0]
            raise QueryError(f"{name}.sql: {first_line(error)}") from error
        pending = [name for name, _ in failed]


def columns(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> dict[str, list[Any]]:
    """Run ``queries/<name>.sql`` with bound parameters and return its columns as lists of
    Python values, by name (no Arrow)."""
    with _translated(name):
        cursor = con.execute(sql(name), params)
        rows = cursor.fetchall()
        names = [d[0] for d in cursor.description or []]
    return {n: [row[i] for row in rows] for i, n in enumerate(names)}


def keep(con: duckdb.DuckDBPyConnection, table: str, name: str, **params: Any) -> None:
    """Run ``queries/<name>.sql`` with bound parameters and keep its rows as ``table``, for
    the queries that read a table of that name (show.sql's ``snapshot_rows``)."""
    with _translated(name):
        con.execute(f"create or replace temp table {_identifier(table)} as {sql(name)}", params)


@contextmanager
def _translated(name: str) -> Iterator[None]:
    try:
        yield
    except duckdb.IOException as e:
        raise StoreError(first_line(e)) from e
    except duckdb.Error as e:
        raise QueryError(f"query {name}: {first_line(e)}") from e


def name_as(con: duckdb.DuckDBPyConnection, table: str, view: str) -> None:
    """Make ``table`` readable under the name ``view`` too (replacing any view of that name),
    for a query that reads its rows by that name."""
    with _translated(view):
        con.execute(f"create or replace temp view {_identifier(view)} as from {_identifier(table)}")


def _identifier(name: str) -> str:
    """Return a table's name from this code as SQL: a plain identifier, never a value (values
    are bound)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a table name: {name!r}")
    return name
