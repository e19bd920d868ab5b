"""The only module that imports duckdb: loads ``queries/``, registers views, runs queries.

Views are registered from Python (paths never enter SQL text): ``snapshots``, ``tags`` and
``samples`` over a store, or any Arrow table under a name. Every query is a file in
``queries/`` whose values are bound ``$name`` parameters; DuckDB rejects a missing or extra one.
Definitions are files too: ``macro_*`` on every connection, ``view_*`` over a store, and
``explore_view_*`` / ``explore_macro_*`` over a store for people's own SQL (docs/sql.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.abc import Traversable
from importlib.resources import files
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from allocsnap.errors import QueryError, StoreError
from allocsnap.store import remote, remote_reads
from allocsnap.store.layout import StoreFiles

Connection = duckdb.DuckDBPyConnection
"""What ``connect`` yields; named here so that callers need not import duckdb."""
Relation = duckdb.DuckDBPyRelation
"""What ``relation`` returns: a lazy query; ``.to_arrow_table()``, ``.df()``, ``.pl()`` read it."""


def queries_dir() -> Traversable:
    """Return the folder of ``.sql`` files, installed or in a checkout."""
    packaged = files("allocsnap") / "queries"  # a wheel: force-include put them here
    if packaged.is_dir():
        return packaged
    root = Path(__file__).resolve().parents[2]  # a source or editable checkout
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


def declared_params(name: str) -> set[str]:
    """Return the ``$params`` a query's header comment declares."""
    return declared_params_in(sql(name), "$")


def used_params(name: str) -> set[str]:
    """Return the ``$params`` a query's body uses."""
    return used_params_in(sql(name), "$")


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


