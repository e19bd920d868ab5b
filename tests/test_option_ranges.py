"""Numeric options are checked where they are read: exit 2 naming the allowed range, and 0
means "all" for every --top and --max-points (issue 15, case 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from allocsnap.cli import app
from allocsnap.errors import ExitCode
from tests.conftest import real

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """boot-1's five dumps a minute apart."""
    root = tmp_path_factory.mktemp("bounds") / "store"
    result = invoke("import", str(real("6.12", 1, 0).parent), "--at", "2026-11-26T14:50Z",
                    "--every", "60s", "--host", "vm", "--store", str(root))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return str(root)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["top", "--top", "-1"], "x>=0"),
        (["show", "first", "--top", "-1"], "x>=0"),
        (["leaks", "--confidence", "1.5"], "above 0 and below 1"),
        (["leaks", "--confidence", "0"], "above 0 and below 1"),
        (["leaks", "--max-points", "1"], "0 (every snapshot) or at least 2"),
        (["growth", "--max-points", "-3"], "0 (every snapshot) or at least 2"),
        (["history", "shmem", "--points", "1"], "0 (every snapshot) or at least 2"),
        (["report", "--top", "-2"], "x>=0"),
        (["outliers", "--min-hosts", "1"], "x>=2"),
    ],
)
def test_out_of_range_values_are_exit_2_naming_the_range(
    store: str, args: list[str], says: str
) -> None:
    # WHEN a number outside its range is given, THEN exit 2 and the message names the range
    result = invoke(*args, "--store", store)
    assert result.exit_code == ExitCode.USAGE, result.stdout
    assert says in result.stderr


@pytest.mark.parametrize("command", [["leaks"], ["growth"], ["top"]])
def test_max_points_0_reads_every_snapshot(store: str, command: list[str]) -> None:
    # GIVEN a store of five snapshots: 0 and a cap above five must read the same snapshots
    every = invoke(*command, "--max-points", "0", "--format", "csv", "--store", store)
    capped = invoke(*command, "--max-points", "1000", "--format", "csv", "--store", store)

    # THEN both succeed with the same answer
    assert every.exit_code == 0, every.stderr
    assert capped.exit_code == 0, capped.stderr
    assert every.stdout == capped.stdout


def test_report_top_0_shows_all(store: str, tmp_path: Path) -> None:
    # WHEN a report is asked with --top 0, THEN it is written (0 means all, as for --top elsewhere)
    out = tmp_path / "r.md"
    result = invoke(
        "report", "--top", "0", "--format", "markdown", "-o", str(out), "--store", store
    )
    assert result.exit_code == 0, result.stderr
    assert out.read_text().count("\n") > 0
