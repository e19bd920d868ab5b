"""Under ``CI=true`` the VM tests fail where they would skip: no kernel found, or no qemu.

Each case runs pytest in a process of its own on one VM test, with ``ALLOCSNAP_VM_DIR``
pointing at a folder made here, and reads pytest's verdict from a JUnit XML report. No VM
boots: the folder has no kernel, or a stand-in ``run-in-vm`` that answers as the real one does
when qemu is missing (uninstalling qemu to cause it for real is not for a test to do).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a pytest of its own per case

PROJECT = Path(__file__).resolve().parents[1]
# A short boot that needs no fixture: the test fails or skips at once when no VM can run.
VM_TEST = "tests/vm/test_real_kernels.py::test_profiling_never_says_which_boot_parameter"
# What ../shared/vm/run-in-vm prints, exiting 125, when qemu is missing and cannot be installed.
NO_QEMU = (
    "run-in-vm: qemu-system-x86_64 is not installed and could not be installed"
    " (apt-get install qemu-system-x86)"
)


def verdict(tmp_path: Path, vm_dir: Path, ci: str | None) -> tuple[str, str]:
    """Run VM_TEST in a fresh pytest; return its outcome (passed, skipped, failed) and message."""
    report = tmp_path / f"report-{ci}.xml"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["ALLOCSNAP_VM_DIR"] = str(vm_dir)
    if ci is not None:
        env["CI"] = ci
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", VM_TEST]
    done = subprocess.run(
        [*command, f"--junitxml={report}"], cwd=PROJECT, env=env, capture_output=True, text=True
    )
    cases = ET.parse(report).getroot().findall(".//testcase")
    assert len(cases) == 1, done.stdout
    outcome = [child for child in cases[0] if child.tag in {"skipped", "failure", "error"}]
    if not outcome:
        assert done.returncode == 0, done.stdout
        return "passed", ""
    tag, message = outcome[0].tag, outcome[0].get("message", "")
    # pytest's exit status says the same as the report: 1 when a test failed, else 0
    assert done.returncode == (0 if tag == "skipped" else 1), done.stdout
    return {"skipped": "skipped", "failure": "failed", "error": "failed"}[tag], message


@pytest.fixture
def no_kernels(tmp_path: Path) -> Path:
    """A VM folder with nothing in it."""
    folder = tmp_path / "vm-empty"
    folder.mkdir()
    return folder


@pytest.fixture
def no_qemu(tmp_path: Path) -> Path:
    """A VM folder with a 7.3 kernel and a run-in-vm that cannot find qemu."""
    folder = tmp_path / "vm-no-qemu"
    (folder / "kernels" / "7.3.4-allocsnap").mkdir(parents=True)
    (folder / "kernels" / "7.3.4-allocsnap" / "bzImage").write_bytes(b"not a kernel")
    script = folder / "run-in-vm"
    script.write_text(f"#!/bin/sh\necho '{NO_QEMU}' >&2\nexit 125\n")
    script.chmod(0o755)
    return folder


def test_missing_kernel_fails_the_vm_test_under_ci(tmp_path: Path, no_kernels: Path) -> None:
    # GIVEN CI=true and a VM folder without kernels
    # WHEN a VM test runs, THEN it fails, naming the folder
    outcome, message = verdict(tmp_path, no_kernels, "true")
    assert outcome == "failed"
    assert f"CI=true but no 7.3 kernel in {no_kernels}/kernels" in message


def test_missing_qemu_fails_the_vm_test_under_ci(tmp_path: Path, no_qemu: Path) -> None:
    # GIVEN CI=true and a kernel, but no qemu
    # WHEN a VM test runs, THEN it fails with run-in-vm's reason
    outcome, message = verdict(tmp_path, no_qemu, "true")
    assert outcome == "failed"
    assert "CI=true but run-in-vm cannot run a VM here" in message
    assert "qemu-system-x86_64 is not installed" in message


def test_outside_ci_a_missing_kernel_or_qemu_skips_saying_why(
    tmp_path: Path, no_kernels: Path, no_qemu: Path
) -> None:
    # GIVEN no CI variable (a developer's machine, a clone without ../shared/vm)
    # WHEN a VM test runs without a kernel, or without qemu, THEN it skips and says why
    assert verdict(tmp_path, no_kernels, None) == (
        "skipped",
        f"no 7.3 kernel in {no_kernels}/kernels (set ALLOCSNAP_VM_DIR)",
    )
    outcome, message = verdict(tmp_path, no_qemu, None)
    assert outcome == "skipped"
    assert "qemu-system-x86_64 is not installed" in message
