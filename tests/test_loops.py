"""``allocsnap loop`` and its judgement (``analysis.loop``, ``queries/loop.sql``) off a kernel.

Run series are real captures (tests/data) with growth planted in chosen rows, parsed by the
real parser and written by the real ``Writer`` under a loop's names and labels, so the query
reads a real Parquet store. The expected bytes per run are what was planted, computed here.
The CLI tests loop a real command that rewrites the file ``source.ALLOCINFO`` points at (the
tests never read this machine's /proc): each run of it is one step of a planted series.
"""

from __future__ import annotations

import json
import re
import shlex
import statistics
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from allocsnap import analysis
from allocsnap.cli import app
from allocsnap.errors import ExitCode, StoreNotFound
from allocsnap.kernel import capture, source
from allocsnap.store import writing
from tests.conftest import real
from tests.test_analysis import T0

runner = CliRunner()
BASE = real("7.3", 2, 0)
LEAK = "mm/shmem.c:1938 func:shmem_alloc_folio"  # 2 files of 512 KiB per run, kept
CACHE = "fs/dcache.c:1921 func:__d_alloc"  # 64 KiB in each of the first 3 runs, then flat
FREED = "fs/pipe.c:902 func:alloc_pipe_info"  # 256 KiB after odd runs, given back after even
SLOW = "fs/pipe.c:885 func:alloc_pipe_info"  # 1 KiB per run: a leak below the 4 KiB floor
JITTER = "init/main.c:1433 func:do_initcalls"  # ±3 KiB around its value, no trend
FILE_SIZE, FILES_PER_RUN = 512 << 10, 2


def planted(run: int) -> dict[str, int]:
    """Return the bytes added to each planted row after ``run`` runs (0: the baseline)."""
    return {
        LEAK: run * FILES_PER_RUN * FILE_SIZE,
        CACHE: min(run, 3) * (64 << 10),
        FREED: (run % 2) * (256 << 10),
        SLOW: run * 1024,
        JITTER: (3 << 10) * (1 if run % 3 == 0 else -1 if run % 3 == 1 else 0) + (3 << 10),
    }


ROW = re.compile(r"^(\s*)(-?\d+)(\s+)(\d+) (\S+)( \[\S+\])? (func:\S+)(.*)$")


def plant(text: str, added: dict[str, int], drop: tuple[str, ...] = ()) -> str:
    """Return a capture's text with ``added`` bytes on the rows named ``file:line func:name``,
    and the rows of the modules in ``drop`` left out (unloaded)."""
    out = []
    for line in text.splitlines(keepends=True):
        m = ROW.match(line.rstrip("\n"))
        if m is None:
            out.append(line)
            continue
        if m.group(6) and m.group(6).strip(" []") in drop:
            continue
        site = f"{m.group(5)} {m.group(7)}"
        if site in added:
            value = int(m.group(2)) + added[site]
            line = f"{value:>12} {m.group(4):>8} {m.group(5)}{m.group(6) or ''} {m.group(7)}"
            line += m.group(8) + "\n"
        out.append(line)
    return "".join(out)


def write_loop(
    store: Path,
    loop: str,
    runs: int,
    change: Callable[[int], dict[str, int]] = planted,
    drop: Callable[[int], tuple[str, ...]] = lambda _run: (),
    base: Path = BASE,
    at: datetime = T0,
) -> None:
    """Write a loop of ``runs`` runs (and its baseline) as snapshots of the planted capture,
    two seconds apart from ``at``."""
    text = base.read_text()
    writer = writing.Writer(store)
    for run in range(runs + 1):
        raw = source.RawRead(
            text=plant(text, change(run), drop(run)).encode(),
            source="procfs",
            taken_at=at + timedelta(seconds=2 * run),
            boot_id="b7e2c1d4-loop-test",
            kernel="7.3.4-allocsnap",
            profiling=1,
        )
        writer.add(
            capture.snapshot(
                raw,
                name=analysis.loop_name(loop, run),
                host="vm",
                labels=analysis.loop_labels(loop, run),
            )
        )


