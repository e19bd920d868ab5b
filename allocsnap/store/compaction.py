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
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allocsnap import __version__
from allocsnap.errors import REPAIR, StoreError
from allocsnap.model import SCHEMA_VERSION
from allocsnap.store import child
from allocsnap.store.durable import (
    atomic_write,
    atomic_write_bytes,
    create_file,
    discard,
    replace,
    temp_path,
    why,
)
from allocsnap.store.generations import (
    SnapshotsFile,
    is_hot,
    live,
    partition_day,
    partitions,
    single_day_file,
    unreadable,
)
from allocsnap.store.housekeeping import GRACE_S, Housekeeping, collect, prune
from allocsnap.store.layout import (
    MARKER,
    STORE_SAMPLE_COLUMNS,
    STORE_SAMPLE_SCHEMA,
    STORE_SNAPSHOT_SCHEMA,
    ensure_store,
    read_marker,
)
from allocsnap.store.locks import writer_lock
from allocsnap.store.unit_coding import COMPACT_SAMPLE_SCHEMA, UNIT, with_units, without_units

GRID = 64  # tag_id space cut into equal ranges; a compacted row group holds whole cells
BATCH = 48  # small inputs merged per temp file before the final merge
CHUNK_ROWS = 200_000  # rows merged in memory at once: bounds compaction's memory
_GENERATION = pa.field("generation", pa.int32(), nullable=False)
_TIME = pa.timestamp("us", tz="UTC")
_SORT = [("tag_id", "ascending"), ("occurrence", "ascending"), ("taken_at", "ascending")]
# bytes repeat from one snapshot to the next: plain values let zstd see the repeats (smaller
# than dictionary, delta or byte-stream-split encoding). taken_at steps by the interval along
# each tag's series: delta encoding codes it in almost nothing, where a dictionary of a day's
# times does not. snapshot_id is NULL where taken_at names the snapshot. Pages are large
# because zstd compresses a page at a time and sees more repeats in a bigger one; larger still
# made reading one snapshot (diff) slower. The counters code smallest at level 9; the keys
# tag_id and ordinal, whose dictionaries are random numbers, gain from 19. The figures behind
# each choice are in docs/performance.md and docs/storage.md (bench/size.py).
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
# dictionaries and statistics cost more than the data.
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


def compact(
    root: Path, now: datetime | None = None, *, days: bool = True, grace_s: float = GRACE_S
) -> Housekeeping:
    """Compact every closed hour, then every closed day, of the store at ``root``.

    Inputs replaced more than ``grace_s`` ago are deleted now; younger ones at the next run,
    so that a reader which listed them a moment ago can still open them.
    """
    now = now or datetime.now(UTC)
    done = Housekeeping()
    ensure_store(root)
    for partition in partitions(root):
        with writer_lock(root):
            if not partition.is_dir():  # pruned since listed: nothing to do
                continue
            collect(root, partition, grace_s, done)
        day_closed = partition_day(partition) < now.date()
        if not (days and day_closed):  # a closed day goes straight into its day file
            _compact_hours(root, partition, now, done)
        if days and day_closed:
            with writer_lock(root):
                files = live(partition)
            if files and not single_day_file(files):
                _compact_unit(root, partition, files, "day", done)
        if done.units and grace_s <= 0:
            with writer_lock(root):
                if partition.is_dir():
                    collect(root, partition, grace_s, done)
    return done


def _compact_hours(root: Path, partition: Path, now: datetime, done: Housekeeping) -> None:
    with writer_lock(root):
        files = live(partition)
    hours: dict[int, list[SnapshotsFile]] = {}
    for f in files:
        if not f.path.name.startswith("day-"):
            hours.setdefault(f.first.hour, []).append(f)
    for hour, members in sorted(hours.items()):
        start = members[0].first.replace(minute=0, second=0, microsecond=0)
        closed = start + timedelta(hours=1) <= now
        if closed and any(is_hot(f) for f in members):
            _compact_unit(root, partition, members, f"h{hour:02d}", done)


# -- units -------------------------------------------------------------------------------------


