"""One typed function per analysis: what the commands and notebooks call.

Operands are snapshot references — a snapshot file, a saved text dump, ``-`` for stdin, or a
reference into a store (a name, an id or its prefix, a time, ``first``, ``latest``) — resolved
by ``load``. Each analysis runs the query of the same name in ``queries/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap import capture, filters, query, source, store, units
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.model import SAMPLE_SCHEMA, Filter, Snapshot, SnapshotMeta

GROUPINGS = ("tag", "function", "file", "module", "dir")
DEFAULT_DIR_DEPTH = 2


@dataclass(frozen=True)
class Grouping:
    """How rows are summed: ``--by tag|function|file|module|dir[:N]``."""

    by: str = "tag"
    depth: int = DEFAULT_DIR_DEPTH

    @classmethod
    def parse(cls, text: str) -> Grouping:
        """Return the grouping named by ``text``, e.g. ``dir:3``."""
        by, colon, depth = text.partition(":")
        bad_depth = colon and (by != "dir" or not depth.isdigit() or int(depth) < 1)
        if by not in GROUPINGS or bad_depth:
            raise UsageError(
                f"not a grouping: {text!r} (one of tag, function, file, module, dir[:N])"
            )
        return cls(by, int(depth) if depth else DEFAULT_DIR_DEPTH)


@dataclass(frozen=True)
class Totals:
    """Live bytes and calls summed over a set of rows."""

    rows: int
    bytes: int
    calls: int


@dataclass(frozen=True)
class DiffResult:
    """Two snapshots compared: their metadata and totals, warnings, and the changed groups."""

    before: SnapshotMeta
    after: SnapshotMeta
    before_totals: Totals
    after_totals: Totals
    warnings: tuple[str, ...]
    rows: pa.Table  # queries/diff.sql columns
    changed: int  # groups that changed, before --top cut the list


@dataclass(frozen=True)
class ShowResult:
    """One snapshot's groups and its totals after filtering."""

    snapshot: SnapshotMeta
    totals: Totals
    rows: pa.Table  # queries/show.sql columns
    groups: int  # groups in all, before --top cut the list


def load(ref: str, store_dir: Path, *, lenient: bool = False) -> Snapshot:
    """Return the snapshot a reference names: a file, a text dump, ``-``, or a store entry."""
    if ref == "-":
        return capture.snapshot(source.read_dump("-"), lenient=lenient)
    path = Path(ref)
    if path.is_file():
        if store.is_parquet(path):
            return store.read_snapshot_file(path)
        return capture.snapshot(source.read_dump(ref), lenient=lenient)
    try:
        meta = resolve(store_dir, ref)
    except StoreNotFound as e:
        raise StoreNotFound(f"{ref!r} is neither a file nor a snapshot in the store: {e}") from e
    return Snapshot(meta=meta, samples=_stored_samples(store_dir, meta))


def snapshots(store_dir: Path) -> list[SnapshotMeta]:
    """Return every snapshot in the store, oldest first."""
    with query.connect(store.open_store(store_dir)) as con:
        rows = query.run(con, "snapshots").to_pylist()
    return [SnapshotMeta.from_row(row) for row in rows]


def resolve(store_dir: Path, ref: str) -> SnapshotMeta:
    """Return the stored snapshot named by first, latest, a name, an id (prefix) or a time."""
    metas = snapshots(store_dir)
    if ref == "first":
        return metas[0]
    if ref == "latest":
        return metas[-1]
    named = [m for m in metas if m.name == ref]
    if named:
        return named[-1]
    if re.fullmatch(r"[0-9a-f]{4,12}", ref):
        ids = [m for m in metas if m.snapshot_id.startswith(ref)]
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            raise UsageError(f"snapshot id prefix {ref!r} is ambiguous ({len(ids)} match)")
    if re.match(r"^\d{4}-\d{2}-\d{2}", ref):
        when = units.parse_time(ref)
        earlier = [m for m in metas if m.taken_at <= when]
        if earlier:
            return earlier[-1]
        raise StoreNotFound(f"no snapshot at or before {when.isoformat()} in {store_dir}")
    raise StoreNotFound(f"no snapshot named {ref!r} in {store_dir} (see 'allocsnap ls')")


def totals(samples: pa.Table) -> Totals:
    """Return the row count, live bytes and signed calls of a samples table."""
    calls = pc.cast(samples["calls"], pa.int64(), safe=False)
    return Totals(
        rows=samples.num_rows,
        bytes=pc.sum(samples["bytes"]).as_py() or 0,
        calls=pc.sum(calls).as_py() or 0,
    )


