"""A snapshot's metadata: what one read of the kernel's table was, with no pyarrow.

``model`` re-exports it beside the Arrow schemas. It lives apart so that the paths that answer
from the catalog and DuckDB alone (allocsnap/oneshot/stored.py) read a snapshot's row as the
analyses do without importing pyarrow and numpy, most of such a process's start-up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

SCHEMA_VERSION = 3
"""Version of the on-disk layout; bumped on any incompatible change (docs/storage.md).

3: compacted samples files leave ``calls`` NULL where it is ``bytes`` / ``unit_bytes``; an
allocsnap of schema 2 would read those NULLs, so it must refuse such a store."""


class SnapshotMeta(NamedTuple):
    """What one read of the kernel's table was: when, where, how, and its totals.

    A named tuple, not a dataclass: importing ``dataclasses`` (and the ``inspect`` it
    imports) took 10 ms of the 0.2 s in which ``diff first latest`` answers from the catalog
    (allocsnap/oneshot/stored.py). ``meta._replace(rows=...)`` makes a changed copy."""

    snapshot_id: str
    taken_at: datetime  # UTC wall clock at the end of the read
    host: str
    source: str  # procfs | ioctl | file | stdin
    format: str  # header version ("1.0", "2.0"), "none" without a header, or "ioctl"
    name: str | None = None
    boottime_s: float | None = None  # CLOCK_BOOTTIME, immune to wall-clock jumps
    boot_id: str | None = None
    kernel: str | None = None
    profiling: int | None = None  # vm.mem_profiling at read time (0 or 1)
    filter: str = ""
    read_s: float | None = None
    modules: tuple[str, ...] | None = None  # loaded modules, None when unknown
    labels: dict[str, str] = {}  # shared by every default: never changed in place
    origin: str | None = None  # file the text came from, for imports
    notes: tuple[str, ...] = ()  # anomalies seen while reading
    rows: int = 0
    total_bytes: int = 0
    total_calls: int = 0  # signed sum: underflowed counters count as negative
    skipped_lines: int = 0  # lines skipped by --lenient

    def to_row(self) -> dict[str, Any]:
        """Return the metadata as one row of the snapshots table."""
        return {
            "snapshot_id": self.snapshot_id,
            "name": self.name,
            "taken_at": self.taken_at,
            "boottime_s": self.boottime_s,
            "host": self.host,
            "boot_id": self.boot_id,
            "kernel": self.kernel,
            "format": self.format,
            "source": self.source,
            "origin": self.origin,
            "profiling": self.profiling,
            "filter": self.filter,
            "read_s": self.read_s,
            "modules": list(self.modules) if self.modules is not None else None,
            "labels": sorted(self.labels.items()),
            "notes": list(self.notes),
            "rows": self.rows,
            "total_bytes": self.total_bytes,
            "total_calls": self.total_calls,
            "skipped_lines": self.skipped_lines,
            "schema_version": SCHEMA_VERSION,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SnapshotMeta:
        """Return the metadata from one row of the snapshots table."""
        modules = row.get("modules")
        labels = row.get("labels") or []
        taken_at = row["taken_at"]
        taken_at = taken_at.replace(tzinfo=UTC) if taken_at.tzinfo is None else taken_at
        return cls(
            snapshot_id=row["snapshot_id"],
            taken_at=taken_at.astimezone(UTC),
            host=row["host"],
            source=row["source"],
            format=row["format"],
            name=row.get("name"),
            boottime_s=row.get("boottime_s"),
            boot_id=row.get("boot_id"),
            kernel=row.get("kernel"),
            profiling=row.get("profiling"),
            filter=row.get("filter") or "",
            read_s=row.get("read_s"),
            modules=tuple(modules) if modules is not None else None,
            labels=dict(labels),
            origin=row.get("origin"),
            notes=tuple(row.get("notes") or ()),
            rows=row.get("rows") or 0,
            total_bytes=row.get("total_bytes") or 0,
            total_calls=row.get("total_calls") or 0,
            skipped_lines=row.get("skipped_lines") or 0,
        )