def _compact_unit(
    root: Path, partition: Path, members: list[SnapshotsFile], stem: str, done: Housekeeping
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
    merged = temp_path(samples_dir / name)
    try:
        try:
            before, rows, after = _merge_unit(members, inputs, merged, generation, root)
        except (StoreError, OSError) as e:
            # Pruned meanwhile (or compacted by another run): nothing to do. Otherwise an input
            # of live snapshots is missing or damaged: say which, and how to set it aside.
            with writer_lock(root):
                if not _still_live(partition, members):
                    done.notes.append(f"{partition / name}: its inputs went away; skipped")
                    return
            if isinstance(e, StoreError):
                raise
            raise StoreError(f"cannot compact {partition}: {why(e)}") from e
        with writer_lock(root):
            if not _still_live(partition, members) or (partition / name).exists():
                done.notes.append(f"{partition / name}: its inputs changed meanwhile; skipped")
                return
            _upgrade_marker(root)
            replace(merged, samples_dir / name, root)
            # The commit point: from this rename on, readers use the new generation. The inputs
            # are garbage now, deleted by collect once readers that listed them are done.
            after += atomic_write(rows, partition / name, _SNAPSHOTS_OPTIONS, root=root)
    except OSError as e:
        raise StoreError(f"cannot write {samples_dir / name}: {why(e)}") from e
    finally:
        discard(merged)
    done.units += 1
    done.snapshots += rows.num_rows
    done.bytes_before += before
    done.bytes_after += after


def _merge_unit(
    members: list[SnapshotsFile], inputs: list[Path], merged: Path, generation: int, root: Path
) -> tuple[int, pa.Table, int]:
    """Merge the members' samples into ``merged``; return the inputs' size, the members'
    snapshots rows at ``generation``, and the merged file's size."""
    missing = [p for p in inputs if not p.is_file()]
    if missing:
        raise StoreError(f"{missing[0]} is missing: {REPAIR}")
    before = sum(
        p.stat().st_size + f.path.stat().st_size for p, f in zip(inputs, members, strict=True)
    )
    parts = []
    for f in members:
        try:
            parts.append(pq.read_table(f.path, schema=STORE_SNAPSHOT_SCHEMA))
        except pa.ArrowException as e:
            raise StoreError(f"cannot read {f.path}: {unreadable(e, f.path)}; {REPAIR}") from e
    names = [_Names.of(part) for part in parts]
    rows = pa.concat_tables(parts)
    after = _merge_samples(
        inputs, merged, generation, names=names, shared=_shared_times(rows), root=root
    )
    rows = rows.set_column(
        rows.schema.get_field_index("generation"),
        _GENERATION,
        pa.array(np.full(rows.num_rows, generation, dtype=np.int32)),
    ).sort_by([("taken_at", "ascending"), ("snapshot_id", "ascending")])
    return before, rows, after


def _upgrade_marker(root: Path) -> None:
    """Mark a store of schema 2 as schema 3 before its first file in the newer layout.

    An allocsnap of schema 2 reads a compacted file's NULL ``bytes`` as they are; from now on
    it refuses the store and says to upgrade. Files already there are read either way.
    """
    marker = root / MARKER
    content = json.loads(read_marker(root))
    if int(content.get("schema_version", 0)) >= SCHEMA_VERSION:
        return
    content.update(schema_version=SCHEMA_VERSION, upgraded_by=f"allocsnap {__version__}")
    atomic_write_bytes(json.dumps(content, indent=1).encode() + b"\n", marker, root=root)


def _still_live(partition: Path, members: list[SnapshotsFile]) -> bool:
    """Return True when every member file is still there, live, with the same rows."""
    files = {f.path.name: f for f in live(partition)}
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
        return table.set_column(0, STORE_SAMPLE_SCHEMA.field(0), named)


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
    return chunk.set_column(0, STORE_SAMPLE_SCHEMA.field(0), ids)


def _merge_samples(
    inputs: list[Path],
    out: Path,
    generation: int,
    options: dict[str, Any] | None = None,
    *,
    names: list[_Names] | None = None,
    shared: pa.Array | None = None,
    root: Path | None = None,
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
                # named by level (inputs shrink 48-fold per level): a part is never its input;
                # a temp name of this process, so that recovery knows whose it is
                level = f"{len(inputs)}-{i // BATCH}"
                part = temp_path(out.parent / f"{out.name.lstrip('.')}.part{level}")
                batch = names[i : i + BATCH] if names else None
                _merge_samples(
                    inputs[i : i + BATCH], part, generation, _PART_OPTIONS, names=batch, root=root
                )
                parts.append(part)
            # the parts carry every id
            return _merge_samples(parts, out, generation, options, shared=shared, root=root)
        finally:
            for part in parts:
                discard(part)
    edges = [-(2**63) + i * (2**64 // GRID) for i in range(GRID)] + [2**63]
    total = sum(_input_metadata(p).num_rows for p in inputs)
    per_pass = max(1, int(CHUNK_ROWS / max(total / GRID, 1)))
    try:
        settings = options or _COMPACT_OPTIONS
        schema = COMPACT_SAMPLE_SCHEMA if final else STORE_SAMPLE_SCHEMA
        # created O_EXCL and never through a symlink, in folders checked from ``root`` down
        with create_file(out, root) as f:
            with pq.ParquetWriter(f, schema, **settings) as writer:
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
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
    except (OSError, pa.ArrowException) as e:
        discard(out)
        raise StoreError(f"cannot write {out}: {why(e)}") from e
    return size


def _read_range(
    inputs: list[Path], lo: int, hi: int, names: list[_Names] | None = None
) -> pa.Table:
    """Return the rows with lo <= tag_id < hi of every input (each sorted by tag_id)."""
    parts = []
    for i, path in enumerate(inputs):
        # opened per range: hundreds of open readers would keep hundreds of buffers alive
        try:
            with pq.ParquetFile(path) as reader:
                part = _read_part(reader, lo, hi)
        except pa.ArrowException as e:
            raise StoreError(f"cannot read {path}: {unreadable(e, path)}; {REPAIR}") from e
        if part is not None:
            parts.append(names[i].fill(part) if names else part)
    if not parts:
        return STORE_SAMPLE_SCHEMA.empty_table()
    return pa.concat_tables(parts).combine_chunks()


def _input_metadata(path: Path) -> pq.FileMetaData:
    try:
        return pq.read_metadata(path)
    except pa.ArrowException as e:
        raise StoreError(f"cannot read {path}: {unreadable(e, path)}; {REPAIR}") from e


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
    columns = list(STORE_SAMPLE_COLUMNS)
    if UNIT.name in meta.schema.names:  # a compacted file: calls where unit_bytes is NULL
        columns.append(UNIT.name)
    table = reader.read_row_groups(groups, columns=columns, use_threads=False)
    a, b = _bounds(table["tag_id"].to_numpy(), lo, hi)
    if b <= a:
        return None
    # take() copies the range, so the rest of the row group is freed at once
    return without_units(table.take(pa.array(np.arange(a, b)))).cast(STORE_SAMPLE_SCHEMA)


def write_compacted(table: pa.Table, path: Path, row_group_rows: int = 1 << 20) -> None:
    """Write samples sorted by (tag_id, occurrence, taken_at) in the compacted layout, with
    ``snapshot_id`` NULL where ``taken_at`` alone names the snapshot, as compaction leaves it.

    For tools that build a store's files directly (bench/generate.py); no temp file, no fsync.
    """
    table = with_units(table.cast(STORE_SAMPLE_SCHEMA))
    snapshots = table.group_by(["snapshot_id", "taken_at"]).aggregate([])
    table = _unnamed(table, _shared_times(snapshots))
    pq.write_table(table, path, row_group_size=row_group_rows, **_COMPACT_OPTIONS)


def _bounds(tags: np.ndarray[Any, Any], lo: int, hi: int) -> tuple[int, int]:
    a = int(np.searchsorted(tags, lo, side="left"))
    b = len(tags) if hi >= 2**63 else int(np.searchsorted(tags, hi, side="left"))
    return a, b


def start_housekeeping(root: Path, retain: timedelta | None) -> subprocess.Popen[str]:
    """Start compacting (and pruning) in a child process; ``housekeeping_result`` reads it.

    Merging costs memory that the allocator does not hand back; in a child, the long-running
    recorder's own memory stays flat, and the recorder goes on while it runs.
    """
    args = [str(root)] + ([] if retain is None else [str(retain.total_seconds())])
    return child.start("allocsnap.store.compaction", args, "compaction")


def housekeeping_result(process: subprocess.Popen[str]) -> tuple[Housekeeping, int]:
    """Wait for a child from ``start_housekeeping``; return what it did and how many it pruned."""
    answer = child.result(process, "compaction")
    return Housekeeping(**answer["compacted"]), int(answer["pruned"])


def housekeeping_in_child(root: Path, retain: timedelta | None) -> tuple[Housekeeping, int]:
    """Compact (and prune) in a child process and wait for it."""
    return housekeeping_result(start_housekeeping(root, retain))


def _housekeeping(argv: list[str]) -> dict[str, object]:
    root = Path(argv[0])
    done = compact(root)
    pruned = prune(root, timedelta(seconds=float(argv[1]))) if len(argv) > 1 else None
    return {"compacted": asdict(done), "pruned": pruned.snapshots if pruned else 0}


if __name__ == "__main__":
    child.main(_housekeeping)
