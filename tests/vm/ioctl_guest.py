"""Runs INSIDE a 7.3 run-in-vm guest as root: ioctl snapshots taken in one process, as the
recorder takes them, while a module loads and unloads and profiling is switched off and on.

Usage (in the guest): python ioctl_guest.py OUT_DIR. For each step and filter it writes to
OUT_DIR/results.json whether ``capture.snapshot(ioctl.read_kernel(keep))`` equals the snapshot
built the way it was before the ioctl path kept its columns and skipped the kernel's filter
(a table built record by record from the very same walk, ``filters.apply``, ``with_totals``),
and the kernel facts it recorded beside what /proc says at that moment. The host side is
test_ioctl_vm.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from allocsnap import filters
from allocsnap.kernel import capture, ioctl, source
from allocsnap.model import SAMPLE_SCHEMA, Filter, tag_id

OUT = Path(sys.argv[1])
FILTERS = {
    "file": Filter(file="mm/slub.c"),  # exact in the kernel
    "zram": Filter(module="zram"),  # exact in the kernel; rows only while zram is loaded
    "built-in memory.c": Filter(module="built-in", file="mm/memory.c"),
    "glob": Filter(file="mm/*.c", function="k*"),  # not sent to the kernel
    "min size": Filter(min_size=1 << 20),  # sent, then applied again (negative counts)
    "none": Filter(),
}
walks: list[ioctl.Walk] = []
_walk = ioctl.walk


def recorded_walk(*args: Any, **kwargs: Any) -> ioctl.Walk:
    """``ioctl.walk``, keeping each walk so the reference is built from the same records."""
    walk = _walk(*args, **kwargs)
    walks.append(walk)
    return walk


def per_record(records: list[Any]) -> pa.Table:
    """The table as ioctl.to_table built it before: one dict per record."""
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for ordinal, r in enumerate(records):
        key = (r.module, r.file, r.line, r.function)
        seen[key] = seen.get(key, -1) + 1
        rows.append(
            {
                **dict(zip(("module", "file", "line", "function"), key, strict=True)),
                "ordinal": ordinal,
                "tag_id": tag_id(*key),
                "occurrence": seen[key],
                "bytes": r.bytes,
                "calls": r.calls,
                "accurate": r.accurate,
                "extras": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)


def fresh_modules() -> list[str]:
    return sorted(line.split()[0] for line in open("/proc/modules") if line.strip())


def step() -> dict[str, Any]:
    """Take a snapshot with each filter; compare it with the reference and /proc."""
    out: dict[str, Any] = {}
    for label, keep in FILTERS.items():
        snap = capture.snapshot(ioctl.read_kernel(keep), keep=keep)
        walk = walks[-1]
        records, _ = ioctl.reconcile(walk.records, walk.text)
        # the reference: the same records, the old way
        before = source.RawRead(
            text=b"",
            source="ioctl",
            taken_at=snap.meta.taken_at,
            samples=filters.apply(per_record(records), keep),
            format="ioctl",
        )
        ref_meta = capture.snapshot(before, keep=keep).meta
        out[label] = {
            "rows": snap.meta.rows,
            "same_rows": snap.samples.equals(before.samples),
            "same_totals": (snap.meta.rows, snap.meta.total_bytes, snap.meta.total_calls)
            == (ref_meta.rows, ref_meta.total_bytes, ref_meta.total_calls),
            "modules": list(snap.meta.modules or ()),
            "proc_modules": fresh_modules(),
            "profiling": snap.meta.profiling,
            "proc_profiling": int(Path("/proc/sys/vm/mem_profiling").read_text().strip()),
            "boot_id": snap.meta.boot_id,
            "proc_boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
            "notes": list(snap.meta.notes),
        }
    return out


def main() -> None:
    ioctl.walk = recorded_walk
    results: dict[str, Any] = {"steps": {}}
    run = subprocess.run
    results["steps"]["start"] = step()
    run(["modprobe", "zram"], check=True)
    results["steps"]["zram loaded"] = step()
    run(["sysctl", "-qw", "vm.mem_profiling=0"], check=True)
    results["steps"]["profiling off"] = step()
    run(["sysctl", "-qw", "vm.mem_profiling=1"], check=True)
    run(["rmmod", "zram"], check=True)
    results["steps"]["zram unloaded"] = step()
    (OUT / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
