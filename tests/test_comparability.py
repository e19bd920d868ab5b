"""What is compared is said: one snapshot twice, snapshots taken with different filters, dumps
that counted nothing (issue 15, cases 2, 3 and 5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from allocsnap import analysis
from allocsnap.cli import app
from allocsnap.errors import ExitCode, UsageError
from allocsnap.kernel import capture, source
from allocsnap.model import Filter, Snapshot
from allocsnap.store import writing
from tests import oracle
from tests.conftest import real

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def taken(path: Path, at: datetime = T0, **kw: object) -> Snapshot:
    """A capture read as a saved dump, at a given time, on host vm."""
    return capture.snapshot(source.read_dump(str(path)), host="vm", at=at, **kw)  # type: ignore[arg-type]


# -- case 2: both sides the same snapshot ----------------------------------------------------


def test_diff_of_one_snapshot_with_itself_says_so_on_stderr() -> None:
    # GIVEN one dump given as both sides
    dump = str(real("6.12", 1, 2))

    # WHEN diffed (the table on stdout)
    result = invoke("diff", dump, dump)

    # THEN stderr says both sides are one snapshot, and the header says it too
    assert result.exit_code == 0
    assert "warning: both sides are the same snapshot" in result.stderr
    assert "both sides are the same snapshot" in result.stdout


def test_first_and_latest_of_a_one_snapshot_store_say_so(store_dir: Path) -> None:
    # GIVEN a store with one snapshot
    writing.write(store_dir, taken(real("6.12", 1, 2)))

    # WHEN diffing first and latest, THEN it is named as one snapshot
    result = invoke("diff", "first", "latest", "--store", str(store_dir), "--format", "csv")
    assert "both sides are the same snapshot" in result.stderr


# -- case 3: filters -------------------------------------------------------------------------


def test_full_against_module_filtered_compares_under_the_narrower(tmp_path: Path) -> None:
    # GIVEN a full snapshot of snap-2 and one of snap-3 taken with --module ext4, as files
    full, ext4 = tmp_path / "full.parquet", tmp_path / "ext4.parquet"
    assert invoke("snap", "--source", str(real("6.12", 1, 2)), "-o", str(full)).exit_code == 0
    made = invoke("snap", "--source", str(real("6.12", 1, 3)), "--module", "ext4", "-o", str(ext4))
    assert made.exit_code == 0, made.stderr

    # WHEN diffed
    result = invoke("diff", str(full), str(ext4), "--top", "0", "--format", "json")

    # THEN stderr says both were compared under module=ext4; no row is GONE and the totals
    # are the ext4 rows' of each capture
    assert result.exit_code == 0, result.stderr
    assert "compared under 'module=ext4'" in result.stderr
    out = json.loads(result.stdout)
    ext4_before = [r for r in oracle.rows(real("6.12", 1, 2)) if r.module == "ext4"]
    ext4_after = [r for r in oracle.rows(real("6.12", 1, 3)) if r.module == "ext4"]
    assert out["totals"]["bytes_before"] == sum(r.bytes for r in ext4_before)
    assert out["totals"]["bytes_after"] == sum(r.bytes for r in ext4_after)
    assert {row["status"] for row in out["rows"]} <= {"new", ""}
    assert len(out["rows"]) == len(oracle.diff(ext4_before, ext4_after))


def test_filters_neither_containing_the_other_are_refused() -> None:
    # GIVEN snap-3 kept two ways: ext4 only and jbd2 only
    ext4 = taken(real("6.12", 1, 3), keep=Filter(module="ext4"))
    jbd2 = taken(real("6.12", 1, 3), at=T0 + timedelta(minutes=1), keep=Filter(module="jbd2"))

    # WHEN diffed, THEN refused (exit 2), naming both filters
    with pytest.raises(UsageError, match="'module=ext4' before, 'module=jbd2' after") as e:
        analysis.diff(ext4, jbd2)
    assert e.value.exit_code == ExitCode.USAGE


def test_one_read_kept_two_ways_is_two_snapshots() -> None:
    # GIVEN one dump at one time, kept whole and kept for ext4
    whole = taken(real("6.12", 1, 3))
    ext4 = taken(real("6.12", 1, 3), keep=Filter(module="ext4"))

    # THEN they have different ids (a store would otherwise hold one over the other)
    assert whole.meta.snapshot_id != ext4.meta.snapshot_id


def test_window_of_differently_filtered_snapshots_uses_the_narrowest(store_dir: Path) -> None:
    # GIVEN a store: snap-3 in full at T0, then snap-3 kept for ext4 a minute later
    writing.write(store_dir, taken(real("6.12", 1, 3)))
    later = T0 + timedelta(minutes=1)
    writing.write(store_dir, taken(real("6.12", 1, 3), at=later, keep=Filter(module="ext4")))

    # WHEN asked for the top movers
    result = analysis.top(store_dir, top_n=None)

    # THEN it says so, and no call site outside ext4 appears to have fallen to 0
    said = [w for w in result.epochs.warnings if "different filters" in w]
    assert said and "'module=ext4'" in said[0]
    assert result.rows.num_rows == 0  # the ext4 rows did not change between the two


# -- case 5: dumps that counted nothing ------------------------------------------------------


def test_an_all_zero_dump_is_named_in_show_and_diff() -> None:
    # GIVEN boot-3's first dump, taken with profiling off: every counter 0
    off, on = str(real("6.12", 3, 0)), str(real("6.12", 3, 2))
    assert all(r.bytes == 0 and r.calls == 0 for r in oracle.rows(real("6.12", 3, 0)))

    # WHEN shown, THEN stderr and the header say it was taken with profiling off
    shown = invoke("show", off, "--top", "1")
    assert "profiling off" in shown.stderr and "every counter is 0" in shown.stdout

    # WHEN diffed against a live dump, THEN stderr names the earlier side
    diffed = invoke("diff", off, on, "--top", "1")
    assert "profiling was off (vm.mem_profiling=0) at the earlier snapshot" in diffed.stderr


def test_an_imported_all_zero_dump_is_left_out_of_windows(store_dir: Path) -> None:
    # GIVEN boot-3's profiling-off dump and two live ones imported a minute apart
    for i in range(3):
        writing.write(store_dir, taken(real("6.12", 3, i), at=T0 + timedelta(minutes=i)))

    # WHEN the window's epochs are read
    epochs = analysis.epochs(store_dir)

    # THEN the all-zero dump is recorded as profiling off and left out, as a recorded one is
    assert [m.profiling for m in analysis.snapshots(store_dir)] == [0, None, None]
    assert epochs.snapshots == 2
    assert any("profiling off" in w for w in epochs.warnings)
