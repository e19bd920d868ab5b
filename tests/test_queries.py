"""Every file in queries/ (STYLE.md section 7): a header, declared $params equal to those used,
a function per analysis query, and each macro or view defined under its file's name.

The header is read here and the parameters a statement uses are DuckDB's own parser's
(``duckdb.extract_statements``), so that neither side is allocsnap's scanner under test.
"""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import duckdb
import pytest

from allocsnap import analysis
from allocsnap.analysis import query
from allocsnap.store import layout, views, writing
from tests.conftest import real
from tests.test_analysis import snap

# Queries that are helpers of other functions rather than analyses of their own.
# files of several statements, run in turn by store.views.open_connection as it sets up a
# connection: no analysis of their own
SETUP = {
    "sandbox": "for allocsnap sql without --unsafe",
    "store_files": "the views over a store's files",
}
HELPERS = {
    "snapshot_samples": "used by analysis.load() to read one stored snapshot",
    "damaged": "used by the window analyses to check the samples they read",
    "damaged_growth": "used by growth to check the samples it reads",
    "damaged_outliers": "used by outliers to check the samples it reads",
    "across_kernels_picked": "used by analysis.across_kernels() beside across_kernels.sql",
    "snapshot_totals": "used by show of a store reference without pyarrow (oneshot/stored.py)",
}

NAMES = query.names()


def test_queries_are_found() -> None:
    # GIVEN the checkout's queries/ folder, THEN the shipped analyses are among the names
    assert {"diff", "show", "snapshots", "snapshot_samples"} <= set(NAMES)
    assert all(re.fullmatch(r"[a-z_]+", n) for n in NAMES)


class Header(NamedTuple):
    """A query's opening comment block, read by this test (not by query.declared_params)."""

    summary: str  # the first line, without "-- "
    params: dict[str, tuple[str, str]]  # name: (type, description), each declared once
    body: str  # the rest of the file


def header(name: str) -> Header:
    lines = query.sql(name).splitlines()
    n = next(i for i, line in enumerate(lines) if not line.startswith("--"))
    params: dict[str, tuple[str, str]] = {}
    for line in lines[:n]:
        if m := re.fullmatch(r"-- \$(\w+) +(\S+) +(\S.*)", line):
            assert m[1] not in params, f"{name}.sql declares ${m[1]} twice"
            params[m[1]] = (m[2], m[3])
        else:
            assert "$" not in line.split()[1:2], f"{name}.sql: malformed parameter line {line!r}"
    return Header(lines[0].removeprefix("-- "), params, "\n".join(lines[n:]))


@pytest.mark.parametrize("name", NAMES)
def test_query_has_a_comment_header(name: str) -> None:
    # GIVEN a query file, THEN it opens with a "--" sentence saying what it returns, and no
    # comment in its body declares a parameter
    head = header(name)
    assert re.fullmatch(r"[A-Z(].{15,}", head.summary), head.summary
    assert not re.search(r"^--\s*\$", head.body, re.MULTILINE)


@pytest.mark.parametrize("name", NAMES)
def test_declared_params_equal_used_params(name: str) -> None:
    # GIVEN a query file, its header read here and its statement parsed by DuckDB itself
    head = header(name)
    statements = duckdb.extract_statements(query.sql(name))
    # THEN it is one statement (setup files aside: run a statement at a time), whose
    # named parameters are exactly those the header declares
    assert len(statements) == 1 or name in SETUP
    assert set(head.params) == {p for st in statements for p in st.named_parameters}
    # AND each is declared with a type DuckDB knows and a description
    con = duckdb.connect()
    for param, (type_name, description) in head.params.items():
        assert con.type(type_name), (param, type_name)  # an unknown type raises
        assert len(description) > 5, (param, description)
    con.close()
    # AND allocsnap's own scanners (Spark binds by them) read the same
    assert query.declared_params(name) == query.used_params(name) == set(head.params)


# A definition file: macro_*.sql on every connection; view_*.sql and explore_*.sql over a store
# (a view, or a table macro that reads one). "a_" orders view_a_snapshots.sql first.
DEFINITION = re.compile(r"(?:explore_)?(?:macro|view)_(?:a_)?(\w+)")
CREATES = re.compile(r"^create or replace (macro|view) (\w+)\b", re.MULTILINE)


@pytest.mark.parametrize("name", [n for n in NAMES if DEFINITION.fullmatch(n)])
def test_a_definition_creates_what_its_file_name_and_header_say(name: str) -> None:
    # GIVEN macro_X.sql, view_X.sql, explore_macro_X.sql or explore_view_X.sql
    head = header(name)
    # THEN its one statement creates X, a macro, table macro or view as its header says
    [(kind, created)] = CREATES.findall(head.body)
    assert created == DEFINITION.fullmatch(name)[1]  # type: ignore[index]
    if kind == "view":
        assert head.summary.startswith("View: ")
    elif re.search(r"\)\s+as\s+table\b", head.body):
        assert head.summary.startswith("Table macro: ")
    else:
        assert head.summary.startswith("Macro: ")


