"""``allocsnap sql``: any SQL over the store's views, in every output format, and its errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from allocsnap.cli import app
from allocsnap.errors import ExitCode
from allocsnap.store import writing
from tests.test_trends import GROWER, snapshot

runner = CliRunner()
AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
QUERY = (
    "select counting, taken_at, count(*) as rows, sum(bytes) as total_bytes, 'a|b' as text,"
    " 1 as n, 1 as n, sum(sum(bytes)) over () as hugeint_sum, 0.5 as half"
    " from series group by counting, taken_at order by taken_at"
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Two snapshots of one growing call site: 1 MiB, then 3 MiB an hour later."""
    for i, value in enumerate((1 << 20, 3 << 20)):
        writing.write(tmp_path, snapshot(AT + timedelta(hours=i), {GROWER: value}))
    return tmp_path


def sql(root: Path, *args: str, input: str | None = None) -> Result:
    return runner.invoke(app, ["sql", *args, "--store", str(root)], input=input)


def test_table_aligns_numbers_right_and_shows_values_as_they_are(root: Path) -> None:
    result = sql(root, QUERY)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "counting  taken_at                   rows  total_bytes  text  n  n_2  hugeint_sum  half",
        "True      2026-03-02 08:00:00+00:00     1      1048576  a|b   1    1      4194304   0.5",
        "True      2026-03-02 09:00:00+00:00     1      3145728  a|b   1    1      4194304   0.5",
    ]
    assert result.stderr == ""


@pytest.mark.slow
def test_csv_json_and_markdown_carry_the_same_values(root: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(sql(root, QUERY, "-f", "csv").stdout)))
    assert rows[1] == {
        "counting": "True",
        "taken_at": "2026-03-02T09:00:00+00:00",
        "rows": "1",
        "total_bytes": "3145728",
        "text": "a|b",
        "n": "1",
        "n_2": "1",
        "hugeint_sum": "4194304",
        "half": "0.5",
    }
    document = json.loads(sql(root, QUERY, "-f", "json").stdout)
    assert document["rows"][0]["hugeint_sum"] == 4194304  # a HUGEINT sum stays a number
    assert document["rows"][0]["taken_at"] == "2026-03-02T08:00:00+00:00"
    assert [c["name"] for c in document["columns"]][-3:] == ["n_2", "hugeint_sum", "half"]
    assert document["columns"][3]["type"] == document["columns"][7]["type"] == "decimal128(38, 0)"
    markdown = sql(root, QUERY, "-f", "markdown").stdout.splitlines()
    assert markdown[1] == "|---|---|---:|---:|---|---:|---:|---:|---:|"
    assert markdown[2].startswith("| True | 2026-03-02 08:00:00+00:00 | 1 | 1048576 | a\\|b |")


@pytest.mark.slow
def test_query_file_and_stdin(root: Path, tmp_path: Path) -> None:
    text = "select call_site, delta_bytes, bytes_per_hour from deltas"
    (tmp_path / "q.sql").write_text(text)
    expected = (
        "call_site,delta_bytes,bytes_per_hour\nmm/leaky.c:10 func:leaky_alloc,2097152,2097152.0\n"
    )
    assert sql(root, "--query-file", str(tmp_path / "q.sql"), "-f", "csv").stdout == expected
    assert sql(root, "--query-file", "-", "-f", "csv", input=text).stdout == expected


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["selec 1"], ExitCode.FAILURE, 'Error: Parser Error: syntax error at or near "selec"\n'),
        (
            ["select * from nothere"],
            ExitCode.FAILURE,
            "Error: Catalog Error: Table with name nothere does not exist!\n",
        ),
        (
            [],
            ExitCode.USAGE,
            "Error: give the SQL as QUERY or with --query-file, not both or neither\n",
        ),
    ],
)
def test_errors_are_one_line_and_an_exit_code(
    root: Path, args: list[str], code: int, message: str
) -> None:
    result = sql(root, *args)
    assert result.exit_code == code
    assert result.stdout == ""
    assert result.stderr == message


def test_a_missing_store_is_exit_4(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sql", "select 1", "--store", str(tmp_path / "absent")])
    assert result.exit_code == ExitCode.NO_STORE
    assert result.stderr.startswith(f"Error: store {tmp_path / 'absent'} does not exist")


def test_paths_are_never_spliced_into_sql(tmp_path: Path) -> None:
    # GIVEN a store whose path would break any SQL string it were pasted into
    root = tmp_path / "it's; drop"
    writing.write(root, snapshot(AT, {GROWER: 1}))
    # WHEN / THEN the views read it: its files were registered from Python
    result = runner.invoke(app, ["sql", "select count(*) as n from series", "--store", str(root)])
    assert result.stdout == "n\n1\n"


INTERVALS = [
    "interval 90 minutes",
    "interval 2 days",
    "interval '1 month 3 days 00:00:01.5'",
    "-interval 5 seconds",
    "interval 14 months",
    "interval 1 day + interval 1 microsecond",
]


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_intervals_read_as_duckdb_prints_them(root: Path, fmt: str) -> None:
    # GIVEN intervals, among them the span of the store's snapshots (one hour)
    exprs = [*INTERVALS, "max(taken_at) - min(taken_at)"]
    picks = ", ".join(f"{e} as i{n}, cast({e} as varchar) as t{n}" for n, e in enumerate(exprs))
    # WHEN they are printed in each format beside DuckDB's own text of them
    query = f"select {picks} from snapshots"  # noqa: S608 (constant expressions above)
    done = sql(root, query, "--format", fmt)
    assert done.exit_code == 0, done.stderr
    # THEN each interval reads exactly as DuckDB's text, not as a month/day/nanosecond triple
    if fmt == "json":
        [row] = json.loads(done.stdout)["rows"]
    elif fmt == "csv":
        [row] = csv.DictReader(io.StringIO(done.stdout))
    else:
        header, line = done.stdout.splitlines()
        row = {k: v.strip() for k, v in zip(header.split(), _cells(line), strict=True)}
    for n in range(len(exprs)):
        assert row[f"i{n}"] == row[f"t{n}"], (exprs[n], row)
    assert row[f"i{len(INTERVALS)}"] == "01:00:00"


def _cells(line: str) -> list[str]:
    """Split a table line on runs of two or more spaces (cells hold single spaces)."""
    return [cell for cell in line.strip().split("  ") if cell.strip()]
