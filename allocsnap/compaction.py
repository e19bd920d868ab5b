"""Store housekeeping: compaction of closed hours and days, pruning, and crash recovery.

Compaction rewrites every file of a closed hour (then of a closed day) into one samples file
sorted by (tag_id, occurrence, taken_at) and one snapshots file, both one ``generation`` above
their inputs. The snapshots file is renamed into place last: from that instant the views read
the new generation, and the inputs are garbage, deleted at once or by ``recover`` after a crash.
Inputs are merged a tag range at a time, so memory stays bounded whatever the hour's size.
All of it runs under the store's writer lock (docs/recorder.md).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allocsnap import __version__, store
from allocsnap.errors import StoreError
from allocsnap.model import SCHEMA_VERSION

GRACE_S = 60.0  # replaced files stay this long for readers that already listed them
GRID = 64  # tag_id space cut into equal ranges; a compacted row group holds whole cells
BATCH = 48  # small inputs merged per temp file before the final merge
CHUNK_ROWS = 200_000  # rows merged in memory at once (about 12 MB)
_COMPACTED = re.compile(r"^(h(\d\d)|day)-g(\d+)\.parquet$")
_GENERATION = pa.field("generation", pa.int32(), nullable=False)
_TIME = pa.timestamp("us", tz="UTC")
_SORT = [("tag_id", "ascending"), ("occurrence", "ascending"), ("taken_at", "ascending")]
# Most call sites allocate one size (a slab cache, a page order): their bytes are calls times a
# constant. A compacted file stores that constant once per series (``unit_bytes``, dictionary-
# coded: ~0 B a row) and leaves ``calls`` NULL where calls = bytes / unit_bytes exactly, so a
# cell costs one counter, not two (docs/storage.md). bytes, which every analysis reads, stays
# whole; calls is rebuilt only where it is read. Coded rows have calls below UNIT_LIMIT and
# |bytes| below 2^53, so the quotient is exact in integer and in floating-point division.
UNIT_LIMIT = 2**31
EXACT_LIMIT = 2**53
_UNIT = pa.field("unit_bytes", pa.int64())
COMPACT_SAMPLE_SCHEMA = store.STORE_SAMPLE_SCHEMA.set(
    store.STORE_SAMPLE_SCHEMA.get_field_index("calls"), pa.field("calls", pa.uint64())
).append(_UNIT)
# bytes repeat from one snapshot to the next: plain values let zstd see the repeats (smaller
# than dictionary, delta or byte-stream-split encoding on series where 20% of values change).
# taken_at steps by the interval along each tag's series: delta encoding makes it ~0.002 B a
# row, where a dictionary of a day's 8,640 times cost 0.77. snapshot_id is NULL where taken_at
# names the snapshot (a dictionary of a day's ids cost 0.80 B a row; docs/recorder.md).
# Pages hold 100,000 rows (Arrow's default is 20,000 whatever data_page_size says): zstd
# compresses a page at a time and sees more repeats in a bigger one; the columns that hardly
# change then cost ~0. A million rows was 3% smaller still, but made reading one snapshot
# (diff) 10% slower. Level 9 codes the counters smallest (19: 1-9% larger); the keys
# tag_id and ordinal, whose dictionaries are random numbers, gain from 19.
_COMPACT_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": {
        name: 19 if name in ("tag_id", "ordinal") else 9 for name in COMPACT_SAMPLE_SCHEMA.names
    },
    "use_dictionary": [
        "snapshot_id",
        "tag_id",
        "occurrence",
        "ordinal",
        "accurate",
        "extras",
        "generation",
        "unit_bytes",
    ],
    "column_encoding": {"bytes": "PLAIN", "calls": "PLAIN", "taken_at": "DELTA_BINARY_PACKED"},
    "data_page_size": 8 << 20,
    "max_rows_per_page": 100_000,
    "write_statistics": ["tag_id", "taken_at", "snapshot_id"],
    "store_schema": False,  # Parquet's own types read back the same (the hot files do this)
}
# A compacted snapshots file: a few hundred rows of mostly distinct or empty values, where
# dictionaries and statistics cost more than the data (8.7 -> 4.5 KB for 200 rows).
_SNAPSHOTS_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 19,
    "use_dictionary": False,
    "write_statistics": ["taken_at", "snapshot_id"],
    "store_schema": False,
}


_PART_OPTIONS: dict[str, Any] = {
    "compression": "lz4",
    "use_dictionary": ["snapshot_id", "taken_at"],
    "write_statistics": ["tag_id"],
}


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


@dataclass(frozen=True)
class _File:
    """One snapshots file and what its rows say."""

    path: Path
    ids: tuple[str, ...]
    generations: tuple[int, ...]
    first: datetime
    last: datetime

    @property
    def generation(self) -> int:
        return max(self.generations)


def compact(
    root: Path, now: datetime | None = None, *, days: bool = True, grace_s: float = GRACE_S
) -> Housekeeping:
    """Compact every closed hour, then every closed day, of the store at ``root``.

    Inputs replaced more than ``grace_s`` ago are deleted now; younger ones at the next run,
    so that a reader which listed them a moment ago can still open them.
    """
    now = now or datetime.now(UTC)
    done = Housekeeping()
    store.ensure_store(root)
    for partition in _partitions(root):
        with store.writer_lock(root):
            _collect(root, partition, grace_s, done)
        day_closed = _partition_day(partition) < now.date()
        if not (days and day_closed):  # a closed day goes straight into its day file
            _compact_hours(root, partition, now, done)
        if days and day_closed:
            with store.writer_lock(root):
                files = _live(partition)
            if files and not _single_day_file(files):
                _compact_unit(root, partition, files, "day", done)
        if done.units and grace_s <= 0:
            with store.writer_lock(root):
                _collect(root, partition, grace_s, done)
    return done


def _compact_hours(root: Path, partition: Path, now: datetime, done: Housekeeping) -> None:
    with store.writer_lock(root):
        files = _live(partition)
    hours: dict[int, list[_File]] = {}
    for f in files:
        if not f.path.name.startswith("day-"):
            hours.setdefault(f.first.hour, []).append(f)
    for hour, members in sorted(hours.items()):
        start = members[0].first.replace(minute=0, second=0, microsecond=0)
        closed = start + timedelta(hours=1) <= now
        if closed and any(_is_hot(f) for f in members):
            _compact_unit(root, partition, members, f"h{hour:02d}", done)


def prune(root: Path, older_than: timedelta, now: datetime | None = None) -> Housekeeping:
    """Remove snapshots taken more than ``older_than`` before ``now``, a whole file at a time.

    A compacted file goes once its newest snapshot is old enough, so up to one hour (or one day)
    more than asked may be kept.
    """
    cutoff = (now or datetime.now(UTC)) - older_than
    done = Housekeeping()
    store.ensure_store(root)
    for partition in _partitions(root):
        with store.writer_lock(root):
            for f in _live(partition):
                if f.last < cutoff:
                    done.bytes_before += _remove_pair(root, partition, f.path.name)
                    done.snapshots += len(f.ids)
                    done.files_removed += 2
            _remove_empty(partition)
            _remove_empty(root / "samples" / partition.relative_to(root / "snapshots"))
    return done


def recover(root: Path, *, grace_s: float = GRACE_S) -> Housekeeping:
    """Remove what an interrupted writer left: temp files, superseded and orphaned files."""
    done = Housekeeping()
    store.ensure_store(root)
    with store.writer_lock(root):
        for tmp in root.rglob(".*.tmp"):  # no writer is running: we hold the writer lock
            tmp.unlink(missing_ok=True)
            done.temp_removed += 1
        for partition in _partitions(root):
            _collect(root, partition, grace_s, done)
    return done


def _collect(root: Path, partition: Path, grace_s: float, done: Housekeeping) -> None:
    """Delete replaced snapshots files and samples no snapshots file names, after a grace."""
    now = time.time()
    files = _read_snapshot_files(partition)
    live = live_generations((f.ids, f.generations) for f in files)
    # when the newest compaction here was committed: what it replaced is garbage since then
    commits = [f.path.stat().st_mtime for f in files if not _is_hot(f)] or [0.0]
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
    store.fsync_dir(partition)


def committed_units(root: Path) -> list[tuple[str, str]]:
    """Return the store's live compacted hours and days as (``host=H/date=D``, file name),
    oldest first: what ``allocsnap.upload`` copies (hot files are never uploaded)."""
    units = []
    for partition in _partitions(root):
        with store.writer_lock(root):
            files = _live(partition)
        folder = partition.relative_to(root / "snapshots").as_posix()
        units += [(folder, f.path.name) for f in files if not _is_hot(f)]
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


# -- units -------------------------------------------------------------------------------------


def _compact_unit(
    root: Path, partition: Path, members: list[_File], stem: str, done: Housekeeping
) -> None:
    """Merge ``members`` into one file pair and commit it, unless they changed meanwhile.

    The merge runs without the writer lock (a recorder writing the current hour is not held
    up for a merge's seconds; inputs are never rewritten, only superseded and deleted later).
    Under the lock, the members must still be live and the name free; the samples file is
    renamed into place, then the snapshots file is written: the commit point.
    """
    generation = max(f.generation for f in members) + 1
    name = f"{stem}-g{generation}.parquet"
    samples_dir = root / "samples" / partition.relative_to(root / "snapshots")
    inputs = [samples_dir / f.path.name for f in members]
    missing = [p for p in inputs if not p.is_file()]
    if missing:
        raise StoreError(f"cannot compact {partition}: {missing[0]} is missing; run recovery")
    before = sum(
        p.stat().st_size + f.path.stat().st_size for p, f in zip(inputs, members, strict=True)
    )
    parts = [pq.read_table(f.path, schema=store.STORE_SNAPSHOT_SCHEMA) for f in members]
    names = [_Names.of(part) for part in parts]
    rows = pa.concat_tables(parts)
    merged = samples_dir / f".{name}.{os.getpid()}.tmp"
    try:
        after = _merge_samples(inputs, merged, generation, names=names, shared=_shared_times(rows))
        rows = rows.set_column(
            rows.schema.get_field_index("generation"),
            _GENERATION,
            pa.array(np.full(rows.num_rows, generation, dtype=np.int32)),
        ).sort_by([("taken_at", "ascending"), ("snapshot_id", "ascending")])
        with store.writer_lock(root):
            if not _still_live(partition, members) or (partition / name).exists():
                done.notes.append(f"{partition / name}: its inputs changed meanwhile; skipped")
                return
            _upgrade_marker(root)
            os.replace(merged, samples_dir / name)
            store.fsync_dir(samples_dir)
            # The commit point: from this rename on, readers use the new generation. The inputs
            # are garbage now, deleted by _collect once readers that listed them are done.
            after += store.atomic_write(rows, partition / name, _SNAPSHOTS_OPTIONS)
    except OSError as e:
        raise StoreError(f"cannot write {samples_dir / name}: {store._why(e)}") from e
    finally:
        store.discard(merged)
    done.units += 1
    done.snapshots += rows.num_rows
    done.bytes_before += before
    done.bytes_after += after


def _upgrade_marker(root: Path) -> None:
    """Mark a store of schema 2 as schema 3 before its first file in the newer layout.

    An allocsnap of schema 2 reads a compacted file's NULL ``bytes`` as they are; from now on
    it refuses the store and says to upgrade. Files already there are read either way.
    """
    marker = root / store.MARKER
    content = json.loads(marker.read_text())
    if int(content.get("schema_version", 0)) >= SCHEMA_VERSION:
        return
    content.update(schema_version=SCHEMA_VERSION, upgraded_by=f"allocsnap {__version__}")
    store.atomic_write_bytes(json.dumps(content, indent=1).encode() + b"\n", marker)


def _still_live(partition: Path, members: list[_File]) -> bool:
    """Return True when every member file is still there, live, with the same rows."""
    files = {f.path.name: f for f in _live(partition)}
    return all(
        m.path.name in files and files[m.path.name].generations == m.generations for m in members
    )


@dataclass(frozen=True)
class _Names:
    """The snapshots of one samples file by time: the ids its NULL ``snapshot_id``s stand for.

    A compacted samples file leaves ``snapshot_id`` NULL where the row's ``taken_at`` is that
    of one snapshot only in the file; the file's snapshots rows give the id back.
    """

    times: np.ndarray[Any, Any]  # int64 microseconds, sorted
    ids: pa.Array

    @classmethod
    def of(cls, rows: pa.Table) -> _Names:
        rows = rows.sort_by([("taken_at", "ascending")])
        times = rows["taken_at"].cast(pa.int64()).to_numpy()
        return cls(times=times, ids=rows["snapshot_id"].combine_chunks())

    def fill(self, table: pa.Table) -> pa.Table:
        """Return ``table`` with every NULL ``snapshot_id`` named from its ``taken_at``."""
        ids = table["snapshot_id"]
        if ids.null_count == 0 or len(self.times) == 0:
            return table
        at = table["taken_at"].cast(pa.int64()).to_numpy()
        pos = np.minimum(np.searchsorted(self.times, at), len(self.times) - 1)
        named = pc.coalesce(ids, self.ids.take(pa.array(pos)))
        return table.set_column(0, store.STORE_SAMPLE_SCHEMA.field(0), named)


def _shared_times(rows: pa.Table) -> pa.Array:
    """Return the times that more than one of these snapshots rows has (kept named)."""
    times = np.sort(rows["taken_at"].cast(pa.int64()).to_numpy())
    return pa.array(np.unique(times[1:][times[1:] == times[:-1]])).cast(_TIME)


def _unnamed(chunk: pa.Table, shared: pa.Array) -> pa.Table:
    """Return ``chunk`` with ``snapshot_id`` NULL wherever ``taken_at`` alone names it."""
    if len(shared) == 0:
        ids = pa.nulls(chunk.num_rows, pa.string())
    else:
        keep = pc.is_in(chunk["taken_at"], value_set=shared)
        ids = pc.if_else(keep, chunk["snapshot_id"], pa.scalar(None, pa.string()))
    return chunk.set_column(0, store.STORE_SAMPLE_SCHEMA.field(0), ids)


def _merge_samples(
    inputs: list[Path],
    out: Path,
    generation: int,
    options: dict[str, Any] | None = None,
    *,
    names: list[_Names] | None = None,
    shared: pa.Array | None = None,
) -> int:
    """Merge samples files (each sorted by tag) into one sorted temp file; return its size.

    ``names`` (one per input) name the rows whose ``snapshot_id`` an input left NULL. The
    final file (``options`` None) leaves it NULL again except at the ``shared`` times, those
    of more than one snapshot; temp files keep every id.

    Many small inputs (an hour of hot files) are merged in batches into temp files first, so
    that each is read once rather than once per tag range.
    """
    final = options is None
    shared = shared if shared is not None else pa.array([], _TIME)
    if len(inputs) > BATCH:
        parts: list[Path] = []
        try:
            for i in range(0, len(inputs), BATCH):
                # named by level (inputs shrink 48-fold per level): a part is never its input
                level = f"{len(inputs)}-{i // BATCH}"
                part = out.parent / f".{out.name.lstrip('.')}.part{level}.tmp"
                batch = names[i : i + BATCH] if names else None
                _merge_samples(inputs[i : i + BATCH], part, generation, _PART_OPTIONS, names=batch)
                parts.append(part)
            # the parts carry every id
            return _merge_samples(parts, out, generation, options, shared=shared)
        finally:
            for part in parts:
                store.discard(part)
    edges = [-(2**63) + i * (2**64 // GRID) for i in range(GRID)] + [2**63]
    total = sum(pq.read_metadata(p).num_rows for p in inputs)
    per_pass = max(1, int(CHUNK_ROWS / max(total / GRID, 1)))
    try:
        settings = options or _COMPACT_OPTIONS
        schema = COMPACT_SAMPLE_SCHEMA if final else store.STORE_SAMPLE_SCHEMA
        with pq.ParquetWriter(out, schema, **settings) as writer:
            for start in range(0, GRID, per_pass):
                stop = min(start + per_pass, GRID)
                chunk = _read_range(inputs, edges[start], edges[stop], names)
                chunk = chunk.sort_by(_SORT).set_column(
                    chunk.schema.get_field_index("generation"),
                    _GENERATION,
                    pa.array(np.full(chunk.num_rows, generation, dtype=np.int32)),
                )
                if final:
                    chunk = with_units(_unnamed(chunk, shared))
                # One row group per pass, whole grid cells: a row group per cell cost 0.1 B per
                # row in footers and dictionaries on a small real series (docs/recorder.md).
                if chunk.num_rows:
                    writer.write_table(chunk, row_group_size=chunk.num_rows)
        store.fsync_file(out)
        size = out.stat().st_size
    except (OSError, pa.ArrowException) as e:
        store.discard(out)
        raise StoreError(f"cannot write {out}: {store._why(e)}") from e
    return size


def _read_range(
    inputs: list[Path], lo: int, hi: int, names: list[_Names] | None = None
) -> pa.Table:
    """Return the rows with lo <= tag_id < hi of every input (each sorted by tag_id)."""
    parts = []
    for i, path in enumerate(inputs):
        # opened per range: hundreds of open readers would keep hundreds of buffers alive
        with pq.ParquetFile(path) as reader:
            part = _read_part(reader, lo, hi)
        if part is not None:
            parts.append(names[i].fill(part) if names else part)
    if not parts:
        return store.STORE_SAMPLE_SCHEMA.empty_table()
    return pa.concat_tables(parts).combine_chunks()


def _read_part(reader: pq.ParquetFile, lo: int, hi: int) -> pa.Table | None:
    meta = reader.metadata
    column = meta.schema.names.index("tag_id")
    groups = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max or (stats.min < hi and stats.max >= lo):
            groups.append(i)
    if not groups:
        return None
    columns = list(store.STORE_SAMPLE_COLUMNS)
    if _UNIT.name in meta.schema.names:  # a compacted file: calls where unit_bytes is NULL
        columns.append(_UNIT.name)
    table = reader.read_row_groups(groups, columns=columns, use_threads=False)
    a, b = _bounds(table["tag_id"].to_numpy(), lo, hi)
    if b <= a:
        return None
    # take() copies the range, so the rest of the row group is freed at once
    return without_units(table.take(pa.array(np.arange(a, b)))).cast(store.STORE_SAMPLE_SCHEMA)


def write_compacted(table: pa.Table, path: Path, row_group_rows: int = 1 << 20) -> None:
    """Write samples sorted by (tag_id, occurrence, taken_at) in the compacted layout.

    For tools that build a store's files directly (bench/generate.py); no temp file, no fsync.
    """
    table = with_units(table.cast(store.STORE_SAMPLE_SCHEMA))
    pq.write_table(table, path, row_group_size=row_group_rows, **_COMPACT_OPTIONS)


def with_units(table: pa.Table) -> pa.Table:
    """Return samples sorted by (tag_id, occurrence, …) in the compacted layout.

    Each series (rows of one tag_id and occurrence) gets one ``unit_bytes``: bytes ÷ calls of
    its first row where that divides exactly and is not 0 (1 when no row does). A row whose
    calls are bytes ÷ unit_bytes (calls below UNIT_LIMIT, |bytes| below EXACT_LIMIT) keeps the
    unit and leaves ``calls`` NULL; any other row keeps its calls and a NULL unit.
    ``without_units`` and the ``samples`` view undo it.
    """
    n = table.num_rows
    if n == 0:
        return table.append_column(_UNIT, pa.nulls(0, pa.int64())).cast(COMPACT_SAMPLE_SCHEMA)
    values = table["bytes"].to_numpy()
    calls = table["calls"].to_numpy()
    tags = table["tag_id"].to_numpy()
    occurrence = table["occurrence"].to_numpy()
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    starts[1:] = (tags[1:] != tags[:-1]) | (occurrence[1:] != occurrence[:-1])
    series = np.cumsum(starts) - 1
    small = (calls < UNIT_LIMIT) & (np.abs(values) < EXACT_LIMIT)
    count = np.where(small, calls, 0).astype(np.int64)  # never wraps: below 2^31
    divides = (count > 0) & (values != 0) & (values % np.maximum(count, 1) == 0)
    units = np.ones(int(series[-1]) + 1, dtype=np.int64)
    rows = np.flatnonzero(divides)
    if len(rows):
        first = rows[np.r_[True, series[rows][1:] != series[rows][:-1]]]
        units[series[first]] = values[first] // count[first]
    unit = units[series]
    coded = small & (np.abs(unit) < UNIT_LIMIT) & (values == count * unit)
    calls_index = table.schema.get_field_index("calls")
    return table.set_column(
        calls_index, COMPACT_SAMPLE_SCHEMA.field("calls"), pa.array(calls, mask=coded)
    ).append_column(_UNIT, pa.array(unit, mask=~coded))


def without_units(table: pa.Table) -> pa.Table:
    """Return compacted samples with every ``calls`` value in place and no ``unit_bytes``."""
    if _UNIT.name not in table.column_names:
        return table
    unit = table[_UNIT.name]
    rest = table.drop_columns([_UNIT.name])
    if unit.null_count == len(unit):
        return rest
    coded = pc.is_valid(unit).to_numpy(zero_copy_only=False)
    values = table["bytes"].to_numpy()
    divisor = pc.fill_null(unit, 1).to_numpy()  # never 0 where coded
    calls = pc.fill_null(table["calls"], 0).to_numpy()
    full = pa.array(np.where(coded, (values // divisor).astype(np.uint64), calls), pa.uint64())
    return rest.set_column(rest.schema.get_field_index("calls"), "calls", full)


def _bounds(tags: np.ndarray[Any, Any], lo: int, hi: int) -> tuple[int, int]:
    a = int(np.searchsorted(tags, lo, side="left"))
    b = len(tags) if hi >= 2**63 else int(np.searchsorted(tags, hi, side="left"))
    return a, b


# -- scanning ----------------------------------------------------------------------------------


def _partitions(root: Path) -> list[Path]:
    return sorted(p for p in (root / "snapshots").glob("host=*/date=*") if p.is_dir())


def _partition_day(partition: Path) -> date:
    return datetime.strptime(partition.name.removeprefix("date="), "%Y-%m-%d").date()


def _read_snapshot_files(partition: Path) -> list[_File]:
    files = []
    for path in sorted(partition.glob("*.parquet")):
        try:
            t = pq.read_table(path, columns=["snapshot_id", "taken_at", "generation"])
        except (OSError, pa.ArrowException) as e:
            raise StoreError(f"cannot read {path}: {store._why(e)}") from e
        if t.num_rows == 0:
            continue
        times = t["taken_at"]
        files.append(
            _File(
                path=path,
                ids=tuple(t["snapshot_id"].to_pylist()),
                generations=tuple(t["generation"].to_pylist()),
                first=pc.min(times).as_py(),
                last=pc.max(times).as_py(),
            )
        )
    return files


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


def _live(partition: Path) -> list[_File]:
    """Return the snapshots files whose rows are the newest generation, oldest first."""
    files = _read_snapshot_files(partition)
    live = live_generations((f.ids, f.generations) for f in files)
    kept = [
        f for f in files if any(live[i] == g for i, g in zip(f.ids, f.generations, strict=True))
    ]
    return sorted(kept, key=lambda f: (f.first, f.path.name))


def _is_hot(f: _File) -> bool:
    return _COMPACTED.match(f.path.name) is None


def _single_day_file(files: list[_File]) -> bool:
    return len(files) == 1 and files[0].path.name.startswith("day-")


def _remove_pair(root: Path, partition: Path, name: str) -> int:
    samples = root / "samples" / partition.relative_to(root / "snapshots") / name
    size = 0
    for path in (partition / name, samples):  # the snapshots row first: never a partial one
        try:
            size += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        store.fsync_dir(path.parent)
    return size


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty, or already gone
        pass


def start_housekeeping(root: Path, retain: timedelta | None) -> subprocess.Popen[str]:
    """Start compacting (and pruning) in a child process; ``housekeeping_result`` reads it.

    Merging costs some 100 MB that the allocator does not hand back; in a child, the
    long-running recorder's own memory stays flat, and the recorder goes on while it runs.
    """
    command = [sys.executable, "-m", "allocsnap.compaction", str(root)]
    if retain is not None:
        command.append(str(retain.total_seconds()))
    env = {"ARROW_DEFAULT_MEMORY_POOL": "system", **os.environ}
    try:
        return subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=env,
        )
    except OSError as e:
        raise StoreError(f"cannot start compaction: {store._why(e)}") from e


def housekeeping_result(child: subprocess.Popen[str]) -> tuple[Housekeeping, int]:
    """Wait for a child from ``start_housekeeping``; return what it did and how many it pruned."""
    out, err = child.communicate()
    if child.returncode != 0:
        lines = err.strip().splitlines() or [f"exit status {child.returncode}"]
        raise StoreError(lines[-1].removeprefix("Error: "))
    result = json.loads(out)
    return Housekeeping(**result["compacted"]), int(result["pruned"])


def housekeeping_in_child(root: Path, retain: timedelta | None) -> tuple[Housekeeping, int]:
    """Compact (and prune) in a child process and wait for it."""
    return housekeeping_result(start_housekeeping(root, retain))


def _main(argv: list[str]) -> int:
    root = Path(argv[0])
    try:
        done = compact(root)
        pruned = prune(root, timedelta(seconds=float(argv[1]))) if len(argv) > 1 else None
    except StoreError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"compacted": asdict(done), "pruned": pruned.snapshots if pruned else 0}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