def test_every_definition_exists_on_a_store_connection(tmp_path: Path) -> None:
    # GIVEN a store of one real capture
    writing.write(tmp_path, snap(real("6.12", 1, 1), at=datetime(2026, 3, 2, tzinfo=UTC)))
    # WHEN a connection opens with the definitions made for people's own SQL
    con = query.open_connection(layout.open_store(tmp_path), explore=True)
    try:
        macros = {r[0] for r in con.sql("select function_name from duckdb_functions()").fetchall()}
        views = {r[0] for r in con.sql("select view_name from duckdb_views()").fetchall()}
    finally:
        con.close()
    # THEN every definition file's macro or view is there under its name
    for name in NAMES:
        if m := DEFINITION.fullmatch(name):
            [(kind, _)] = CREATES.findall(header(name).body)
            assert m[1] in (macros if kind == "macro" else views), name


@pytest.mark.parametrize(
    "name",
    [n for n in NAMES if not n.startswith(("macro_", "view_", "explore_")) and n not in SETUP],
)
def test_query_has_an_analysis_function(name: str) -> None:
    # GIVEN an analysis query, THEN analysis has a function of the same name (or it is a helper)
    if name in HELPERS:
        assert not hasattr(analysis, name)  # if one appears, drop the exclusion
        return
    assert callable(getattr(analysis, name, None)), f"analysis.{name}() is missing"


def test_helper_exclusions_are_real_queries() -> None:
    # THEN the exclusion list stays small and names no query that does not exist (the damage
    # checks are three: one per way an analysis picks what it reads)
    assert set(HELPERS) <= set(NAMES)
    assert len(HELPERS) <= 7


def test_param_scanners_read_header_and_body_apart() -> None:
    # GIVEN diff.sql, whose header and body were read by hand
    # THEN the scanners find the same names
    assert query.declared_params("diff") == {
        "by", "depth", "min_delta", "min_size", "max_size", "nonzero", "after_modules", "hours",
        "top_n",
    }  # fmt: skip
    assert query.declared_params("snapshots") == {
        "host", "since_at", "until_at", "since_back", "until_back",
    }  # fmt: skip


def test_macros_and_their_results() -> None:
    # GIVEN a connection with allocsnap's macros
    with query.connect() as con:
        # THEN each macro computes what its header says, checked by hand
        row = con.sql(
            "select call_site('fs/a.c', 7, 'ext4', 'f'), call_site('mm/b.c', 1, null, 'g'),"
            " dir_prefix('./fs/ext4/super.c', 2), dir_prefix('fs/ext4/super.c', 5),"
            " dir_prefix('init.c', 2), signed_calls(18446744073709551615::ubigint),"
            " group_key('module', 2, 'mm/b.c', 1, null, 'g')"
        ).fetchall()[0]
    assert row == (
        "fs/a.c:7 [ext4] func:f",
        "mm/b.c:1 func:g",
        "fs/ext4",
        "fs/ext4",
        "",
        -1,
        "(built-in)",
    )


def test_unknown_query_is_a_query_error() -> None:
    from allocsnap.errors import QueryError

    with pytest.raises(QueryError, match="no query named"):
        query.sql("no_such_query")


SPARK_NAMES = sorted(
    p.name[:-4] for p in (query.queries_dir() / "spark").iterdir() if p.name.endswith(".sql")
)


@pytest.mark.parametrize("name", SPARK_NAMES)
def test_spark_query_declares_the_params_it_uses(name: str) -> None:
    # GIVEN a Spark SQL file (queries/spark/), THEN its header declares exactly its :params
    from allocsnap import spark

    assert spark.sql(name).startswith("-- ")
    assert spark.declared_params(name) == spark.used_params(name)


def test_a_connection_spills_to_a_private_folder_never_through_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a working folder where another user planted ".tmp" (DuckDB's default spill folder)
    # as a link to a folder of theirs
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / ".tmp").symlink_to(theirs)
    monkeypatch.chdir(work)
    # WHEN a connection sorts more than its memory holds
    con = views.open_connection()
    try:
        con.execute("set memory_limit = '40MB'")
        con.execute("set threads = 1")
        rows = con.execute(
            "select count(*), count(distinct i) from "
            "(select i, random() as r from range(4000000) as t (i) order by r)"
        ).fetchall()
        # (DuckDB removes its spill files when the connection closes: look while it is open)
        through_link = list(theirs.iterdir())
        spill = Path(con.execute("select current_setting('temp_directory')").fetchall()[0][0])
        spilled = list(spill.iterdir()) if spill.is_dir() else []
    finally:
        con.close()
    # THEN it finishes, having written nothing through the link nor into the working folder, and
    # spilled into a folder of its own (0700)
    assert rows == [(4_000_000, 4_000_000)]
    assert through_link == []
    assert sorted(p.name for p in work.iterdir()) == [".tmp"]
    assert spilled, "the sort was meant to spill"
    assert spill.is_absolute() and stat.S_IMODE(spill.stat().st_mode) == 0o700
