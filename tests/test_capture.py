"""What a snapshot says about the profiling state it was read in (allocsnap/capture.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from allocsnap import filters
from allocsnap.kernel import capture, ioctl, ioctl_abi, parse, source
from allocsnap.model import Filter
from tests import oracle
from tests.conftest import real

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def read_with(path: Path, profiling: int) -> source.RawRead:
    """A procfs-like read of a real capture, with the profiling state procfs would record."""
    notes = (source.PROFILING_OFF_NOTE,) if profiling == 0 else ()
    return source.RawRead(
        text=path.read_bytes(), source="file", taken_at=T0, profiling=profiling, notes=notes
    )


def test_a_boot_that_never_counted_is_named_not_called_frozen() -> None:
    # GIVEN the real 6.12 capture taken at a boot with profiling off: every counter is 0
    # (what 6.10-6.12 also print when booted with sysctl.vm.mem_profiling=never)
    path = real("6.12", 3, 0)
    assert all(row.bytes == 0 and row.calls == 0 for row in oracle.rows(path))
    # WHEN it is snapshotted with vm.mem_profiling=0
    notes = capture.snapshot(read_with(path, 0)).meta.notes
    # THEN the note says nothing was counted and how to switch it on, not "frozen"
    assert notes == (source.NEVER_COUNTED_NOTE,)
    assert "sysctl.vm.mem_profiling=never" in notes[0]
    assert "sysctl vm.mem_profiling=1" in notes[0]


def test_counters_that_stopped_are_called_frozen() -> None:
    # GIVEN a real capture with live counters, read while profiling is off
    path = real("6.12", 3, 2)
    assert any(row.bytes != 0 for row in oracle.rows(path))
    # WHEN it is snapshotted with vm.mem_profiling=0
    notes = capture.snapshot(read_with(path, 0)).meta.notes
    # THEN the frozen note stays
    assert notes == (source.PROFILING_OFF_NOTE,)


def test_all_zero_counters_with_profiling_on_add_no_note() -> None:
    # GIVEN the all-zero capture read while profiling is on (switched on a moment ago)
    raw = read_with(real("6.12", 3, 0), 1)
    # THEN no profiling note: the counters are live and just started
    assert capture.snapshot(raw).meta.notes == ()


def decoded(kept: Filter | None) -> source.RawRead:
    """An ioctl-like read: the rows of a real 7.3 capture already decoded, ``kept`` applied."""
    rows = parse.parse(real("7.3", 2, 0).read_bytes()).samples
    if kept is not None:
        rows = filters.apply(rows, kept)
    return source.RawRead(
        text=b"", source="ioctl", taken_at=T0, samples=rows, format="ioctl", kept=kept
    )


def test_rows_the_read_filtered_already_are_not_filtered_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN rows the ioctl read filtered by --file mm/slub.c, and every filter pass counted
    keep = Filter(file="mm/slub.c")
    raw = decoded(keep)
    passes: list[Filter] = []
    apply = filters.apply

    def counted(rows: pa.Table, kept: Filter, *args: object) -> pa.Table:
        passes.append(kept)
        return apply(rows, kept, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(filters, "apply", counted)
    # WHEN the snapshot is taken with the same filter
    snap = capture.snapshot(raw, keep=keep)
    # THEN the rows are kept as read, with no second pass
    assert passes == []
    assert snap.samples.equals(raw.samples) and snap.meta.filter == "file=mm/slub.c"


def test_a_filter_the_read_did_not_apply_is_applied() -> None:
    # GIVEN rows the read filtered by --file mm/slub.c only
    raw = decoded(Filter(file="mm/slub.c"))
    assert raw.samples is not None
    # WHEN the snapshot is taken with a narrower filter
    snap = capture.snapshot(raw, keep=Filter(file="mm/slub.c", nonzero=True))
    # THEN the narrower filter is applied to the rows
    bytes_ = snap.samples["bytes"].to_pylist()
    assert 0 < len(bytes_) <= raw.samples.num_rows and all(b != 0 for b in bytes_)
    # AND rows read without a filter are filtered as the snapshot asks
    assert capture.snapshot(decoded(None), keep=Filter(file="mm/slub.c")).samples.equals(
        raw.samples
    )


def test_totals_the_read_summed_give_the_same_snapshot() -> None:
    # GIVEN an ioctl-like read of real rows with the totals the ioctl path sums in Python
    keep = Filter(file="mm/slub.c")
    raw = decoded(keep)
    assert raw.samples is not None
    records = [
        ioctl_abi.Record(
            r["module"], r["function"], r["file"], r["line"], r["bytes"], r["calls"], r["accurate"]
        )
        for r in raw.samples.to_pylist()
    ]
    with_sums = replace(raw, totals=ioctl.record_totals(records))
    # WHEN snapshotted with and without them, and re-filtered
    fast = capture.snapshot(with_sums, keep=keep)
    summed = capture.snapshot(raw, keep=keep)
    refiltered = capture.snapshot(replace(with_sums, kept=None), keep=keep)
    # THEN rows and metadata are the same, totals included
    assert fast.meta == summed.meta == refiltered.meta
    assert fast.meta.rows == raw.samples.num_rows > 0 and fast.meta.total_bytes != 0
    assert fast.samples.equals(summed.samples) and fast.samples.equals(refiltered.samples)
