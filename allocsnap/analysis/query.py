"""Runs queries for the analyses: ``queries/`` over a store's views or Arrow tables, as Arrow.

Connections, the ``queries/`` folder and the store's views are allocsnap/store/views.py's
(re-exported here); this module adds Arrow: tables registered under a name, results read as
Arrow. Every query is a file in ``queries/`` whose values are bound ``$name`` parameters;
DuckDB rejects a missing or extra one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from allocsnap.errors import QueryError, StoreError
from allocsnap.store.views import Connection as Connection
from allocsnap.store.views import StoreFiles, first_line
from allocsnap.store.views import declared_params_in as declared_params_in
from allocsnap.store.views import names as names
from allocsnap.store.views import open_connection as open_connection
from allocsnap.store.views import queries_dir as queries_dir
from allocsnap.store.views import refresh as refresh
from allocsnap.store.views import sql as sql
from allocsnap.store.views import used_params_in as used_params_in

Relation = duckdb.DuckDBPyRelation
"""What ``relation`` returns: a lazy query; ``.to_arrow_table()``, ``.df()``, ``.pl()`` read it."""


def declared_params(name: str) -> set[str]:
    """Return the ``$params`` a query's header comment declares."""
    return declared_params_in(sql(name), "$")


def used_params(name: str) -> set[str]:
    """Return the ``$params`` a query's body uses."""
    return used_params_in(sql(name), "$")


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
        raise QueryError(first_line(e)) from e


def register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Make an Arrow table queryable under ``name``."""
    con.register(name, table)


def run(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pa.Table:
    """Run ``queries/<name>.sql`` with bound parameters and return the result as Arrow."""
    try:
        return con.sql(sql(name), params=params).to_arrow_table()
    except duckdb.IOException as e:
        raise StoreError(first_line(e)) from e
    except duckdb.Error as e:
        raise QueryError(f"query {name}: {first_line(e)}") from e


def execute(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
    """Run ``queries/<name>.sql`` for what it makes (a view on this connection), bound."""
    try:
        con.execute(sql(name), params or None)
    except duckdb.Error as e:
        raise QueryError(f"query {name}: {first_line(e)}") from e


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
        raise StoreError(first_line(e)) from e
    except duckdb.Error as e:
        raise QueryError(first_line(e)) from e


def run_text(con: duckdb.DuckDBPyConnection, text: str, /, **params: Any) -> pa.Table:
    """Run any SQL text (the user's own) with bound ``$params`` and return all rows as Arrow."""
    rel = relation(con, text, **params)
    try:
        return rel.to_arrow_table()
    except duckdb.PermissionException as e:
        raise QueryError(_refused(e)) from e
    except duckdb.IOException as e:
        raise StoreError(first_line(e)) from e
    except duckdb.Error as e:
        raise QueryError(first_line(e)) from e


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
    return f"{first_line(e)} (SQL reads only the store's files here; allocsnap sql --unsafe)"
