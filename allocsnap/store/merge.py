"""Merge stores copied from other hosts into one store: committed data only, file by file.

A source is a store directory copied as it was (``rsync -a host:/var/lib/allocsnap/ …``). What
is copied is what a reader of the source sees: each snapshot's rows of its newest generation,
with the samples file of the same name (the writer's and compaction's pairing). Temp files,
superseded generations and samples that no snapshots row commits are left out.

Every file lands via temp + fsync + rename; tags first, then per file pair the samples and, last,
the snapshots file that commits them, so a merge killed at any instant leaves the destination
consistent and a rerun completes it. A snapshot the destination already holds (same host and
id, same row) is skipped, which makes merging twice a no-op; the same id with a different row is
a conflict, found before anything is written. A source file whose snapshots are only partly new
(the source compacted an hour after an earlier merge) is rewritten with the new ones only, so no
destination file ever holds rows that another file supersedes (docs/storage.md, "Merging").
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allocsnap.errors import MergeConflict, StoreError, StoreNotFound, UsageError
from allocsnap.store import durable, generations, layout, locks

_WRITE_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_statistics": True}
_BATCH_ROWS = 200_000  # rows of a rewritten samples file held in memory at once


@dataclass(frozen=True)
class Progress:
    """Where a merge is: files and bytes written so far out of those planned."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


@dataclass
class HostSummary:
    """What a merge brought (or would bring) for one host."""

    host: str
    snapshots_new: int = 0
    snapshots_present: int = 0
    files: int = 0  # data files written: samples and snapshots
    bytes: int = 0


@dataclass
class MergeSummary:
    """What a merge did, or with ``dry_run`` would do."""

    sources: int
    dest: Path
    dry_run: bool
    hosts: dict[str, HostSummary] = field(default_factory=dict)
    tag_files: int = 0
    tag_bytes: int = 0
    rewritten: int = 0  # source files whose new snapshots were written to a file of their own
    left_out: dict[str, int] = field(default_factory=dict)  # what was not copied, and why
    warnings: list[str] = field(default_factory=list)

    @property
    def snapshots_new(self) -> int:
        return sum(h.snapshots_new for h in self.hosts.values())

    @property
    def snapshots_present(self) -> int:
        return sum(h.snapshots_present for h in self.hosts.values())

    @property
    def files(self) -> int:
        return self.tag_files + sum(h.files for h in self.hosts.values())

    @property
    def bytes(self) -> int:
        return self.tag_bytes + sum(h.bytes for h in self.hosts.values())

    def host(self, name: str) -> HostSummary:
        return self.hosts.setdefault(name, HostSummary(name))

    def leave_out(self, why: str, count: int = 1) -> None:
        if count:
            self.left_out[why] = self.left_out.get(why, 0) + count


@dataclass(frozen=True)
class _Copy:
    """Copy a source file as it is (tags, or a samples + snapshots pair)."""

    sources: tuple[Path, ...]
    targets: tuple[Path, ...]
    host: str | None
    size: int


@dataclass(frozen=True)
class _Rewrite:
    """Write the rows of some snapshots of a source file pair to a new pair."""

    samples: Path
    rows: pa.Table  # the snapshots rows to keep, generation included
    target_samples: Path
    target_snapshots: Path
    host: str
    size: int  # of the source samples file: an upper bound, for progress


_Action = _Copy | _Rewrite


class _Partition:
    """The destination's committed snapshots in one partition (and those planned so far), and
    the file names in use there. Rows are read as Python values only when one must be compared
    with a source's: a merge of what is already there compares files, not rows."""

    def __init__(self, folder: Path) -> None:
        self.names: set[str] = set()
        self.where: dict[str, tuple[int, Path]] = {}  # snapshot id -> (generation, its file)
        self._contents: dict[Path, dict[str, dict[str, Any]]] = {}
        for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
            self.names.add(path.name)
            ids = _read_rows(path, ["snapshot_id", "generation"])
            for sid, generation in zip(
                ids["snapshot_id"].to_pylist(), ids["generation"].to_pylist(), strict=True
            ):
                if sid not in self.where or generation > self.where[sid][0]:
                    self.where[sid] = (generation, path)

    def content(self, sid: str) -> dict[str, Any]:
        """Return the row of a snapshot held or planned, without its generation."""
        path = self.where[sid][1]
        if path not in self._contents:
            rows = _read_rows(path).to_pylist()
            self._contents[path] = {row["snapshot_id"]: _content(row) for row in rows}
        return self._contents[path][sid]

    def add(self, sids: list[str], generations: list[int], path: Path) -> None:
        """Record snapshots planned from a source file (whose rows ``content`` then reads)."""
        for sid, generation in zip(sids, generations, strict=True):
            self.where[sid] = (generation, path)


def merge(
    sources: Sequence[Path],
    dest: Path,
    *,
    dry_run: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> MergeSummary:
    """Bring the committed snapshots of ``sources`` (store directories) into the store ``dest``.

    Raises ``StoreNotFound`` for a source that is not a store, ``StoreError`` for one written by
    a newer allocsnap, and ``MergeConflict`` before writing anything when a snapshot differs.
    """
    if not sources:
        raise UsageError("name at least one store to merge")
    for src in sources:
        _check_source(src, dest)
    summary = MergeSummary(sources=len(sources), dest=dest, dry_run=dry_run)
    if dry_run:
        if (dest / layout.MARKER).is_file() or (dest.is_dir() and any(dest.iterdir())):
            layout.check_store(dest)
        return _plan_and_apply(sources, dest, summary, None, apply=False)
    layout.ensure_store(dest)
    with locks.writer_lock(dest):
        return _plan_and_apply(sources, dest, summary, progress, apply=True)


def _plan_and_apply(
    sources: Sequence[Path],
    dest: Path,
    summary: MergeSummary,
    progress: Callable[[Progress], None] | None,
    *,
    apply: bool,
) -> MergeSummary:
    # every conflict is found before the first write
    actions = _plan(sources, dest, summary)
    if apply:
        _apply(actions, progress, dest)
    return summary


def _check_source(src: Path, dest: Path) -> None:
    if not (src / layout.MARKER).is_file():
        what = "does not exist" if not src.exists() else f"has no {layout.MARKER}"
        raise StoreNotFound(
            f"{src} is not an allocsnap store ({what}): name the folder copied from the host, "
            f"the one that holds {layout.MARKER}"
        )
    layout.check_store(src)
    # root copies what it reads into a store of its own: never through a link in the source
    durable.check_tree(src, owners=False)
    if src.resolve() == dest.resolve():
        raise UsageError(f"{src} is the destination store itself; name another --store")


# -- planning ----------------------------------------------------------------------------------


def _plan(sources: Sequence[Path], dest: Path, summary: MergeSummary) -> list[_Action]:
    """Return what to write, tags first; count everything in ``summary``."""
    tags: list[_Action] = []
    data: list[_Action] = []
    tag_names = {p.name: p for p in (dest / "tags").glob("*.parquet")}
    partitions: dict[str, _Partition] = {}
    for src in sources:
        summary.leave_out("temp files", sum(1 for _ in src.rglob(".*.tmp")))
        for path in sorted((src / "tags").glob("*.parquet")):
            action = _plan_tags(path, dest / "tags", tag_names)
            if action is not None:
                tags.append(action)
                summary.tag_files += 1
                summary.tag_bytes += action.size
        snapshots_root = src / "snapshots"
        for folder in sorted(snapshots_root.glob("host=*/date=*")):
            if not folder.is_dir():
                continue
            rel = folder.relative_to(snapshots_root).as_posix()
            if rel not in partitions:
                partitions[rel] = _Partition(dest / "snapshots" / rel)
            data += _plan_partition(src, rel, dest, partitions[rel], summary)
        _count_orphans(src, summary)
    return tags + data


def _plan_tags(path: Path, tags_dir: Path, taken: dict[str, Path]) -> _Copy | None:
    """Copy a tags file unless the destination has it (or it is planned already); tag files are
    content-addressed, so a name in use with other bytes (a hand-made store) lands under a name
    of its content. ``taken`` maps each name to the file that holds or will hold its bytes."""
    name = path.name
    if name in taken and filecmp.cmp(path, taken[name], shallow=False):
        return None
    if name in taken:
        digest = hashlib.blake2b(path.read_bytes(), digest_size=8).hexdigest()
        name = f"{path.stem}-{digest}.parquet"
        if name in taken:
            return None
    taken[name] = path
    return _Copy((path,), (tags_dir / name,), None, path.stat().st_size)


def _plan_partition(
    src: Path, rel: str, dest: Path, known: _Partition, summary: MergeSummary
) -> list[_Action]:
    host = rel.split("/", 1)[0].removeprefix("host=")
    paths = sorted((src / "snapshots" / rel).glob("*.parquet"))
    files = [(path, _read_rows(path, ["snapshot_id", "generation"])) for path in paths]
    newest = generations.live_generations(
        (ids["snapshot_id"].to_pylist(), ids["generation"].to_pylist()) for _path, ids in files
    )
    actions: list[_Action] = []
    for path, ids in files:
        if ids.num_rows == 0:
            continue
        sids = ids["snapshot_id"].to_pylist()
        live = [g == newest[i] for i, g in zip(sids, ids["generation"].to_pylist(), strict=True)]
        if not any(live):
            summary.leave_out("superseded snapshots files")
            continue
        samples = src / "samples" / rel / path.name
        if not samples.is_file():
            summary.leave_out("snapshots files without their samples file")
            summary.warnings.append(
                f"{path} has no samples file {samples}: left out (copy the store again)"
            )
            continue
        target = dest / "snapshots" / rel / path.name
        if path.name in known.names and _same_bytes(path, target):
            # this very commit is in the destination already: its snapshots are there
            summary.host(host).snapshots_present += sum(live)
            continue
        rows = _read_rows(path)
        _check_versions(rows, path)
        present = [sid in known.where for sid in sids]
        if any(present):
            incoming = rows.to_pylist()
            for row, is_live, there in zip(incoming, live, present, strict=True):
                sid = row["snapshot_id"]
                if is_live and there and known.content(sid) != _content(row):
                    old = known.content(sid)
                    raise MergeConflict(_conflict(host, sid, path, dest, old, _content(row)))
        fresh = [i for i, (a, b) in enumerate(zip(live, present, strict=True)) if a and not b]
        summary.host(host).snapshots_present += sum(
            1 for a, b in zip(live, present, strict=True) if a and b
        )
        if not fresh:
            continue
        entry = summary.host(host)
        entry.snapshots_new += len(fresh)
        target_dir = dest / "samples" / rel
        if len(fresh) == rows.num_rows and path.name not in known.names:
            size = samples.stat().st_size + path.stat().st_size
            targets = (target_dir / path.name, target)
            actions.append(_Copy((samples, path), targets, host, size))
            known.names.add(path.name)
        else:
            table = rows.take(pa.array(fresh, pa.int64()))
            name = _rewrite_name(path, table["snapshot_id"].to_pylist(), known.names)
            size = samples.stat().st_size
            actions.append(
                _Rewrite(
                    samples,
                    table,
                    target_dir / name,
                    dest / "snapshots" / rel / name,
                    host,
                    size,
                )
            )
            known.names.add(name)
            summary.rewritten += 1
        picked = rows.take(pa.array(fresh, pa.int64()))
        known.add(picked["snapshot_id"].to_pylist(), picked["generation"].to_pylist(), path)
        entry.files += 2
        entry.bytes += size
    return actions


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False)
    except FileNotFoundError:
        return False


