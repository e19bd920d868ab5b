"""allocsnap.open(): the explore views and macros, and the analyses as Arrow tables.

Expectations are computed here without allocsnap's SQL: the real captures are read by
``tests/oracle.py`` (a plain whitespace split) and the deltas are subtracted in Python; the
macros are checked against tiny stores whose answers were worked out by hand.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import allocsnap
from allocsnap import analysis
from allocsnap.cli import app
from allocsnap.errors import EpochWarning, QueryError, StoreNotFound, UsageError
from allocsnap.store import writing
from tests import oracle
from tests.conftest import real
from tests.test_analysis import snap
from tests.test_trends import GROWER, Site, jittery, snapshot, write_series

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
runner = CliRunner()
# (capture, minutes after T0): boot 1 loads modules at snap 3 and unloads them at 4; boot 3
# starts with vm.mem_profiling=0 (snap 0) and switches it on (snap 1)
CAPTURES = [(real("6.12", 1, i), i) for i in range(5)] + [
    (real("6.12", 3, i), 60 + i) for i in range(3)
]


@pytest.fixture(scope="module")
def real_store_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a store of the eight 6.12 captures, with the boot ids and profiling of meta.json."""
    root = tmp_path_factory.mktemp("database") / "real"
    for path, minutes in CAPTURES:
        writing.write(
            root, snap(path, at=T0 + timedelta(minutes=minutes), with_meta=True, host="vm")
        )
    return root


@pytest.fixture
def real_store(real_store_built: Path, tmp_path: Path) -> Path:
    """Return a copy of the store of real captures, which the test may change."""
    return Path(shutil.copytree(real_store_built, tmp_path / "real"))


def rows_of(table: Any) -> list[dict[str, Any]]:
    return list(table.to_pylist())


# -- the views -------------------------------------------------------------------------------

SERIES_COLUMNS = {
    "snapshot_id": "VARCHAR",
    "taken_at": "TIMESTAMP WITH TIME ZONE",
    "host": "VARCHAR",
    "boot_id": "VARCHAR",
    "kernel": "VARCHAR",
    "epoch": "VARCHAR",
    "counting": "BOOLEAN",
    "tag_id": "BIGINT",
    "occurrence": "USMALLINT",
    "file": "VARCHAR",
    "line": "UINTEGER",
    "module": "VARCHAR",
    "function": "VARCHAR",
    "call_site": "VARCHAR",
    "bytes": "BIGINT",
    "calls": "UBIGINT",
    "accurate": "BOOLEAN",
}
DELTAS_COLUMNS = {
    "snapshot_id": "VARCHAR",
    "taken_at": "TIMESTAMP WITH TIME ZONE",
    "previous_snapshot_id": "VARCHAR",
    "previous_at": "TIMESTAMP WITH TIME ZONE",
    "host": "VARCHAR",
    "boot_id": "VARCHAR",
    "kernel": "VARCHAR",
    "epoch": "VARCHAR",
    "tag_id": "BIGINT",
    "occurrence": "USMALLINT",
    "file": "VARCHAR",
    "line": "UINTEGER",
    "module": "VARCHAR",
    "function": "VARCHAR",
    "call_site": "VARCHAR",
    "bytes": "BIGINT",
    "delta_bytes": "BIGINT",
    "delta_calls": "BIGINT",
    "elapsed_s": "DOUBLE",
    "bytes_per_hour": "DOUBLE",
    "contiguous": "BOOLEAN",
}


@pytest.mark.parametrize(
    ("view", "columns"),
    [("series", SERIES_COLUMNS), ("latest", SERIES_COLUMNS), ("deltas", DELTAS_COLUMNS)],
)
def test_views_have_the_documented_columns_and_types(
    real_store: Path, view: str, columns: dict[str, str]
) -> None:
    # GIVEN a store / WHEN a view is described
    with allocsnap.open(real_store) as db:
        rel = db.sql(f"select * from {view}")  # noqa: S608 (a name from this test's list)
        got = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    # THEN its columns and DuckDB types are those docs/sql.md lists
    assert got == columns
    doc = (Path(__file__).parent.parent / "docs" / "sql.md").read_text(encoding="utf-8")
    section = doc.split(f"### `{view}`", 1)[1].split("\n### ", 1)[0]
    for name in columns:
        assert f"`{name}`" in section or view == "latest", (view, name)


def test_series_has_one_row_per_sample_of_every_committed_snapshot(real_store: Path) -> None:
    # GIVEN the eight captures, read by the independent parser
    expected = sum(len(oracle.rows(path)) for path, _ in CAPTURES)
    with allocsnap.open(real_store) as db:
        # WHEN counting / THEN series has exactly the samples of the committed snapshots
        [(series, samples, committed)] = db.sql(
            "select (select count(*) from series), (select count(*) from samples),"
            " (select sum(rows) from snapshots)"
        ).fetchall()
        # AND the epochs are those of meta.json: boot 1; boot 3 with profiling off at first
        epochs = db.sql(
            "select epoch, counting, count(distinct snapshot_id) from series"
            " group by all order by min(taken_at)"
        ).fetchall()
    assert series == samples == committed == expected
    assert epochs == [
        ("vm 847023cf", True, 5),
        (epochs[1][0], False, 1),
        (epochs[1][0], True, 2),
    ]
    assert epochs[1][0].endswith(" on#1")


def test_series_rows_carry_the_call_site_as_the_kernel_prints_it(real_store: Path) -> None:
    # GIVEN boot 1's snapshot 3 (modules loaded), read independently
    path, minutes = CAPTURES[3]
    expected = Counter((r.site, r.bytes, r.calls) for r in oracle.rows(path))
    with allocsnap.open(real_store) as db:
        got = db.sql(
            "select call_site, bytes, calls from series where taken_at = $at",
            at=T0 + timedelta(minutes=minutes),
        ).fetchall()
    assert Counter(got) == expected


@pytest.mark.slow
def test_latest_is_the_newest_snapshot_of_each_host(real_store: Path) -> None:
    # GIVEN a second host whose only snapshot is older than the vm's newest
    writing.write(real_store, snap(real("7.3", 2, 0), at=T0, with_meta=True, host="other"))
    with allocsnap.open(real_store) as db:
        got = db.sql(
            "select host, any_value(taken_at), count(*) from latest group by host order by host"
        ).fetchall()
    assert got == [
        ("other", T0, len(oracle.rows(real("7.3", 2, 0)))),
        ("vm", T0 + timedelta(minutes=62), len(oracle.rows(real("6.12", 3, 2)))),
    ]


def expected_deltas() -> Counter[tuple[Any, ...]]:
    """Row minus previous row of the same call site (and occurrence) inside each epoch,
    computed in Python over the captures; boot 3's first capture (profiling off) is left out."""
    epochs = [CAPTURES[0:5], CAPTURES[6:8]]
    out: Counter[tuple[Any, ...]] = Counter()
    for epoch in epochs:
        last: dict[tuple[str, int], tuple[int, int, int]] = {}  # site -> (index, bytes, calls)
        for index, (path, minutes) in enumerate(epoch):
            seen: Counter[str] = Counter()
            for r in oracle.rows(path):
                key = (r.site, seen[r.site])
                seen[r.site] += 1
                if key in last:
                    before_index, before_bytes, before_calls = last[key]
                    out[
                        (
                            minutes,
                            key[0],
                            key[1],
                            r.bytes - before_bytes,
                            r.signed_calls - before_calls,
                            before_index == index - 1,
                        )
                    ] += 1
                last[key] = (index, r.bytes, r.signed_calls)
    return out


