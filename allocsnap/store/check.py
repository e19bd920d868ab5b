"""Damaged files of a local store: found by reading every file with plain pyarrow and checking
each snapshot's samples against its own row, and set aside in ``quarantine/`` (never deleted).

A snapshot's row carries its row count and totals (``rows``, ``total_bytes``, ``total_calls``);
a samples file is damaged when it cannot be read or disagrees with the rows that commit it
(docs/storage.md, "Damaged files").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allocsnap.errors import StoreError
from allocsnap.store.durable import fsync, why
from allocsnap.store.generations import partitions, unreadable
from allocsnap.store.layout import ensure_store
from allocsnap.store.locks import writer_lock
from allocsnap.store.unit_coding import UNIT

QUARANTINE = "quarantine"


@dataclass(frozen=True)
class Damage:
    """One damaged file, why, and the files set aside with it (a snapshots file and its
    samples go together: neither means anything alone)."""

    path: Path
    why: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Totals:
    """A snapshot's rows, live bytes and signed calls."""

    rows: int
    bytes: int
    calls: int


def find_damage(root: Path) -> list[Damage]:
    """Return the damaged files of the store at ``root``: unreadable Parquet, samples missing
    or disagreeing with their snapshots rows, unreadable snapshots or tags files."""
    found = []
    tag_ids = []
    for path in sorted((root / "tags").glob("*.parquet")):
        try:
            tag_ids.append(pq.read_table(path)["tag_id"])
        except (OSError, pa.ArrowException, KeyError) as e:
            found.append(Damage(path, f"cannot be read: {unreadable(e, path)}", (path,)))
    known = pc.unique(pa.chunked_array(tag_ids, pa.int64()).combine_chunks())
    for partition in partitions(root):
        samples_dir = root / "samples" / partition.relative_to(root / "snapshots")
        for path in sorted(partition.glob("*.parquet")):
            samples = samples_dir / path.name
            pair = (path, samples) if samples.exists() else (path,)
            try:
                rows = pq.read_table(
                    path, columns=["snapshot_id", "taken_at", "generation", *TOTALS]
                )
            except FileNotFoundError:  # superseded and removed since listed
                continue
            except (OSError, pa.ArrowException) as e:
                found.append(Damage(path, f"cannot be read: {unreadable(e, path)}", pair))
                continue
            if not samples.exists():
                if path.exists():  # not removed meanwhile with its samples
                    found.append(Damage(samples, f"is missing ({rows.num_rows} snapshot(s))", pair))
                continue
            problem = check_samples(samples, rows, known)
            if problem:
                found.append(Damage(samples, problem, pair))
    return found


TOTALS = ["rows", "total_bytes", "total_calls"]


def check_samples(samples: Path, rows: pa.Table, known: pa.Array | None = None) -> str | None:
    """Return why a samples file disagrees with the snapshots ``rows`` that commit it (or
    cannot be read, or names call sites outside the ``known`` tag ids); None when every
    snapshot's rows and totals match."""
    try:
        table = pq.read_table(samples)
        found = samples_totals(table)
    except FileNotFoundError:  # superseded and removed since listed
        return None
    except (OSError, pa.ArrowException) as e:
        return f"cannot be read: {unreadable(e, samples)}"
    if known is not None:
        unknown = pc.sum(pc.invert(pc.is_in(table["tag_id"], value_set=known))).as_py() or 0
        if unknown:
            return f"{unknown:,} rows name call sites that no tags file has"
    for row in rows.to_pylist():
        key = (row["taken_at"], row["generation"])
        got = found.get((row["snapshot_id"], *key)) or found.get((None, *key)) or Totals(0, 0, 0)
        want = Totals(row["rows"], row["total_bytes"], row["total_calls"])
        if got != want:
            return (
                f"snapshot {row['snapshot_id']} reads {got.rows:,} rows, {got.bytes:,} bytes, "
                f"{got.calls:,} calls where its row says {want.rows:,}, {want.bytes:,}, "
                f"{want.calls:,}"
            )
    return None


def samples_totals(table: pa.Table) -> dict[tuple[str | None, object, int], Totals]:
    """Return the totals of a samples file's rows per (snapshot_id, taken_at, generation);
    snapshot_id is None where a compacted file leaves it out."""
    calls = table["calls"]
    if UNIT.name in table.column_names:  # NULL calls stand for bytes / unit_bytes
        unit = table[UNIT.name]
        derived = pc.divide(table["bytes"], pc.if_else(pc.is_null(unit), 1, unit))
        calls = pc.coalesce(calls, pc.cast(derived, pa.uint64(), safe=False))
    signed = pc.cast(calls, pa.int64(), safe=False)  # an underflowed counter counts negative
    keyed = pa.table(
        {
            "snapshot_id": table["snapshot_id"],
            "taken_at": table["taken_at"],
            "generation": table["generation"],
            "bytes": table["bytes"],
            "calls": signed,
        }
    )
    sums = keyed.group_by(["snapshot_id", "taken_at", "generation"], use_threads=False).aggregate(
        [([], "count_all"), ("bytes", "sum"), ("calls", "sum")]
    )
    return {
        (r["snapshot_id"], r["taken_at"], r["generation"]): Totals(
            r["count_all"], r["bytes_sum"] or 0, r["calls_sum"] or 0
        )
        for r in sums.to_pylist()
    }


def quarantine(root: Path, damage: list[Damage]) -> list[Path]:
    """Move the damaged files into ``<root>/quarantine/`` (same relative paths), a snapshots
    file before its samples; return where they went."""
    moved = []
    ensure_store(root)
    with writer_lock(root):
        for d in damage:
            for path in d.files:
                if not path.exists():
                    continue
                target = _free(root / QUARANTINE / path.relative_to(root))
                try:
                    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    os.replace(path, target)
                    fsync(path.parent)
                except OSError as e:
                    raise StoreError(f"cannot move {path} to {target}: {why(e)}") from e
                moved.append(target)
    return moved


def _free(path: Path) -> Path:
    """Return ``path``, or ``path.N`` for the first N not taken (a file quarantined again)."""
    n, candidate = 0, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate
