"""Golden outputs of the window analyses and the text report on real captures (tests/golden/).

One store of three hosts built from the real captures in tests/data with fixed times, boot ids
and profiling from their meta.json: ``vm-a`` is 6.12's boot 1 (five snapshots, modules loaded
at the fourth and unloaded at the fifth), ``vm-b`` 6.12's boot 3 (profiling off at the first),
``vm-c`` 7.3's boot 2. Each command's table (what a user reads) is compared with its reviewed
file; ``pytest --update-golden`` rewrites them. The store is given by a relative path from its
parent folder, so no temporary path enters an output. The numbers in these tables are checked
against independent computations in test_trends.py, test_fleet.py and test_database.py; here
the point is that the output as a whole does not change unnoticed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from allocsnap.cli import app
from allocsnap.store import writing
from tests.conftest import GOLDEN, Golden, real
from tests.test_analysis import snap

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
# (host, capture, minutes after T0)
CAPTURES = (
    [("vm-a", real("6.12", 1, i), 10 * i) for i in range(5)]
    + [("vm-b", real("6.12", 3, i), 5 + 10 * i) for i in range(3)]
    + [("vm-c", real("7.3", 2, i), 7 + 20 * i) for i in range(2)]
)
runner = CliRunner()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the folder holding the store ``fleet/``; the tests run from that folder."""
    parent = tmp_path_factory.mktemp("golden")
    for host, path, minutes in CAPTURES:
        at = T0 + timedelta(minutes=minutes)
        writing.write(parent / "fleet", snap(path, at=at, with_meta=True, host=host))
    return parent


def output(fleet: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """Run the CLI from the store's parent folder; return its stdout, failing on an error."""
    monkeypatch.chdir(fleet)
    result = runner.invoke(app, [*args, "--store", "fleet"])
    assert result.exit_code == 0, result.output
    assert str(fleet) not in result.stdout
    return result.stdout


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("leaks-fleet.txt", ["leaks", "--min-growth", "64K", "--confidence", "0.9"]),
        ("top-fleet.txt", ["top", "-n", "15"]),
        ("top-fleet-by-module.txt", ["top", "--by", "module"]),
        ("growth-fleet.txt", ["growth", "-n", "15"]),
        ("history-fleet-shmem.txt", ["history", "shmem_alloc"]),
        ("outliers-fleet-dir1.txt", ["outliers", "--by", "dir:1"]),
        pytest.param(
            "report-vm-a.txt",
            ["report", "--host", "vm-a", "--format", "text"],
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "report-vm-b.md",
            ["report", "--host", "vm-b", "--format", "markdown"],
            marks=pytest.mark.slow,
        ),
    ],
)
def test_golden_window_output(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, golden: Golden, name: str, args: list[str]
) -> None:
    # GIVEN the store of real captures, WHEN the command runs, THEN its output is the reviewed one
    golden.check(name, output(fleet, monkeypatch, *args))


@pytest.mark.slow
def test_golden_output_does_not_depend_on_the_time_zone(fleet: Path) -> None:
    # GIVEN a machine whose local time is not UTC
    env = {**os.environ, "TZ": "Asia/Kolkata"}
    # WHEN top runs there, THEN it prints the same UTC times as the reviewed output
    command = [sys.executable, "-m", "allocsnap", "top", "-n", "15", "--store", "fleet"]
    done = subprocess.run(command, cwd=fleet, env=env, capture_output=True, text=True, check=True)
    assert done.stdout == (GOLDEN / "top-fleet.txt").read_text(encoding="utf-8")