@pytest.mark.slow
def test_deltas_equal_the_differences_computed_in_python(real_store: Path) -> None:
    # GIVEN the store / WHEN reading every delta
    with allocsnap.open(real_store) as db:
        got = db.sql(
            "select (epoch_us(taken_at - $t0) // 60000000)::int, call_site, occurrence,"
            " delta_bytes, delta_calls, contiguous from deltas",
            t0=T0,
        ).fetchall()
        per_hour = db.sql(
            "select distinct elapsed_s, bytes_per_hour * elapsed_s / 3600 - delta_bytes"
            " from deltas where delta_bytes != 0 and taken_at = $at",
            at=T0 + timedelta(minutes=1),
        ).fetchall()
    # THEN they are the Python differences, no more, no less
    assert Counter(got) == expected_deltas()
    assert {round(elapsed) for elapsed, _ in per_hour} == {60}
    assert all(abs(error) < 1e-6 for _, error in per_hour)


# -- the analyses ----------------------------------------------------------------------------


@pytest.mark.slow
def test_diff_equals_the_cli_and_warns_across_epochs(real_store: Path) -> None:
    # GIVEN the CLI's JSON of a diff across the two boots
    cli = runner.invoke(app, ["diff", "first", "latest", "--store", str(real_store), "-f", "json"])
    assert cli.exit_code == 0, cli.stderr
    with allocsnap.open(real_store) as db:
        # WHEN the API diffs the same references / THEN the same rows, and the epoch warning
        with pytest.warns(EpochWarning, match="different boots"):
            rows = db.diff("first", "latest")
    assert json.loads(json.dumps(rows.to_pylist(), default=str)) == json.loads(cli.stdout)["rows"]


@pytest.mark.slow
def test_diff_and_show_take_the_cli_options(real_store: Path) -> None:
    before, after = real("6.12", 1, 2), real("6.12", 1, 3)
    with allocsnap.open(real_store) as db:
        with pytest.warns(EpochWarning, match="modules loaded"):
            rows = db.diff(str(before), str(after), by="module", top=None, min_delta="1K")
        shown = db.show("latest", by="dir:1", top=3, nonzero=True)
    expected = [
        c
        for c in oracle.diff(oracle.rows(before), oracle.rows(after), "module")
        if abs(c.delta_bytes) >= 1024
    ]
    assert rows["key"].to_pylist() == [c.key for c in expected]
    assert rows["delta_bytes"].to_pylist() == [c.delta_bytes for c in expected]
    sums = oracle.sums([r for r in oracle.rows(real("6.12", 3, 2)) if r.bytes], "dir", 1)
    top3 = sorted(sums.items(), key=lambda kv: (-kv[1][0], kv[0]))[:3]
    assert shown["key"].to_pylist() == [k for k, _ in top3]
    assert shown["bytes"].to_pylist() == [b for _, (b, _) in top3]


@pytest.mark.slow
def test_leaks_equal_the_analysis_and_the_cli(tmp_path: Path) -> None:
    # GIVEN 40 snapshots a minute apart: one site grows steadily among five that jitter
    write_series(tmp_path, jittery(40))
    cli = runner.invoke(app, ["leaks", "--store", str(tmp_path), "-f", "json"])
    with allocsnap.open(tmp_path) as db:
        # WHEN / THEN the API returns the analysis' rows, which the CLI printed
        rows = db.leaks(since=timedelta(hours=2))
        everything = db.leaks(rejected=True, min_growth=0, min_rate=0)
    assert rows.equals(analysis.leaks(tmp_path).rows)
    assert rows["key"].to_pylist() == ["mm/leaky.c:10 func:leaky_alloc"]
    assert json.loads(cli.stdout)["rows"][0]["key"] == rows["key"][0].as_py()
    assert everything.num_rows > 1 and "verdict" in everything.column_names