def by_key(rows: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {r["key"]: r for r in rows}


# -- the judgement ------------------------------------------------------------------------------


def test_a_leak_per_run_is_found_with_its_bytes_per_run(store_dir: Path) -> None:
    # GIVEN a loop of 12 runs with the planted series
    write_loop(store_dir, "aa11bb22", 12)

    # WHEN it is judged
    judged = analysis.loop(store_dir, "aa11bb22")

    # THEN only the planted leak is one, at 2 × 512 KiB per run, 12 of them in total
    leaks = judged.rows.to_pylist()
    assert [r["key"] for r in leaks] == [LEAK]
    leak = leaks[0]
    assert leak["bytes_per_run"] == FILES_PER_RUN * FILE_SIZE
    assert leak["per_run_low"] == leak["per_run_high"] == FILES_PER_RUN * FILE_SIZE
    assert leak["total_bytes"] == 12 * FILES_PER_RUN * FILE_SIZE
    assert leak["runs"] == 12
    assert leak["grew_share"] == 1.0
    assert leak["confidence"] > 0.9999
    assert judged.found == 1
    assert judged.judged_runs == 12


def test_a_cache_that_filled_and_memory_given_back_are_not_leaks(store_dir: Path) -> None:
    # GIVEN the same loop
    write_loop(store_dir, "aa11bb22", 12)

    # WHEN it is judged
    others = by_key(analysis.loop(store_dir, "aa11bb22").others.to_pylist())

    # THEN each planted non-leak is there with the reason that kept it out
    assert others[CACHE]["verdict"] == "below the floor per run"  # flat after run 3
    assert others[CACHE]["total_bytes"] == 3 * (64 << 10)
    assert others[FREED]["verdict"] == "below the floor per run"
    assert others[FREED]["total_bytes"] == 0  # 12 runs: an even number, all given back
    assert others[SLOW]["verdict"] == "below the floor per run"
    assert others[SLOW]["bytes_per_run"] == 1024
    assert JITTER not in others or others[JITTER]["verdict"] != "leak"


def test_a_cache_filling_over_half_the_runs_stopped_growing(store_dir: Path) -> None:
    # GIVEN a call site that grows 64 KiB in each of the first 7 of 12 runs, then stays flat
    def fill(run: int) -> dict[str, int]:
        return {CACHE: min(run, 7) * (64 << 10)}

    write_loop(store_dir, "cc33dd44", 12, fill)

    # WHEN judged
    judged = analysis.loop(store_dir, "cc33dd44")

    # THEN its Theil–Sen slope is past the floor, but the last half hardly grew: not a leak
    values = [fill(run)[CACHE] for run in range(13)]
    slopes = [(values[j] - values[i]) / (j - i) for i in range(13) for j in range(i + 1, 13)]
    row = by_key(judged.others.to_pylist())[CACHE]
    assert judged.found == 0
    assert row["verdict"] == "stopped growing"
    assert row["bytes_per_run"] == pytest.approx(statistics.median(slopes))
    # the last half: runs 6 to 12, of which only run 7 grew: 64 KiB over 6 runs
    assert row["late_share"] == pytest.approx((64 << 10) / 6 / statistics.median(slopes))


def test_memory_freed_after_a_peak_falls_back(store_dir: Path) -> None:
    # GIVEN a call site that grows 1 MiB per run for 10 runs, then gives back 8 MiB in run 11
    def back(run: int) -> dict[str, int]:
        return {LEAK: (run << 20) - (8 << 20 if run >= 11 else 0)}

    write_loop(store_dir, "ee55ff66", 12, back)

    # THEN the fall is seen: most of what it gained was given back
    row = by_key(analysis.loop(store_dir, "ee55ff66").others.to_pylist())[LEAK]
    assert row["verdict"] in ("falls back", "stopped growing")
    assert row["total_bytes"] == (12 << 20) - (8 << 20)


def test_a_module_that_comes_and_goes_is_not_judged(store_dir: Path) -> None:
    # GIVEN a loop where a module's rows vanish in odd runs (unloaded) and one of them grows
    with_modules = real("6.12", 1, 3)  # zram, loop and dummy loaded
    text = with_modules.read_text()
    row = next(m for line in text.splitlines() if (m := ROW.match(line)) and m.group(6))
    module, site = row.group(6).strip(" []"), f"{row.group(5)} {row.group(7)}"

    def grow(run: int) -> dict[str, int]:
        return {site: run << 20}

    write_loop(
        store_dir, "0a0b0c0d", 8, grow, lambda run: (module,) if run % 2 else (), with_modules
    )

    # THEN it is not a leak: a vanished row is not a free, and its series is broken
    judged = analysis.loop(store_dir, "0a0b0c0d")
    key = f"{row.group(5)} [{module}] {row.group(7)}"
    found = by_key(judged.others.to_pylist())[key]
    assert found["verdict"] == "not in every snapshot"
    assert judged.found == 0


@pytest.mark.slow  # a loop of real runs: the full suite, not the fast loop
def test_grouped_by_directory_the_leak_is_its_directory(store_dir: Path) -> None:
    # GIVEN the planted loop
    write_loop(store_dir, "aa11bb22", 12)

    # WHEN judged by top directory
    judged = analysis.loop(store_dir, "aa11bb22", grouping=analysis.Grouping("dir", 1))

    # THEN mm/ (where only the leak moves) leaks 1 MiB per run; fs/ (cache, freed) does not
    leaks = judged.rows.to_pylist()
    assert [(r["key"], r["bytes_per_run"]) for r in leaks] == [("mm", FILE_SIZE * 2)]


@pytest.mark.slow  # a loop of real runs: the full suite, not the fast loop
def test_two_loops_in_one_store_are_judged_apart(store_dir: Path) -> None:
    # GIVEN a leaking loop and a flat one in one store, the flat one an hour later
    write_loop(store_dir, "aa11bb22", 6)
    write_loop(store_dir, "99887766", 6, lambda _run: planted(6), at=T0 + timedelta(hours=1))

    # THEN each is judged on its own snapshots only
    assert analysis.loop(store_dir, "aa11bb22").found == 1
    assert analysis.loop(store_dir, "99887766").found == 0
    with pytest.raises(StoreNotFound, match="no snapshots of loop 12345678"):
        analysis.loop(store_dir, "12345678")


def test_too_few_runs_are_not_judged(store_dir: Path) -> None:
    # GIVEN a loop of 3 runs that leaks 1 MiB per run
    write_loop(store_dir, "abcdef01", 3)

    # THEN three runs cannot make a verdict
    judged = analysis.loop(store_dir, "abcdef01")
    assert judged.found == 0
    assert by_key(judged.others.to_pylist())[LEAK]["verdict"] == "too few runs"


# -- the command, on a file that each run of a real command rewrites ------------------------------

WORKLOAD = """\
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from tests.test_loops import plant, planted
base, target, counter, fail_at = sys.argv[1:5]
done = int(Path(counter).read_text()) + 1 if Path(counter).exists() else 1
Path(counter).write_text(str(done))
print(f"workload run {{done}}")
if done == int(fail_at):
    sys.exit(3)
run = max(done - {warmup}, 0)
Path(target).write_text(plant(Path(base).read_text(), planted(run)))
"""


@pytest.fixture
def fake_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the kernel reader at a copy of a real capture: the planted series' baseline."""
    target = tmp_path / "allocinfo"
    target.write_text(plant(BASE.read_text(), planted(0)))
    monkeypatch.setattr(source, "ALLOCINFO", target)
    return target


def workload(tmp_path: Path, target: Path, warmup: int = 2, fail_at: int = 0) -> list[str]:
    """Return the command that plants one more run into ``target`` each time it runs."""
    script = tmp_path / "workload.py"
    root = str(Path(__file__).resolve().parents[1])
    script.write_text(WORKLOAD.format(tests=root, warmup=warmup))
    return [sys.executable, str(script), str(BASE), str(target), str(tmp_path / "n"), str(fail_at)]


def then(tmp_path: Path, command: list[str], invocation: int, action: str) -> Path:
    """Return a script that runs ``command``, then ``action`` in its ``invocation``-th run."""
    script = tmp_path / "then.sh"
    script.write_text(
        f'{shlex.join(command)}\n[ "$(cat {tmp_path / "n"})" = {invocation} ] && {action}\nexit 0\n'
    )
    return script


def loop_cli(store: Path, *args: str) -> list[str]:
    return ["loop", "--store", str(store), "--settle", "0", "--source", "procfs", *args]


def test_loop_command_reports_the_leak_per_run(
    tmp_path: Path, store_dir: Path, fake_kernel: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a command that leaks 1 MiB per run (as the planted series says)
    command = workload(tmp_path, fake_kernel)

    # WHEN it is looped 8 times after 2 warm-up runs, as JSON
    result = runner.invoke(
        app, [*loop_cli(store_dir, "-n", "8", "--format", "json"), "--", *command]
    )

    # THEN the leak is reported with its bytes per run, and the command's output passed through
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [(r["key"], r["bytes_per_run"]) for r in doc["rows"]] == [
        (LEAK, FILES_PER_RUN * FILE_SIZE)
    ]
    assert doc["runs"] == 8 and doc["stopped"] == "done" and len(doc["run_s"]) == 8
    assert len(doc["snapshot_s"]) == 9  # the baseline and one per run
    # the command's stdout, 2 + 8 runs of it, passed through onto stderr: stdout is the report
    assert capfd.readouterr().err.count("workload run") == 10
    assert "run 8/8: exit 0" in result.stderr
    # AND the snapshots are in the store under the loop's names, for every other command
    names = [s["name"] for s in doc["snapshots"]]
    assert names == [f"loop-{doc['loop']}-run-{k}" for k in range(9)]
    shown = runner.invoke(
        app, ["diff", names[0], names[-1], "--store", str(store_dir), "-f", "json"]
    )
    delta = by_key(json.loads(shown.stdout)["rows"])[LEAK]["delta_bytes"]
    assert delta == 8 * FILES_PER_RUN * FILE_SIZE


@pytest.mark.slow  # a loop of real runs: the full suite, not the fast loop
def test_fail_on_leak_exits_5_and_writes_junit(
    tmp_path: Path, store_dir: Path, fake_kernel: Path
) -> None:
    # GIVEN the leaking command, a JUnit path where a symlink was planted
    command = workload(tmp_path, fake_kernel)
    report = tmp_path / "leaks.xml"
    elsewhere = tmp_path / "not-this.txt"
    elsewhere.write_text("untouched")
    report.symlink_to(elsewhere)

    # WHEN looped with --fail-on-leak --junit
    args = loop_cli(store_dir, "-n", "6", "--fail-on-leak", "--junit", str(report))
    result = runner.invoke(app, [*args, "--", *command])

    # THEN exit 5, a table ranked by bytes per run, and one failing test case naming the leak
    assert result.exit_code == ExitCode.LEAK_FOUND, result.stderr
    assert "+1.0 MiB" in result.stdout and LEAK in result.stdout
    assert not report.is_symlink() and elsewhere.read_text() == "untouched"
    assert report.stat().st_mode & 0o777 == 0o600
    suite = ET.parse(report).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == 1 and cases[0].get("name") == shlex.join(command)
    failure = cases[0].find("failure")
    assert failure is not None and failure.text is not None
    assert "+1.0 MiB per run" in failure.text and LEAK in failure.text
    assert suite.get("failures") == "1"


@pytest.mark.slow  # a loop of real runs: the full suite, not the fast loop
def test_a_failing_command_stops_the_loop_with_its_run_and_code(
    tmp_path: Path, store_dir: Path, fake_kernel: Path
) -> None:
    # GIVEN a command that exits 3 on its 6th invocation: 2 warm-up runs, then run 4
    command = workload(tmp_path, fake_kernel, fail_at=6)
    report = tmp_path / "report.xml"

    # WHEN looped 10 times
    result = runner.invoke(app, [*loop_cli(store_dir, "--junit", str(report)), "--", *command])

    # THEN the loop stops there, the 3 runs before are judged, and the error names run and code
    assert result.exit_code == ExitCode.FAILURE
    assert result.stderr.endswith(
        "Error: the command exited with code 3 in run 4 of 20; the runs before it were judged\n"
    )
    assert "3 runs of" in result.stdout
    error = ET.parse(report).getroot().find(".//testcase/error")
    assert (
        error is not None
        and error.get("message") == "the command exited with code 3 in run 4 of 20"
    )


def test_a_command_failing_in_warm_up_is_judged_not_at_all(
    tmp_path: Path, store_dir: Path, fake_kernel: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a command that fails the first time
    command = workload(tmp_path, fake_kernel, fail_at=1)

    # WHEN looped
    result = runner.invoke(app, [*loop_cli(store_dir), "--", *command])

    # THEN the loop stops in its first warm-up run, with nothing to judge and no report
    assert result.exit_code == ExitCode.FAILURE
    assert result.stderr.endswith("Error: the command exited with code 3 in warm-up run 1 of 20\n")
    assert result.stdout == ""
    assert capfd.readouterr().err == "workload run 1\n"


@pytest.mark.slow  # a loop of real runs: the full suite, not the fast loop
def test_sigint_finishes_the_run_and_judges_the_runs_done(
    tmp_path: Path, store_dir: Path, fake_kernel: Path
) -> None:
    # GIVEN a command that sends SIGINT to allocsnap (its parent) in its 7th invocation (run 5)
    script = then(tmp_path, workload(tmp_path, fake_kernel), 7, "kill -INT $PPID")

    # WHEN looped 10 times
    result = runner.invoke(
        app, [*loop_cli(store_dir, "-n", "10", "-f", "json"), "--", "sh", str(script)]
    )

    # THEN run 5 completed, got its snapshot, and the 5 runs were judged
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["stopped"] == "interrupted" and doc["runs"] == 5
    assert doc["rows"][0]["key"] == LEAK and doc["rows"][0]["total_bytes"] == 5 << 20
    assert "interrupted: judging the 5 runs done" in result.stderr


def test_no_profiling_kernel_is_refused_before_the_command_runs(
    tmp_path: Path, store_dir: Path
) -> None:
    # GIVEN no /proc/allocinfo (the autouse fixture points the reader at a missing file)
    marker = tmp_path / "ran"

    # WHEN a loop is asked for
    result = runner.invoke(app, ["loop", "--store", str(store_dir), "--", "touch", str(marker)])

    # THEN it is refused as snap refuses, and the command never ran
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "does not exist: kernel" in result.stderr
    assert not marker.exists()
    snap = runner.invoke(app, ["snap", "--store", str(store_dir)])
    assert snap.stderr.splitlines()[-1] == result.stderr.splitlines()[-1]


def test_loop_runs_lists_a_loops_snapshots_by_run(store_dir: Path) -> None:
    # GIVEN a loop of 5 runs
    write_loop(store_dir, "aa11bb22", 5)

    # THEN its snapshots come back by run, named and timed as written
    runs = analysis.loop_runs(store_dir, "aa11bb22").to_pylist()
    assert [(r["run"], r["name"]) for r in runs] == [
        (k, f"loop-aa11bb22-run-{k}") for k in range(6)
    ]
    assert [r["taken_at"] for r in runs] == [T0 + timedelta(seconds=2 * k) for k in range(6)]
    assert analysis.loop_runs(store_dir, "ffffffff").num_rows == 0


@pytest.mark.slow  # a loop of real runs: the full suite, not the fast loop
def test_a_kernel_read_failing_mid_loop_is_its_own_error(
    tmp_path: Path, store_dir: Path, fake_kernel: Path
) -> None:
    # GIVEN a command that removes the file the kernel reader reads, in its 4th run (run 2)
    script = then(tmp_path, workload(tmp_path, fake_kernel), 4, f"rm {fake_kernel}")

    # WHEN looped
    result = runner.invoke(app, [*loop_cli(store_dir), "--", "sh", str(script)])

    # THEN the snapshot's child reports why it could not read, with that error's exit code
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert result.stderr.splitlines()[-1].startswith(f"Error: {fake_kernel} does not exist")
    # AND the snapshots taken before it stay in the store: the baseline and run 1
    names = [m.name or "" for m in analysis.snapshots(store_dir)]
    assert [name.rsplit("-", 2)[1:] for name in names] == [["run", "0"], ["run", "1"]]


def test_memory_moving_between_call_sites_of_one_function_is_not_a_leak(store_dir: Path) -> None:
    # GIVEN 16 KiB per run moving from one call site of folio_prealloc to another (a page copied
    # on write is counted at another line than the page it replaces)
    moved, gone = "mm/memory.c:1291 func:folio_prealloc", "mm/memory.c:1289 func:folio_prealloc"

    def move(run: int) -> dict[str, int]:
        return {moved: run * (16 << 10), gone: -run * (16 << 10)}

    write_loop(store_dir, "1a2b3c4d", 12, move)

    # WHEN judged by call site
    judged = analysis.loop(store_dir, "1a2b3c4d")

    # THEN the growing site is no leak: its function as a whole keeps nothing per run
    row = by_key(judged.others.to_pylist())[moved]
    assert judged.found == 0
    assert row["verdict"] == "moves between call sites"
    assert row["bytes_per_run"] == 16 << 10
    assert row["reason"] == (
        "moves between the call sites of folio_prealloc (mm/memory.c): together they keep 0 "
        "bytes per run"
    )
