"""The recorder on a real profiling kernel: ``allocsnap record`` inside a ../shared/vm guest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from allocsnap import query, store

ROOT = Path(__file__).resolve().parents[2]
VM = Path(os.environ.get("ALLOCSNAP_VM", ROOT.parent / "shared" / "vm"))

pytestmark = pytest.mark.vm


def test_record_on_a_real_kernel_with_a_workload(tmp_path: Path) -> None:
    if not (VM / "run-in-vm").is_file() or not any((VM / "kernels").glob("7.3*")):
        pytest.skip(f"no VM kernels in {VM} (set ALLOCSNAP_VM)")
    if shutil.which("qemu-system-x86_64") is None and os.geteuid() != 0:
        pytest.skip("qemu is missing and cannot be installed without root")
    # GIVEN a guest running a file-writing loop, and a module loaded mid-run
    out = tmp_path / "out"
    out.mkdir()
    allocsnap = Path(sys.executable).parent / "allocsnap"
    script = (
        "(while :; do dd if=/dev/zero of=/tmp/x bs=1M count=8 2>/dev/null; rm -f /tmp/x; done) & "
        f"(sleep 6; modprobe zram) & {allocsnap} record --interval 1s --count 8 "
        f"--store {out}/store --label test=vm"
    )

    # WHEN the recorder runs there
    result = subprocess.run(
        [str(VM / "run-in-vm"), "--timeout", "400", "--share", str(out), "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=500,
        cwd=ROOT,
    )

    # THEN it exits 0 with 8 complete snapshots of the 7.3 kernel read from procfs
    assert result.returncode == 0, result.stderr[-2000:]
    with query.connect(store.open_store(out / "store")) as con:
        snaps = con.sql(
            "select s.rows, count(x.ordinal), sum(x.bytes), s.total_bytes, s.kernel, s.source, "
            "s.profiling, s.labels from snapshots s join samples x using (snapshot_id) "
            "group by all"
        ).fetchall()
    assert len(snaps) == 8
    for rows, samples, total, recorded, kernel, src, profiling, labels in snaps:
        assert (samples, total) == (rows, recorded)
        assert rows > 3000 and kernel.startswith("7.3") and src == "procfs"
        assert profiling == 1 and labels == {"test": "vm"}