def _rewrite_name(path: Path, sids: list[str], taken: set[str]) -> str:
    """Return a name for the new snapshots of ``path``: the same on a rerun, free in ``taken``.

    It is not a compacted file's name (``hHH-gG``, ``day-gG``), so compaction takes the file as
    hot and folds it into the hour or day it belongs to.
    """
    ids = "\0".join(sorted(sids))
    digest = hashlib.blake2b(f"{path.name}\0{ids}".encode(), digest_size=6).hexdigest()
    name = f"{path.stem}-m{digest}.parquet"
    if name in taken:  # only if a file of that name already holds other snapshots
        raise StoreError(f"cannot merge {path}: {name} is taken in the destination")
    return name


def _read_rows(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        with durable.open_read(path) as f:
            return pq.read_table(f, columns=columns, schema=layout.STORE_SNAPSHOT_SCHEMA)
    except (OSError, pa.ArrowException) as e:
        raise StoreError(f"cannot read {path}: {str(e).splitlines()[0]}") from e


def _content(row: dict[str, Any]) -> dict[str, Any]:
    """Return what must be equal for two rows to be the same snapshot: all but the generation."""
    return {k: v for k, v in row.items() if k != "generation"}


def _check_versions(rows: pa.Table, path: Path) -> None:
    version = pc.max(rows["schema_version"]).as_py()
    if version is not None:  # any version up to ours: merge copies files, it does not read them
        layout.check_version(version, str(path), oldest=1)


def _conflict(
    host: str, sid: str, path: Path, dest: Path, old: dict[str, Any], new: dict[str, Any]
) -> str:
    differ = sorted(k for k in new if new.get(k) != old.get(k))
    return (
        f"conflict: snapshot {sid} of host {host} in {path} differs from the one in {dest} "
        f"({', '.join(differ)}): two stores recorded different data under one host name; "
        "merge this source into another store"
    )


def _count_orphans(src: Path, summary: MergeSummary) -> None:
    """Count samples files no snapshots file commits (a write or compaction interrupted)."""
    samples_root = src / "samples"
    for path in samples_root.glob("host=*/date=*/*.parquet"):
        rel = path.relative_to(samples_root)
        if not (src / "snapshots" / rel).is_file():
            summary.leave_out("uncommitted samples files")


# -- applying ----------------------------------------------------------------------------------


def _apply(
    actions: Iterable[_Action], progress: Callable[[Progress], None] | None, root: Path
) -> None:
    planned = list(actions)
    files_total = sum(len(a.targets) if isinstance(a, _Copy) else 2 for a in planned)
    bytes_total = sum(a.size for a in planned)
    files_done = bytes_done = 0
    for action in planned:
        if isinstance(action, _Copy):
            # samples before the snapshots file that commits them
            for source, target in zip(action.sources, action.targets, strict=True):
                bytes_done += copy_durably(source, target, root)
                files_done += 1
        else:
            _rewrite(action, root)
            bytes_done += action.size
            files_done += 2
        if progress is not None:
            progress(Progress(files_done, files_total, bytes_done, bytes_total))


def copy_durably(source: Path, target: Path, root: Path | None = None) -> int:
    """Copy a file via temp + fsync + rename; return its size. With ``root`` (the store
    ``target`` is in), no symlink below it is followed (``durable.open_folder``)."""
    tmp = durable.temp_path(target)
    try:
        with durable.open_read(source) as src, durable.create_file(tmp, root) as out:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        durable.replace(tmp, target, root)
        return size
    except OSError as e:
        durable.discard(tmp)
        raise StoreError(f"cannot copy {source} to {target}: {e.strerror or e}") from e


def _rewrite(action: _Rewrite, root: Path | None = None) -> None:
    """Write the samples of the action's snapshots to a new file, then their snapshots rows.

    Compacted samples files leave ``snapshot_id`` NULL where ``taken_at`` names the file's one
    snapshot at that time; such a row belongs to a kept snapshot when its time is a kept one.
    """
    ids = action.rows["snapshot_id"]
    times = action.rows["taken_at"]
    target = action.target_samples
    tmp = durable.temp_path(target)
    try:
        with (
            durable.open_read(action.samples) as read,
            pq.ParquetFile(read) as source,
            durable.create_file(tmp, root) as out,
            pq.ParquetWriter(out, source.schema_arrow, **_WRITE_OPTIONS) as writer,
        ):
            for batch in source.iter_batches(batch_size=_BATCH_ROWS):
                sid = batch.column("snapshot_id")
                if pa.types.is_dictionary(sid.type):
                    sid = sid.cast(pa.string())
                keep = pc.if_else(
                    pc.is_null(sid),
                    pc.is_in(batch.column("taken_at"), value_set=times),
                    pc.is_in(sid, value_set=ids),
                )
                kept = batch.filter(keep)
                if kept.num_rows:
                    writer.write_batch(kept)
        durable.fsync(tmp)
        durable.replace(tmp, target, root)
    except (OSError, pa.ArrowException) as e:
        durable.discard(tmp)
        raise StoreError(f"cannot write {target}: {str(e).splitlines()[0]}") from e
    durable.atomic_write(action.rows, action.target_snapshots, root=root)
