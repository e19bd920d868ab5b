"""Turn one read (the kernel, a saved dump, stdin) into a filtered ``Snapshot``.

The one place where source, parser and filter meet, used by ``snap``, ``import`` and the
recorder alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap import filters
from allocsnap.errors import IoctlUnsupported
from allocsnap.kernel import parse, source
from allocsnap.model import Filter, Snapshot, SnapshotMeta, check_host, check_snapshot_name

UNKNOWN_HOST = "unknown"
COUNTED_NOTHING_NOTE = (
    "every counter is 0: taken with profiling off (vm.mem_profiling=0, or never on); recorded "
    "as profiling off, so windows leave it out"
)

Parser = Callable[..., parse.ParsedAllocinfo]
"""``parse.parse`` or a drop-in such as ``fastparse.CachedParser`` (the recorder's)."""


def read(spec: str, keep: Filter | None = None) -> source.RawRead:
    """Read what ``--source`` names: ``auto``, ``ioctl``, ``procfs`` (the kernel), a path, or ``-``.

    ``auto`` uses the 7.3+ ioctl, which filters by ``keep`` in the kernel, and falls back to the
    text when the kernel has none; ``ioctl`` refuses such kernels.
    """
    from allocsnap.kernel import ioctl  # here: a dump (diff a.txt b.txt) never needs it

    if spec == "ioctl":
        return ioctl.read_kernel(keep)
    if spec == "auto":
        try:
            return ioctl.read_kernel(keep)
        except IoctlUnsupported:
            return source.read_kernel()
    if spec == "procfs":
        return source.read_kernel()
    return source.read_dump(spec)


def snapshot(
    raw: source.RawRead,
    *,
    keep: Filter | None = None,
    name: str | None = None,
    host: str | None = None,
    at: datetime | None = None,
    labels: dict[str, str] | None = None,
    lenient: bool = False,
    parser: Parser = parse.parse,
    snapshot_id: str | None = None,
    masks: filters.TagMasks | None = None,
) -> Snapshot:
    """Parse a read, filter it and describe it; explicit arguments override what was read.

    ``snapshot_id`` spares hashing the whole text where the caller has a unique id already;
    ``masks`` keeps the filter's tag mask between reads (the recorder's, with its parser).
    """
    keep = keep or Filter()
    kept = keep.canonical()
    if raw.samples is not None:  # decoded by the ioctl, already filtered in the kernel
        parsed = parse.ParsedAllocinfo(raw.format or raw.source, raw.samples, 0, ())
    else:
        parsed = parser(raw.text, source=raw.origin or raw.source, lenient=lenient)
    totals = None
    if raw.samples is not None and raw.kept == keep:
        samples = parsed.samples  # the read applied this filter already (the ioctl's)
        totals = raw.totals
    else:
        samples = filters.apply(parsed.samples, keep, masks)
    taken_at = at or raw.taken_at
    # stored times and partition dates are UTC; a naive time is taken as UTC (units.parse_time)
    taken_at = taken_at.replace(tzinfo=UTC) if taken_at.tzinfo is None else taken_at.astimezone(UTC)
    host = check_host(host or raw.host or UNKNOWN_HOST)
    if name is not None:
        check_snapshot_name(name)
    profiling, notes = raw.profiling, _never_counted(raw.notes, raw.profiling, parsed.samples)
    if profiling is None and _all_zero(parsed.samples):  # a dump: no sysctl was read with it
        profiling, notes = 0, (*notes, COUNTED_NOTHING_NOTE)
    meta = SnapshotMeta(
        snapshot_id=snapshot_id or _snapshot_id(host, raw.boot_id, taken_at, name, raw.text, kept),
        taken_at=taken_at,
        host=host,
        source=raw.source,
        format=parsed.format,
        name=name,
        boottime_s=raw.boottime_s,
        boot_id=raw.boot_id,
        kernel=raw.kernel,
        profiling=profiling,
        filter=kept,
        read_s=raw.read_s,
        modules=raw.modules if raw.modules is not None else _modules_in(raw, parsed.samples),
        labels=dict(labels or {}),
        origin=raw.origin if raw.source == "file" else None,
        notes=notes + parsed.notes,
        skipped_lines=parsed.skipped_lines,
        rows=samples.num_rows,
        total_bytes=totals[0] if totals is not None else 0,
        total_calls=totals[1] if totals is not None else 0,
    )
    if totals is None:
        meta = with_totals(meta, samples)
    return Snapshot(meta=meta, samples=samples)


def _never_counted(
    notes: tuple[str, ...], profiling: int | None, rows: pa.Table
) -> tuple[str, ...]:
    """Return ``notes`` saying so when profiling is off and every counter is zero.

    6.10–6.12 booted with ``sysctl.vm.mem_profiling=never`` keep /proc/allocinfo with every
    row at 0 (docs/allocinfo.md): "frozen" would mislead; nothing was ever counted.
    """
    if profiling != 0 or not _all_zero(rows):
        return notes
    return tuple(
        source.NEVER_COUNTED_NOTE if note == source.PROFILING_OFF_NOTE else note for note in notes
    )


def _modules_in(raw: source.RawRead, rows: pa.Table) -> tuple[str, ...] | None:
    """Return a saved dump's modules as its ``[module]`` rows show them (inferred: a module
    without an allocation site has no row), so that windows see loads and unloads."""
    if raw.source not in ("file", "stdin"):
        return None
    return tuple(sorted(m for m in pc.unique(rows["module"]).to_pylist() if m is not None))


def _all_zero(rows: pa.Table) -> bool:
    """Return True when a table has rows and every counter in it is 0."""
    return bool(
        rows.num_rows
        and not pc.any(pc.not_equal(rows["bytes"], 0)).as_py()
        and not pc.any(pc.not_equal(rows["calls"], 0)).as_py()
    )


def with_totals(meta: SnapshotMeta, samples: pa.Table) -> SnapshotMeta:
    """Return ``meta`` with the row count and totals of ``samples``."""
    total_bytes = pc.sum(samples["bytes"]).as_py() or 0
    # calls are u64 counters that can underflow; summed as two's complement they come out signed
    calls = pc.cast(samples["calls"], pa.int64(), safe=False)
    total_calls = pc.sum(calls).as_py() or 0
    return meta._replace(rows=samples.num_rows, total_bytes=total_bytes, total_calls=total_calls)


def _snapshot_id(
    host: str,
    boot_id: str | None,
    taken_at: datetime,
    name: str | None,
    text: bytes,
    kept: str = "",
) -> str:
    """Return a 12-hex-digit id; the same dump imported twice the same way gets the same id.

    A filter is part of it (when there is one): one read kept two ways is two snapshots.
    """
    digest = hashlib.blake2b(digest_size=6)
    for part in (host, boot_id or "", taken_at.isoformat(), name or ""):
        digest.update(part.encode() + b"\0")
    if kept:
        digest.update(b"filter\0" + kept.encode() + b"\0")
    digest.update(text)
    return digest.hexdigest()