def diff(
    before: Snapshot,
    after: Snapshot,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    top_n: int | None = 20,
    min_delta: int = 0,
) -> DiffResult:
    """Return the groups whose live bytes or calls changed between two snapshots."""
    keep = keep or Filter()
    grouping = grouping or Grouping()
    before_rows = _tag_filtered(before.samples, keep)
    after_rows = _tag_filtered(after.samples, keep)
    hours = (after.meta.taken_at - before.meta.taken_at).total_seconds() / 3600
    with query.connect() as con:
        query.register(con, "before_rows", before_rows)
        query.register(con, "after_rows", after_rows)
        rows = query.run(
            con,
            "diff",
            by=grouping.by,
            depth=grouping.depth,
            min_delta=min_delta,
            min_size=keep.min_size,
            max_size=keep.max_size,
            nonzero=keep.nonzero,
            after_modules=_modules_present(after),
            hours=hours if hours >= 1 else None,
            top_n=top_n or None,
        )
    changed = rows["changed_groups"][0].as_py() if rows.num_rows else 0
    return DiffResult(
        before=before.meta,
        after=after.meta,
        before_totals=totals(before_rows),
        after_totals=totals(after_rows),
        warnings=epoch_warnings(before, after),
        rows=rows.drop_columns(["changed_groups"]),
        changed=changed,
    )


def show(
    snap: Snapshot,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    sort: str = "bytes",
    top_n: int | None = 20,
) -> ShowResult:
    """Return one snapshot's rows filtered, grouped and sorted, with the totals."""
    rows = filters.apply(snap.samples, keep or Filter())
    grouping = grouping or Grouping()
    with query.connect() as con:
        query.register(con, "snapshot_rows", rows)
        result = query.run(
            con, "show", by=grouping.by, depth=grouping.depth, sort=sort, top_n=top_n or None
        )
    groups = result["groups"][0].as_py() if result.num_rows else 0
    return ShowResult(
        snapshot=snap.meta,
        totals=totals(rows),
        rows=result.drop_columns(["groups"]),
        groups=groups,
    )


def epoch_warnings(old: Snapshot, new: Snapshot) -> tuple[str, ...]:
    """Return why two snapshots' counters may not be comparable, one sentence each.

    Loaded modules come from the metadata, or, for saved dumps, from the rows themselves.
    """
    before, after = old.meta, new.meta
    warnings = []
    if before.host != after.host:
        warnings.append(f"different hosts: {before.host} and {after.host}")
    if before.boot_id and after.boot_id and before.boot_id != after.boot_id:
        warnings.append(
            "different boots (boot_id changed): counters restarted from zero in between"
        )
    elif before.kernel and after.kernel and before.kernel != after.kernel:
        warnings.append(f"different kernels: {before.kernel} and {after.kernel}")
    for label, meta in (("earlier", before), ("later", after)):
        if meta.profiling == 0:
            warnings.append(
                f"profiling was off (vm.mem_profiling=0) at the {label} snapshot: counters frozen"
            )
    if before.profiling == 0 and after.profiling == 1:
        warnings.append("profiling was switched on in between: counts start from that moment")
    modules_before, modules_after = set(_modules_present(old)), set(_modules_present(new))
    if modules_before != modules_after:
        loaded = sorted(modules_after - modules_before)
        unloaded = sorted(modules_before - modules_after)
        if loaded:
            warnings.append(f"modules loaded in between: {', '.join(loaded)}")
        if unloaded:
            warnings.append(
                f"modules unloaded in between: {', '.join(unloaded)} (their rows vanished; "
                "a vanished row is not a free)"
            )
    if after.taken_at < before.taken_at:
        warnings.append("the 'after' snapshot is older than the 'before' one")
    return tuple(warnings)


def _modules_present(snap: Snapshot) -> list[str]:
    """Return the modules loaded at a snapshot: recorded, or else those with rows in it."""
    if snap.meta.modules is not None:
        return list(snap.meta.modules)
    return [m for m in pc.unique(snap.samples["module"]).to_pylist() if m is not None]


def _tag_filtered(samples: pa.Table, keep: Filter) -> pa.Table:
    mask = filters.tag_mask(samples, keep)
    return samples if mask is None else samples.filter(mask)


def _stored_samples(store_dir: Path, meta: SnapshotMeta) -> pa.Table:
    files = store.open_store(store_dir)
    with query.connect(files) as con:
        table = query.run(
            con,
            "snapshot_samples",
            snapshot_id=meta.snapshot_id,
            host=meta.host,
            day=meta.taken_at.date(),
        )
    return table.cast(SAMPLE_SCHEMA)


def taken_at_text(when: datetime) -> str:
    """Return a snapshot time as people read it: ``2026-11-26 14:52:03 UTC``."""
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")
