"""ioctl snapshots in one process on the real 7.3 kernel, as the recorder takes them: the same
rows and totals as the record-by-record build, and the kernel facts of the moment (issue 17).

The guest (ioctl_guest.py) snapshots with several filters, then loads zram, switches profiling
off, switches it on and unloads zram, in one process, so kept columns and facts read once or
kept open are checked against /proc at each step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.vm.test_real_kernels import Boots, Guest

pytestmark = pytest.mark.vm

STEPS = ["start", "zram loaded", "profiling off", "zram unloaded"]


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Guest:
    return Boots(tmp_path_factory, script=Path(__file__).with_name("ioctl_guest.py")).get("7.3")


def cases(guest: Guest) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (step, label, case)
        for step in STEPS
        for label, case in guest.results["steps"][step].items()
    ]


def test_ioctl_snapshots_equal_the_record_by_record_build(guest: Guest) -> None:
    # GIVEN snapshots of several filters at each step, and the same walks built the old way
    for step, label, case in cases(guest):
        # THEN rows and totals are the same
        assert case["same_rows"] and case["same_totals"], (step, label)
    # AND the filters returned rows (zram's only while it was loaded)
    rows = {(step, label): case["rows"] for step, label, case in cases(guest)}
    assert all(n > 0 for (step, label), n in rows.items() if label != "zram" and label != "glob")
    assert rows["zram loaded", "zram"] > 0 and rows["start", "zram"] == 0
    assert rows["zram unloaded", "zram"] == 0


def test_the_facts_are_the_moments_in_one_process(guest: Guest) -> None:
    for step, label, case in cases(guest):
        # THEN each snapshot's modules, profiling state and boot id are what /proc said then
        assert case["modules"] == case["proc_modules"], (step, label)
        assert case["profiling"] == case["proc_profiling"], (step, label)
        assert case["boot_id"] == case["proc_boot_id"], (step, label)
    steps = guest.results["steps"]
    assert "zram" in steps["zram loaded"]["none"]["modules"]
    assert "zram" not in steps["zram unloaded"]["none"]["modules"]
    assert steps["profiling off"]["file"]["profiling"] == 0
    assert steps["zram unloaded"]["file"]["profiling"] == 1
