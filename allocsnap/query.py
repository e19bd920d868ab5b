"""The only module that imports duckdb: loads ``queries/``, registers views, runs queries.

Views are registered from Python (paths never enter SQL text): ``snapshots``, ``tags`` and
``samples`` over a store, or any Arrow table under a name. Every query is a file in
``queries/`` whose values are bound ``$name`` parameters; DuckDB rejects a missing or extra one.
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
from allocsnap.store import StoreFiles

_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")

Connection = duckdb.DuckDBPyConnection
"""What ``connect`` yields; named here so that callers need not import duckdb."""


def queries_dir() -> Traversable:
    """Return the folder of ``.sql`` files, installed or in a checkout."""
    packaged = files("allocsnap") / "queries"  # a wheel: force-include put them here
    if packaged.is_dir():
        return packaged
    root = Path(__file__).resolve().parent.parent  # a source or editable checkout
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
    header = [line for line in sql(name).splitlines() if line.startswith("--")]
    return {m.group(1) for line in header if (m := re.match(r"--\s+\$(\w+)\s", line))}


def used_params(name: str) -> set[str]:
    """Return the ``$params`` a query's body uses."""
    body = [line for line in sql(name).splitlines() if not line.startswith("--")]
    return set(_PARAM.findall("\n".join(body)))


@contextmanager
def connect(store: StoreFiles | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection with allocsnap's macros, and a store's views when one is given."""
    con = duckdb.connect()
    try:
        for name in names():
            if name.startswith("macro_"):
                con.execute(sql(name))
        if store is not None:
            _register_store(con, store)
        yield con
    except duckdb.Error as e:
        raise QueryError(str(e).splitlines()[0]) from e
    finally:
        con.close()


def register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Make an Arrow table queryable under ``name``."""
    con.register(name, table)


def run(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pa.Table:
    """Run ``queries/<name>.sql`` with bound parameters and return the result as Arrow."""
    try:
        return con.sql(sql(name), params=params).to_arrow_table()
    except duckdb.IOException as e:
        raise StoreError(str(e).splitlines()[0]) from e
    except duckdb.Error as e:
        raise QueryError(f"query {name}: {str(e).splitlines()[0]}") from e


def _register_store(con: duckdb.DuckDBPyConnection, store: StoreFiles) -> None:
    """Register the store's files, then the views over them (``queries/view_*.sql``)."""
    for glob, view in ((store.snapshots, "snapshot_files"), (store.samples, "sample_files")):
        con.read_parquet(glob, hive_partitioning=True, union_by_name=True).create_view(view)
    con.read_parquet(store.tags, union_by_name=True).create_view("tag_files")
    for name in names():
        if name.startswith("view_"):
            con.execute(sql(name))
