"""prune: durations need a unit, --dry-run, and a prune that would empty the store needs --all
(issue 15, case 6). Age counts from the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner, Result

from allocsnap import analysis
from allocsnap.cli import app
from allocsnap.errors import ExitCode
from tests.conftest import real

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def store_with(store: Path, ages: list[timedelta]) -> list[str]:
    """Import boot-1 dumps taken ``ages`` before now; return their ids."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids = []
    for i, age in enumerate(ages):
        result = invoke("import", str(real("6.12", 1, i)), "--at", (now - age).isoformat(),
                        "--host", "vm", "--store", str(store))  # fmt: skip
        assert result.exit_code == 0, result.stderr
        ids += result.stdout.split()
    return ids


def ids_in(store: Path) -> list[str]:
    return [m.snapshot_id for m in analysis.snapshots(store)]


def test_a_bare_number_is_refused(store_dir: Path) -> None:
    # GIVEN a store of two snapshots taken an hour and a day ago
    ids = store_with(store_dir, [timedelta(days=1), timedelta(hours=1)])

    # WHEN pruning with a bare number, THEN exit 2 naming the units, and nothing is deleted
    result = invoke("prune", "--older-than", "7", "--store", str(store_dir))
    assert result.exit_code == ExitCode.USAGE
    assert "s, m, h, d" in result.stderr
    assert ids_in(store_dir) == ids


def test_dry_run_lists_and_deletes_nothing(store_dir: Path) -> None:
    # GIVEN two snapshots, a day and an hour old
    old, recent = store_with(store_dir, [timedelta(days=1), timedelta(hours=1)])

    # WHEN pruning what is older than 2 h as a dry run
    result = invoke("prune", "--older-than", "2h", "--dry-run", "--store", str(store_dir))

    # THEN the old snapshot's file is listed, and both are still there
    assert result.exit_code == 0, result.stderr
    assert [line.split("\t")[0].rsplit("/", 1)[-1] for line in result.stdout.splitlines()] == [
        f"{old}.parquet"
    ]
    assert ids_in(store_dir) == [old, recent]

    # AND the real prune deletes only the old one
    done = invoke("prune", "--older-than", "2h", "--store", str(store_dir))
    assert done.exit_code == 0, done.stderr
    assert ids_in(store_dir) == [recent]


def test_a_prune_that_empties_the_store_needs_all(store_dir: Path) -> None:
    # GIVEN snapshots ten and five minutes old
    store_with(store_dir, [timedelta(minutes=10), timedelta(minutes=5)])

    # WHEN pruning what is older than 3 minutes, THEN refused: it would delete everything
    result = invoke("prune", "--older-than", "3m", "--store", str(store_dir))
    assert result.exit_code == ExitCode.USAGE
    assert "all 2 snapshots" in result.stderr and "--all" in result.stderr
    assert len(ids_in(store_dir)) == 2

    # AND with --all it does
    done = invoke("prune", "--older-than", "3m", "--all", "--store", str(store_dir))
    assert done.exit_code == 0, done.stderr
    assert "pruned 2 snapshots" in done.stderr
