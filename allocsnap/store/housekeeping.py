"""Store housekeeping: pruning old snapshots, recovery after a crash, and deleting superseded
files once the readers that could still see them are done (docs/recorder.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from allocsnap.store.durable import fsync
from allocsnap.store.generations import (
    is_hot,
    is_superseded,
    live,
    live_generations,
    partitions,
    read_snapshot_files,
)
from allocsnap.store.layout import ensure_store
from allocsnap.store.locks import writer_lock

GRACE_S = 60.0  # replaced files stay this long for readers that already listed them


@dataclass
class Housekeeping:
    """What compaction, pruning or recovery did."""

    units: int = 0  # compacted files written
    snapshots: int = 0  # snapshots moved into them, or pruned
    files_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    temp_removed: int = 0
    notes: list[str] = field(default_factory=list)
    kept: int = 0  # snapshots a prune left
    gone: list[tuple[str, int, datetime]] = field(default_factory=list)  # pruned: file, n, newest


def prune(
    root: Path, older_than: timedelta, now: datetime | None = None, *, dry_run: bool = False
) -> Housekeeping:
    """Remove snapshots taken more than ``older_than`` before ``now`` (the wall clock), a
    whole file at a time; with ``dry_run``, only say what would go (``gone``, ``kept``).

    A compacted file goes once its newest snapshot is old enough, so up to one hour (or one day)
    more than asked may be kept.
    """
    cutoff = (now or datetime.now(UTC)) - older_than
    done = Housekeeping()
    ensure_store(root)
    for partition in partitions(root):
        with writer_lock(root):
            for f in live(partition):
                if f.last >= cutoff:
                    done.kept += len(f.ids)
                    continue
                where = f"{partition.relative_to(root / 'snapshots')}/{f.path.name}"
                done.gone.append((where, len(f.ids), f.last))
                done.snapshots += len(f.ids)
                if not dry_run:
                    done.bytes_before += remove_pair(root, partition, f.path.name)
                    done.files_removed += 2
            if not dry_run:
                remove_empty(partition)
                remove_empty(root / "samples" / partition.relative_to(root / "snapshots"))
    return done


def recover(root: Path, *, grace_s: float = GRACE_S) -> Housekeeping:
    """Remove what an interrupted writer left: temp files, superseded and orphaned files."""
    done = Housekeeping()
    ensure_store(root)
    with writer_lock(root):
        for tmp in root.rglob(".*.tmp"):  # no writer is running: we hold the writer lock
            tmp.unlink(missing_ok=True)
            done.temp_removed += 1
        for partition in partitions(root):
            collect(root, partition, grace_s, done)
    return done


def collect(root: Path, partition: Path, grace_s: float, done: Housekeeping) -> None:
    """Delete replaced snapshots files and samples no snapshots file names, after a grace."""
    now = time.time()
    files = read_snapshot_files(partition)
    live = live_generations((f.ids, f.generations) for f in files)
    # when the newest compaction here was committed: what it replaced is garbage since then
    commits = [f.path.stat().st_mtime for f in files if not is_hot(f)] or [0.0]
    old_enough = now - max(commits) >= grace_s
    kept = set()
    for f in files:
        superseded = is_superseded(f.ids, f.generations, live)
        if superseded and old_enough:
            f.path.unlink()
            done.files_removed += 1
        else:
            kept.add(f.path.name)
    samples_dir = root / "samples" / partition.relative_to(root / "snapshots")
    for path in samples_dir.glob("*.parquet"):
        # no committed snapshots row points at these samples (a crashed write, a replaced file)
        if path.name not in kept and now - path.stat().st_mtime >= grace_s:
            path.unlink()
            done.files_removed += 1
    fsync(partition)


def remove_pair(root: Path, partition: Path, name: str) -> int:
    samples = root / "samples" / partition.relative_to(root / "snapshots") / name
    size = 0
    for path in (partition / name, samples):  # the snapshots row first: never a partial one
        try:
            size += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        fsync(path.parent)
    return size


def remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty, or already gone
        pass