@contextmanager
def connect(store: StoreFiles | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection with allocsnap's macros, and a store's views when one is given."""
    con = open_connection(store)
    try:
        with translated_errors():
            yield con
    finally:
        con.close()


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn a DuckDB error raised inside the block into allocsnap's ``QueryError``."""
    try:
        yield
    except duckdb.Error as e:
        raise QueryError(_first_line(e)) from e


def open_connection(
    store: StoreFiles | None = None, *, explore: bool = False, sandbox: bool = False
) -> duckdb.DuckDBPyConnection:
    """Return a new connection with allocsnap's macros, and a store's views when one is given.

    ``explore`` adds, over a store, the views and macros made for people's own SQL
    (``queries/explore_*.sql``: series, latest, deltas, dir_totals, movers, new_and_vanished;
    docs/sql.md). The analyses do not read them, and creating them costs about 50 ms on a
    one-day store, so their connections leave them out. The caller closes the connection.

    ``sandbox`` (for SQL from the user: ``allocsnap sql``) lets the connection read the
    store's files and nothing else (``queries/sandbox.sql``); it cannot be refreshed.
    """
    con = duckdb.connect()
    try:
        if store is not None:
            paths = _register_files(con, store)
            if sandbox:
                _statements(con, "sandbox", paths=[path for table in paths for path in table])
        _define(con, _kinds(store is not None, explore))
    except duckdb.IOException as e:
        con.close()
        raise StoreError(_first_line(e)) from e
    except duckdb.Error as e:
        con.close()
        raise QueryError(_first_line(e)) from e
    return con


def refresh(con: duckdb.DuckDBPyConnection, store: StoreFiles, *, explore: bool = False) -> None:
    """Point a connection's views at the store's files as they are now (new snapshots, files
    that compaction replaced); the views, macros and the user's own objects stay."""
    try:
        _register_files(con, store)
        _define(con, _kinds(True, explore))
    except duckdb.IOException as e:
        raise StoreError(_first_line(e)) from e
    except duckdb.Error as e:
        raise QueryError(_first_line(e)) from e


def register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Make an Arrow table queryable under ``name``."""
    con.register(name, table)


def run(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pa.Table:
    """Run ``queries/<name>.sql`` with bound parameters and return the result as Arrow."""
    try:
        return con.sql(sql(name), params=params).to_arrow_table()
    except duckdb.IOException as e:
        raise StoreError(_first_line(e)) from e
    except duckdb.Error as e:
        raise QueryError(f"query {name}: {_first_line(e)}") from e


def execute(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
    """Run ``queries/<name>.sql`` for what it makes (a view on this connection), bound."""
    try:
        con.execute(sql(name), params or None)
    except duckdb.Error as e:
        raise QueryError(f"query {name}: {_first_line(e)}") from e


def _statements(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
    """Run ``queries/<name>.sql`` statement by statement, each with the ``$params`` it uses
    (DuckDB binds parameters in the last statement of a text only)."""
    for statement in sql(name).split(";\n"):
        body = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
        if body.strip():
            used = used_params_in(body, "$")
            con.execute(body, {key: params[key] for key in used} or None)


def relation(con: duckdb.DuckDBPyConnection, text: str, /, **params: Any) -> Relation:
    """Return the DuckDB relation of any SQL text (the user's own), with bound ``$params``.

    Errors found while parsing and binding raise ``QueryError``; the rows are read when the
    relation is fetched (``.to_arrow_table()``, ``.df()``, ``.pl()``), and errors then are DuckDB's.
    """
    try:
        return con.sql(text, params=params or None)
    except duckdb.PermissionException as e:
        raise QueryError(_refused(e)) from e
    except duckdb.IOException as e:
        raise StoreError(_first_line(e)) from e
    except duckdb.Error as e:
        raise QueryError(_first_line(e)) from e


def run_text(con: duckdb.DuckDBPyConnection, text: str, /, **params: Any) -> pa.Table:
    """Run any SQL text (the user's own) with bound ``$params`` and return all rows as Arrow."""
    rel = relation(con, text, **params)
    try:
        return rel.to_arrow_table()
    except duckdb.PermissionException as e:
        raise QueryError(_refused(e)) from e
    except duckdb.IOException as e:
        raise StoreError(_first_line(e)) from e
    except duckdb.Error as e:
        raise QueryError(_first_line(e)) from e


def intervals_as_text(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> pa.Table:
    """Return ``rows`` with every interval column as DuckDB prints it (``01:30:00``,
    ``2 days 00:00:01.5``): DuckDB's own cast, as its shell shows them."""
    for i, field in enumerate(rows.schema):
        if pa.types.is_interval(field.type):
            rel = con.from_arrow(pa.table({"v": rows.column(i)}))
            text = rel.project(duckdb.ColumnExpression("v").cast(duckdb.sqltype("VARCHAR")))
            rows = rows.set_column(i, field.name, text.to_arrow_table().column(0))
    return rows


def _refused(e: BaseException) -> str:
    return f"{_first_line(e)} (SQL reads only the store's files here; allocsnap sql --unsafe)"


def _first_line(e: BaseException) -> str:
    """Return the line of a DuckDB error that says what failed: its first, or for an error
    raised in Python code that DuckDB called (a remote store's file system, reading a file
    that went away or a server that stopped answering), the traceback's last."""
    lines = [line for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
    if not lines[0].startswith("Traceback"):
        return lines[0]
    return f"reading the store failed: {remote.why(Exception(lines[-1]))}"


def _register_files(con: duckdb.DuckDBPyConnection, files: StoreFiles) -> list[list[str]]:
    """Register the store's files under the names the views read (paths never enter SQL);
    return their names as DuckDB opens them."""
    paths = [files.snapshots, files.samples, files.tags]
    if files.filesystem is not None:
        paths = _through_filesystem(con, files, paths)
    snapshots = con.read_parquet(paths[0], hive_partitioning=True, union_by_name=True)
    snapshots.create_view("snapshot_files")
    samples = con.read_parquet(paths[1], hive_partitioning=True, union_by_name=True)
    if "unit_bytes" not in samples.columns:  # no compacted file of schema 3 (yet): none coded
        samples = samples.project("*, null::bigint as unit_bytes")
    samples.create_view("sample_files")
    con.read_parquet(paths[2], union_by_name=True).create_view("tag_files")
    return paths


def _through_filesystem(
    con: duckdb.DuckDBPyConnection, files: StoreFiles, paths: list[list[str]]
) -> list[list[str]]:
    """Register a remote store's file system in DuckDB (allocsnap/remote_reads.py); return its
    files' names there. A pyarrow dataset registered instead was 4 to 8 times slower here
    (docs/performance.md)."""
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


def _define(con: duckdb.DuckDBPyConnection, kinds: tuple[str, ...]) -> None:
    """Create the macros and views whose files start with ``kinds``, kind by kind.

    DuckDB binds a view or macro when it is created, so one that reads another must come
    after it: each round creates what it can, until none is left, and one that can never be
    created (it names something that does not exist) is an error.
    """
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
            raise QueryError(f"{name}.sql: {_first_line(error)}") from error
        pending = [name for name, _ in failed]
