"""Every file in queries/: a header, declared $params equal to those used, a function per query."""

from __future__ import annotations

import re

import pytest

from allocsnap import analysis
from allocsnap.analysis import query

# Queries that are helpers of other functions rather than analyses of their own.
HELPERS = {
    "snapshot_samples": "used by analysis.load() to read one stored snapshot",
    "damaged": "used by the window analyses to check the samples they read",
}

NAMES = query.names()


def test_queries_are_found() -> None:
    # GIVEN the checkout's queries/ folder, THEN the shipped analyses are among the names
    assert {"diff", "show", "snapshots", "snapshot_samples"} <= set(NAMES)
    assert all(re.fullmatch(r"[a-z_]+", n) for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_query_has_a_comment_header(name: str) -> None:
    # GIVEN a query file, THEN it opens with a "--" comment saying what it returns
    lines = query.sql(name).splitlines()
    assert lines[0].startswith("-- ")
    assert len(lines[0]) > len("-- ") + 10


@pytest.mark.parametrize("name", NAMES)
def test_declared_params_equal_used_params(name: str) -> None:
    # GIVEN a query file, THEN every $param its body uses is declared in its header and back
    assert query.declared_params(name) == query.used_params(name)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if not n.startswith(("macro_", "view_", "explore_"))]
)
def test_query_has_an_analysis_function(name: str) -> None:
    # GIVEN an analysis query, THEN analysis has a function of the same name (or it is a helper)
    if name in HELPERS:
        assert not hasattr(analysis, name)  # if one appears, drop the exclusion
        return
    assert callable(getattr(analysis, name, None)), f"analysis.{name}() is missing"


def test_helper_exclusions_are_real_queries() -> None:
    # THEN the exclusion list stays small and names no query that does not exist
    assert set(HELPERS) <= set(NAMES)
    assert len(HELPERS) <= 2


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
