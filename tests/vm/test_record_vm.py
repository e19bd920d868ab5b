"""The recorder on a real profiling kernel: ``allocsnap record`` inside a ../shared/vm guest."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from allocsnap import query, store
from tests.vm.test_real_kernels import run_in_vm

pytestmark = pytest.mark.vm


def test_record_on_a_real_kernel_with_a_workload(tmp_path: Path) -> None:
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
    result = run_in_vm("7.3", ["--share", str(out)], ["sh", "-c", script], timeout=400)

    # THEN it exits 0 with 8 complete snapshots of the 7.3 kernel, read through its ioctl
    # (--source auto picks the ioctl where the kernel has one)
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
        assert rows > 3000 and kernel.startswith("7.3") and src == "ioctl"
        assert profiling == 1 and labels == {"test": "vm"}
