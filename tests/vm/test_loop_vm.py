"""``allocsnap loop`` on real profiling kernels: 6.12 (text, no ioctl) and 7.3 (ioctl).

Each kernel boots once per test module and runs loop_guest.py as root: four loops (a command
that keeps two 512 KiB tmpfs files per run, one that writes and removes 1 MiB, one that reads a
large file into the page cache, one that loads and unloads a module) and the loop's cost beside
two ``cat``s and a ``diff``. The assertions run here, against what the guest's file system says
the command did (file sizes and counts), not against allocsnap's own numbers. Skips (fails under
``CI=true``) as test_real_kernels.py does, through its helpers (one ``Boots`` per module).
"""

from __future__ import annotations

import shlex
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from allocsnap.errors import ExitCode
from tests.vm.test_real_kernels import Boots, Guest, allocsnap_on_host

pytestmark = pytest.mark.vm

GUEST = Path(__file__).with_name("loop_guest.py")
TIMEOUT_S = 1200
RUNS, WARMUP = 12, 2  # as loop_guest.py
FILE_SIZE, FILES_PER_RUN = 512 << 10, 2
# a large file on the guest's (9p, cache=loose) root: read into the page cache by the cache loop
BIG_FILE = next(
    iter(sorted((Path(sys.prefix) / "lib").glob("python3*/site-packages/pyspark/jars/spark-c*"))),
    Path(sys.executable).resolve(),
)


@dataclass(frozen=True)
class Looped:
    """What one boot of loop_guest.py left in its share."""

    guest: Guest

    @property
    def version(self) -> str:
        return self.guest.version

    @property
    def out(self) -> Path:
        return self.guest.out

    @property
    def results(self) -> dict[str, Any]:
        return self.guest.results

    def loop(self, name: str) -> dict[str, Any]:
        entry: dict[str, Any] = self.results["loops"][name]
        if "skipped" in entry:
            pytest.skip(f"{self.version}: {entry['skipped']}")
        assert entry["rc"] in (0, 5), entry["stderr"][-2000:]
        return entry

    def report(self, name: str) -> dict[str, Any]:
        report: dict[str, Any] = self.loop(name)["report"]
        return report


@pytest.fixture(scope="module")
def boots(tmp_path_factory: pytest.TempPathFactory) -> Boots:
    return Boots(tmp_path_factory, GUEST, (str(BIG_FILE),), TIMEOUT_S)


@pytest.fixture(scope="module", params=["6.12", "7.3"])
def looped(request: pytest.FixtureRequest, boots: Boots) -> Looped:
    return Looped(boots.get(request.param))


def test_a_leak_per_run_is_reported_with_the_bytes_each_run_kept(looped: Looped) -> None:
    # GIVEN the leaking loop, and what the guest's file system says each run kept
    files = looped.loop("leak")["files"]
    assert files["sizes"] == [FILE_SIZE]
    assert files["count"] == (WARMUP + RUNS) * FILES_PER_RUN
    kept_per_run = FILE_SIZE * FILES_PER_RUN
    report = looped.report("leak")

    # THEN the top leak is tmpfs's page allocation, at what each run kept, over every run
    assert report["runs"] == RUNS and report["stopped"] == "done"
    top = report["rows"][0]
    assert "shmem" in top["key"], report["rows"]
    assert top["bytes_per_run"] == pytest.approx(kept_per_run, rel=0.02)
    assert top["total_bytes"] == pytest.approx(RUNS * kept_per_run, rel=0.02)
    assert top["grew_share"] == 1.0 and top["confidence"] > 0.999
    assert looped.loop("leak")["rc"] == 0  # no --fail-on-leak: found, but exit 0


def test_allocating_and_freeing_is_not_a_leak(looped: Looped) -> None:
    # GIVEN the loop that writes and removes 1 MiB each run / THEN nothing leaks per run
    report = looped.report("free")
    assert report["runs"] == RUNS
    assert report["rows"] == [], report["rows"]


def test_a_cache_filled_once_is_not_a_leak(looped: Looped) -> None:
    # GIVEN the loop that reads one large file each run, without warm-up runs
    entry = looped.loop("cache")
    report = looped.report("cache")

    # THEN its first run filled the page cache (seen: a series moved by most of the file)...
    moved = max(r["last_bytes"] - r["first_bytes"] for r in report["not_leaks"])
    assert moved >= 0.5 * entry["file_size"]
    # ... and nothing is reported as leaking per run
    assert report["rows"] == [], report["rows"]


def test_loading_and_unloading_a_module_is_not_a_leak(looped: Looped) -> None:
    report = looped.report("module")
    assert report["runs"] == RUNS
    assert report["rows"] == [], report["rows"]


def test_the_loops_snapshots_are_in_the_store_for_other_commands(looped: Looped) -> None:
    # GIVEN the leaking loop's baseline and last snapshots, by their names
    report = looped.report("leak")
    first, last = (f"loop-{report['loop']}-run-{k}" for k in (0, RUNS))

    # WHEN diff reads them on the host
    store = str(looped.out / "store-leak")
    rows = allocsnap_on_host("diff", first, last, "--store", store, "--top", "0")["rows"]

    # THEN the leaking call site grew by what the loop reported
    top = report["rows"][0]
    assert {r["key"]: r["delta_bytes"] for r in rows}[top["key"]] == top["total_bytes"]


def test_the_cost_per_run_was_measured(looped: Looped) -> None:
    # GIVEN the loop of `true` and the cat + diff alternative (figures: docs/performance.md)
    cost = looped.results["cost"]

    # THEN both ran to the end, and the loop read the kernel the way it should
    assert cost["rc"] == 0
    assert len(cost["snapshot_s"]) == cost["runs"] + 1
    assert cost["source"] == ("ioctl" if looped.version == "7.3" else "procfs")
    assert len(cost["cat_diff_wall_s"]) == 5


def test_fail_on_leak_exits_5_with_a_junit_report_naming_the_leak(looped: Looped) -> None:
    # GIVEN the leaking command looped as a CI job: one 1 MiB file per run, never removed
    ci = looped.results["ci"]

    # THEN exit 5, the table's first row is tmpfs's page allocation at 1 MiB per run, and the
    # JUnit report has one failing test case, named after the command, with that call site
    assert ci["rc"] == ExitCode.LEAK_FOUND, ci["stderr"][-2000:]
    first = ci["stdout"].split("\n\n")[1].splitlines()[1]
    assert first.split()[0] == "+1.0" and "shmem" in first
    suite = ET.parse(looped.out / "loop.xml").getroot()
    (case,) = suite.iter("testcase")
    assert case.get("name") == shlex.join(["sh", "-c", ci["command"]])
    failure = case.find("failure")
    assert failure is not None and failure.text is not None
    assert failure.text.startswith("+1.0 MiB per run") and "shmem" in failure.text.splitlines()[0]
