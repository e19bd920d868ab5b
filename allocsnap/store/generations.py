"""Which files of a store are live: a snapshot's newest generation is the one readers see, and
a snapshots file whose every row a newer generation replaced is garbage (docs/recorder.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allocsnap.errors import REPAIR, StoreError
from allocsnap.store.durable import why
from allocsnap.store.locks import writer_lock

_COMPACTED = re.compile(r"^(h(\d\d)|day)-g(\d+)\.parquet$")


@dataclass(frozen=True)
class SnapshotsFile:
    """One snapshots file and what its rows say."""

    path: Path
    ids: tuple[str, ...]
    generations: tuple[int, ...]
    first: datetime
    last: datetime

    @property
    def generation(self) -> int:
        return max(self.generations)


def committed_units(root: Path) -> list[tuple[str, str]]:
    """Return the store's live compacted hours and days as (``host=H/date=D``, file name),
    oldest first: what ``allocsnap.store.upload`` copies (hot files are never uploaded)."""
    units = []
    for partition in partitions(root):
        with writer_lock(root):
            files = live(partition)
        folder = partition.relative_to(root / "snapshots").as_posix()
        units += [(folder, f.path.name) for f in files if not is_hot(f)]
    return units


def store_size(root: Path) -> int:
    """Return the bytes of all files in the store."""
    total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                continue
    return total


def partitions(root: Path) -> list[Path]:
    return sorted(p for p in (root / "snapshots").glob("host=*/date=*") if p.is_dir())


def partition_day(partition: Path) -> date:
    return datetime.strptime(partition.name.removeprefix("date="), "%Y-%m-%d").date()


def read_snapshot_files(partition: Path, damaged: list[Path] | None = None) -> list[SnapshotsFile]:
    """Return what the partition's snapshots files say. An unreadable one raises, naming it;
    or, when a ``damaged`` list is given, is added to it and left out."""
    files = []
    for path in sorted(partition.glob("*.parquet")):
        try:
            t = pq.read_table(path, columns=["snapshot_id", "taken_at", "generation"])
        except (OSError, pa.ArrowException) as e:
            if damaged is None:
                raise StoreError(f"cannot read {path}: {unreadable(e, path)}; {REPAIR}") from e
            damaged.append(path)
            continue
        if t.num_rows == 0:
            continue
        times = t["taken_at"]
        files.append(
            SnapshotsFile(
                path=path,
                ids=tuple(t["snapshot_id"].to_pylist()),
                generations=tuple(t["generation"].to_pylist()),
                first=pc.min(times).as_py(),
                last=pc.max(times).as_py(),
            )
        )
    return files


def unreadable(e: BaseException, path: Path) -> str:
    """Return why ``path`` cannot be read, without the path that pyarrow's message repeats."""
    text, name = why(e), str(path)
    if name in text:
        before, after = text.split(name, 1)
        text = after.lstrip("'\": ") or before.rstrip("'\" :")
    return text.rstrip(".")


def live_generations(files: Iterable[tuple[Sequence[str], Sequence[int]]]) -> dict[str, int]:
    """Return the newest generation of each snapshot id among snapshots files, each given as
    its rows' (ids, generations): the generation whose rows readers see."""
    live: dict[str, int] = {}
    for ids, generations in files:
        for i, g in zip(ids, generations, strict=True):
            live[i] = max(live.get(i, -1), g)
    return live


def is_superseded(ids: Sequence[str], generations: Sequence[int], live: dict[str, int]) -> bool:
    """Return whether a newer generation replaced every row of a snapshots file: it is garbage
    once readers that started before that commit are done (the grace), locally or remotely."""
    return all(live[i] > g for i, g in zip(ids, generations, strict=True))


def live(partition: Path) -> list[SnapshotsFile]:
    """Return the snapshots files whose rows are the newest generation, oldest first."""
    files = read_snapshot_files(partition)
    live = live_generations((f.ids, f.generations) for f in files)
    kept = [
        f for f in files if any(live[i] == g for i, g in zip(f.ids, f.generations, strict=True))
    ]
    return sorted(kept, key=lambda f: (f.first, f.path.name))


def is_hot(f: SnapshotsFile) -> bool:
    return _COMPACTED.match(f.path.name) is None


def single_day_file(files: list[SnapshotsFile]) -> bool:
    return len(files) == 1 and files[0].path.name.startswith("day-")