@pytest.mark.slow
def test_growth_top_and_history_equal_the_analyses(tmp_path: Path) -> None:
    write_series(tmp_path, jittery(12))
    since = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the first snapshot of write_series
    with allocsnap.open(tmp_path) as db:
        assert db.top(since=since, top=2).equals(
            analysis.top(tmp_path, analysis.Window(since.isoformat()), top_n=2).rows
        )
        assert db.growth(split="5m").equals(analysis.growth(tmp_path, split="5m").rows)
        history = db.history("leaky", until=since + timedelta(minutes=5))
    assert history["taken_at"].to_pylist() == [since + timedelta(minutes=i) for i in range(6)]
    frame = history.to_pandas()  # one call to pandas
    assert frame["bytes"].tolist() == [v[GROWER] for v in jittery(12)[:6]]


@pytest.mark.slow
def test_window_warnings_are_epoch_warnings(tmp_path: Path) -> None:
    # GIVEN two boots in one window
    at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    for i in range(4):
        writing.write(tmp_path, snapshot(at + timedelta(minutes=i), {GROWER: i << 20}, boot="a"))
        writing.write(tmp_path, snapshot(at + timedelta(hours=1, minutes=i), {GROWER: i}, boot="b"))
    with allocsnap.open(tmp_path) as db, pytest.warns(EpochWarning, match="crosses 2 epochs"):
        db.top()


# -- SQL, errors, lifetime -------------------------------------------------------------------


@pytest.mark.slow
def test_sql_returns_a_relation_with_bound_parameters(real_store: Path) -> None:
    with allocsnap.open(real_store) as db:
        rel = db.sql("select count(*) as n from series where bytes >= $floor", floor=1 << 20)
        table = db.arrow("select count(*) as n from series where bytes >= $floor", floor=1 << 20)
        frame = rel.df()
    expected = sum(1 for p, _ in CAPTURES for r in oracle.rows(p) if r.bytes >= 1 << 20)
    assert table.to_pylist() == [{"n": expected}]
    assert frame["n"].tolist() == [expected]


def test_sql_errors_are_one_line_query_errors(real_store: Path) -> None:
    with allocsnap.open(real_store) as db:
        with pytest.raises(QueryError, match=r"^Catalog Error: Table with name nothere") as e:
            db.sql("select * from nothere")
        assert "\n" not in str(e.value)
        with pytest.raises(QueryError, match="Parser Error"):
            db.arrow("selec 1")


@pytest.mark.slow
def test_refresh_sees_new_snapshots_and_close_ends_the_connection(real_store: Path) -> None:
    db = allocsnap.open(real_store)
    writing.write(real_store, snap(real("7.3", 2, 1), at=T0, with_meta=True, host="late"))
    assert db.arrow("select count(*) as n from snapshots").to_pylist() == [{"n": 8}]
    db.refresh()
    assert db.arrow("select count(*) as n from snapshots").to_pylist() == [{"n": 9}]
    assert db.snapshot("first", host="late").taken_at == T0
    with pytest.raises(UsageError, match="'first' is ambiguous"):  # vm's first is at T0 too
        db.snapshot("first")
    db.close()
    with pytest.raises(QueryError, match="closed"):
        db.sql("select 1")


def test_a_missing_store_is_store_not_found(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound, match="absent does not exist"):
        allocsnap.open(tmp_path / "absent")


def test_import_allocsnap_loads_neither_duckdb_nor_pyarrow() -> None:
    code = (
        "import sys, allocsnap; assert callable(allocsnap.open);"
        " print(sorted(m for m in ('duckdb', 'pyarrow', 'typing') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
    assert allocsnap.Database.__name__ == "Database"


# -- the macros, on tiny stores worked out by hand -------------------------------------------

A: Site = (None, "fs/ext4/super.c", 10, "a_alloc")
B: Site = (None, "fs/ext4/inode.c", 20, "b_alloc")
C: Site = (None, "mm/slub.c", 30, "c_alloc")
M: Site = ("zram", "drivers/block/zram/zram_drv.c", 40, "m_alloc")
D: Site = (None, "init.c", 50, "d_alloc")
AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, str]:
    """Three snapshots of host 'test', an hour apart; boot 'b' for the third.

    first:  A=1000 B=500 C=4096 M=300       (modules: zram)
    second: A=3000 B=500 C=1024 D=64        (modules: none: zram unloaded, M vanished)
    third:  A=10 (new boot)
    """
    values = [
        ({A: 1000, B: 500, C: 4096, M: 300}, "a", ("zram",)),
        ({A: 3000, B: 500, C: 1024, D: 64}, "a", ()),
        ({A: 10}, "b", ()),
    ]
    ids = {}
    for i, (sites, boot, modules) in enumerate(values):
        s = snapshot(AT + timedelta(hours=i), sites, boot=boot, modules=modules)
        writing.write(tmp_path, s)
        ids[["first", "second", "third"][i]] = s.meta.snapshot_id
    ids["root"] = str(tmp_path)
    return ids


def test_dir_totals_sums_by_directory_at_a_depth(tiny: dict[str, str]) -> None:
    with allocsnap.open(tiny["root"]) as db:
        depth1 = db.sql("select * from dir_totals($id, 1)", id=tiny["first"]).fetchall()
        depth2 = db.sql("select dir, bytes from dir_totals($id, 2)", id=tiny["second"]).fetchall()
    # calls are bytes // 64 in these snapshots; rows count the call sites
    assert depth1 == [("mm", 4096, 64, 1), ("fs", 1500, 15 + 7, 2), ("drivers", 300, 4, 1)]
    assert depth2 == [("fs/ext4", 3500), ("mm", 1024), ("", 64)]


@pytest.mark.slow
def test_movers_compare_the_snapshots_at_or_before_two_times(tiny: dict[str, str]) -> None:
    with allocsnap.open(tiny["root"]) as db:
        # 08:30 -> the first snapshot; 09:59 -> the second
        got = db.sql(
            "select call_site, status, bytes_before, bytes_after, delta_bytes, delta_calls,"
            " bytes_per_hour, same_epoch from movers($a, $b)",
            a=AT + timedelta(minutes=30),
            b=AT + timedelta(minutes=119),
        ).fetchall()
        across = db.sql(
            "select call_site, delta_bytes, same_epoch from movers($a, $b)",
            a=AT,
            b=AT + timedelta(hours=2),
        ).fetchall()
    assert got == [
        ("mm/slub.c:30 func:c_alloc", "", 4096, 1024, -3072, -48, -3072.0, True),
        ("fs/ext4/super.c:10 func:a_alloc", "", 1000, 3000, 2000, 31, 2000.0, True),
        ("drivers/block/zram/zram_drv.c:40 [zram] func:m_alloc", "vanished", 300, 0, -300, -4,
         -300.0, True),
        ("init.c:50 func:d_alloc", "new", 0, 64, 64, 1, 64.0, True),
    ]  # fmt: skip
    assert across[0] == ("mm/slub.c:30 func:c_alloc", -4096, False)
    assert len(across) == 4  # A, B, C, M all moved or went; D was not in the first


def test_new_and_vanished_tell_unloaded_from_vanished(tiny: dict[str, str]) -> None:
    with allocsnap.open(tiny["root"]) as db:
        got = db.sql(
            "select status, call_site, bytes, calls from new_and_vanished($a, $b)",
            a=tiny["first"],
            b=tiny["second"],
        ).fetchall()
        later = db.sql(
            "select status, call_site from new_and_vanished($a, $b)",
            a=tiny["second"],
            b=tiny["third"],
        ).fetchall()
    assert got == [
        ("new", "init.c:50 func:d_alloc", 64, 1),
        ("unloaded", "drivers/block/zram/zram_drv.c:40 [zram] func:m_alloc", 300, 4),
    ]
    assert later == [
        ("vanished", "mm/slub.c:30 func:c_alloc"),
        ("vanished", "fs/ext4/inode.c:20 func:b_alloc"),
        ("vanished", "init.c:50 func:d_alloc"),
    ]
