"""Analyses of one or two snapshots: load references, show, diff, and their epoch warnings.

Operands are snapshot references — a snapshot file, a saved text dump, ``-`` for stdin, or a
reference into a store (a name, an id or its prefix, a time, ``first``, ``latest``) — resolved
by ``load``. Each analysis runs the query of the same name in ``queries/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap import comparing, filters, model, units
from allocsnap.analysis import kernels, query, reading
from allocsnap.analysis.grouping import Grouping
from allocsnap.analysis.session import Store
from allocsnap.errors import QueryError, StoreError, StoreNotFound, UsageError
from allocsnap.kernel import capture, fastparse, source
from allocsnap.model import SAMPLE_SCHEMA, Filter, Snapshot, SnapshotMeta
from allocsnap.store import catalog, layout, single_file
from allocsnap.units import taken_at_text as taken_at_text

Hosts = str | Sequence[str] | None
"""``--host``: a host name or shell glob, or several; None for every host."""


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
    # the warnings on what is compared (one snapshot twice, a narrowed filter, a dump that
    # counted nothing): the CLI prints these on stderr whatever the output format
    comparability: tuple[str, ...] = ()
    # two kernels' call sites paired (analysis.kernels), when the diff crosses kernels
    crossing: kernels.Crossing | None = None


@dataclass(frozen=True)
class ShowResult:
    """One snapshot's groups and its totals after filtering."""

    snapshot: SnapshotMeta
    totals: Totals
    rows: pa.Table  # queries/show.sql columns
    groups: int  # groups in all, before --top cut the list


def load(ref: str, store_dir: Store, *, lenient: bool = False, host: Hosts = None) -> Snapshot:
    """Return the snapshot a reference names: a file, a text dump, ``-``, or a store entry
    (among the snapshots of ``host``: a name or glob, or several, when given)."""
    return load_all([ref], store_dir, lenient=lenient, host=host)[0]


def load_all(
    refs: list[str], store_dir: Store, *, lenient: bool = False, host: Hosts = None
) -> list[Snapshot]:
    """Return the snapshots several references name, reading the store once for all of them."""
    loaded: dict[int, Snapshot] = {}
    stored: list[tuple[int, str]] = []
    parser = fastparse.CachedParser()  # two dumps of one kernel: the second reuses the tags
    for i, ref in enumerate(refs):
        if is_dump(ref):
            loaded[i] = capture.snapshot(source.read_dump(ref), lenient=lenient, parser=parser)
        elif Path(ref).is_file():
            loaded[i] = single_file.read_snapshot_file(Path(ref))
        else:
            stored.append((i, ref))
    if stored:
        ref = stored[0][1]
        cat = _catalog(store_dir)

        def read(con: query.Connection) -> dict[int, Snapshot]:
            found = {}
            for i, ref in stored:
                meta = _resolve(con, store_dir, ref, host)
                samples = _stored_samples(con, meta)
                reading.check_snapshot(meta, samples)
                found[i] = Snapshot(meta=meta, samples=samples)
            return found

        try:
            # through the catalog; on any trouble, the store's own reading as before it
            found = _read_named(cat, store_dir, stored, host) if cat is not None else None
            loaded.update(found if found is not None else reading.read_store(store_dir, read))
        except StoreNotFound as e:
            raise StoreNotFound(
                f"{ref!r} is neither a file nor a snapshot in the store: {e}"
            ) from e
    return [loaded[i] for i in range(len(refs))]


def _read_named(
    cat: catalog.Catalog, store_dir: Store, stored: list[tuple[int, str]], host: Hosts
) -> dict[int, Snapshot] | None:
    """Return the stored snapshots the references name, resolved through the catalog and read
    from the snapshots files it names and their samples files alone (the same views and
    queries over those files: the generation its newest row names, the same totals checked),
    or None when anything is amiss: a reference that does not resolve, a file gone or
    damaged. The whole store's reading then runs as before, and says what is wrong in its
    words (or leaves damage out, with --skip-damaged)."""
    if not isinstance(store_dir, Path) or catalog.host_test(filters.hosts_regex(host)) is None:
        return None
    try:
        metas = {i: _resolve(None, store_dir, ref, host, cat) for i, ref in stored}
    except (StoreNotFound, UsageError):
        return None
    named = {(e[catalog.HOST], e[0]): e[catalog.FILE] for e in cat.entries}
    wanted = {named[(m.host, m.snapshot_id)] for m in metas.values()}
    try:
        files = layout.open_store(store_dir)
        pair = files._replace(
            snapshots=[p for p in files.snapshots if p.split("/snapshots/")[-1] in wanted],
            samples=[p for p in files.samples if p.split("/samples/")[-1] in wanted],
        )
        if not len(pair.snapshots) == len(pair.samples) == len(wanted):
            return None
        found = {}
        with query.connect(pair) as con:
            for i, meta in metas.items():
                samples = _stored_samples(con, meta)
                reading.check_snapshot(meta, samples)
                found[i] = Snapshot(meta=meta, samples=samples)
    except (reading.Mismatch, StoreError, StoreNotFound, QueryError):
        return None
    return found


def load_stored(store_dir: Store, meta: SnapshotMeta) -> Snapshot:
    """Return the stored snapshot whose metadata is at hand (from ``snapshots``): only its
    samples are read, with no reference to resolve."""

    def read(con: query.Connection) -> Snapshot:
        samples = _stored_samples(con, meta)
        reading.check_snapshot(meta, samples)
        return Snapshot(meta=meta, samples=samples)

    return reading.read_store(store_dir, read)


def is_dump(ref: str) -> bool:
    """Return True when a reference is a saved text dump (or stdin), whose time is a guess."""
    if ref == "-":
        return True
    path = Path(ref)
    if path.is_file():
        return not single_file.is_parquet(path)
    # a pipe (bash's <(...)) or a device: read as a stream, with source.read_dump's bounds
    return path.exists() and not path.is_dir()


def snapshots(store_dir: Store, host: Hosts = None) -> list[SnapshotMeta]:
    """Return every snapshot in the store (of ``host``, names or globs), oldest first."""
    cat = _catalog(store_dir)
    match = catalog.host_test(filters.hosts_regex(host)) if cat is not None else None
    if cat is not None and match is not None:  # the same rows and order, from the catalog
        return [SnapshotMeta.from_row(catalog.as_row(e)) for e in cat.snapshots(match)]
    no_bounds = dict.fromkeys(("since_at", "until_at", "since_back", "until_back"))
    rows = reading.read_store(
        store_dir,
        lambda con: query.run(con, "snapshots", host=filters.hosts_regex(host), **no_bounds),
    )
    metas = [SnapshotMeta.from_row(row) for row in rows.to_pylist()]
    # ties in time (other hosts, or a store written before one instant per host) in the
    # natural order of the dumps' names: snap-2 before snap-10
    return sorted(metas, key=lambda m: (m.taken_at, m.host, units.natural_key(m.origin or "")))


def resolve(store_dir: Store, ref: str, host: Hosts = None) -> SnapshotMeta:
    """Return the stored snapshot named by first, latest, a name, an id (prefix) or a time,
    among the snapshots of ``host`` (names or globs) when given."""
    cat = _catalog(store_dir)
    if cat is not None and catalog.host_test(filters.hosts_regex(host)) is not None:
        return _resolve(None, store_dir, ref, host, cat)  # no connection needed
    return reading.read_store(store_dir, lambda con: _resolve(con, store_dir, ref, host))


def _catalog(store_dir: Store) -> catalog.Catalog | None:
    """Return the catalog of a local store (allocsnap.store.catalog), or None: a session, a
    remote store, or a store the catalog leaves to its own views."""
    if not isinstance(store_dir, Path):
        return None
    return catalog.open_catalog(store_dir)


def _resolve(
    con: query.Connection | None,
    store_dir: Store,
    ref: str,
    host: Hosts,
    cat: catalog.Catalog | None = None,
) -> SnapshotMeta:
    """Resolve a reference in the order: first/latest, name, id prefix, time (through the
    catalog when one is given and can match the hosts, else queries/resolve.sql)."""
    pattern = filters.hosts_regex(host)
    match = catalog.host_test(pattern) if cat is not None else None
    where = "" if pattern is None else f" of a host matching {_names(host)}"
    attempts = catalog.attempts(ref)
    for kind, text, at in attempts:
        if cat is not None and match is not None:
            rows = [catalog.as_row(e) for e in cat.resolve(kind, text, at, match)]
        else:
            assert con is not None  # a connection comes with every store the catalog declines
            rows = query.run(con, "resolve", kind=kind, ref=text, at=at, host=pattern).to_pylist()
        if kind == "id" and len(rows) > 1:
            raise UsageError(f"snapshot id prefix {ref!r} is ambiguous (several match)")
        if len(rows) > 1 and rows[0]["taken_at"] == rows[1]["taken_at"]:
            one, other = rows[0], rows[1]
            raise UsageError(
                f"{ref!r} is ambiguous: snapshots {one['snapshot_id']} ({one['host']}) and "
                f"{other['snapshot_id']} ({other['host']}) were both taken at "
                f"{taken_at_text(one['taken_at'])}: give an id, or --host"
            )
        if rows:
            return SnapshotMeta.from_row(rows[0])
    if attempts[-1][0] == "time":
        when = attempts[-1][2]
        assert when is not None
        raise StoreNotFound(f"no snapshot{where} at or before {when.isoformat()} in {store_dir}")
    if ref in ("first", "latest"):
        raise StoreNotFound(f"no snapshot{where} in {store_dir} (see 'allocsnap ls')")
    raise StoreNotFound(f"no snapshot named {ref!r}{where} in {store_dir} (see 'allocsnap ls')")


def _names(host: Hosts) -> str:
    items = [host] if isinstance(host, str) else list(host or ())
    return ", ".join(repr(h) for h in items)


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
    per_hour: bool = True,
    lines: kernels.LineOptions | None = None,
) -> DiffResult:
    """Return the groups whose live bytes or calls changed between two snapshots.

    With ``per_hour`` (the default) and snapshots an hour or more apart, each change is also
    given per hour; pass False when a time is only a guess (a dump's mtime, stdin's now).
    Snapshots of two kernels have their call sites paired as ``lines`` says (by default when
    both kernels are known and differ): see ``analysis.kernels``.
    """
    keep = keep or Filter()
    grouping = grouping or Grouping()
    narrower, comparability = comparable(before, after)
    before_rows = _tag_filtered(before.samples, keep)
    after_rows = _tag_filtered(after.samples, keep)
    if narrower is not None:  # no GONE row and no total from a filter difference alone
        before_rows = filters.apply(before_rows, narrower)
        after_rows = filters.apply(after_rows, narrower)
    crossing = _crossing(before, after, before_rows, after_rows, lines or kernels.LineOptions())
    if crossing is not None:  # the earlier sites under their later keys: diff.sql unchanged
        before_rows = kernels.remap(before_rows, crossing.matching)
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
            hours=hours if per_hour and hours >= 1 else None,
            top_n=top_n or None,
        )
    if crossing is not None and grouping.by == "tag":
        rows = kernels.diff_moved(rows, crossing.matching)
    changed = rows["changed_groups"][0].as_py() if rows.num_rows else 0
    return DiffResult(
        before=before.meta,
        after=after.meta,
        before_totals=totals(before_rows),
        after_totals=totals(after_rows),
        warnings=comparability + epoch_warnings(before, after),
        rows=rows.drop_columns(["changed_groups"]),
        changed=changed,
        comparability=comparability,
        crossing=crossing,
    )


def _crossing(
    before: Snapshot,
    after: Snapshot,
    before_rows: pa.Table,
    after_rows: pa.Table,
    lines: kernels.LineOptions,
) -> kernels.Crossing | None:
    old, new = before.meta.kernel, after.meta.kernel
    if not lines.applies(old, new):
        return None
    return kernels.cross(old, new, before_rows, after_rows, lines)


def comparable(before: Snapshot, after: Snapshot) -> tuple[Filter | None, tuple[str, ...]]:
    """Return the filter two snapshots are compared under, and what to say about them.

    Both sides the same snapshot, or one that counted nothing, is said. Snapshots taken with
    different filters are compared under the narrower one when it contains the other (None:
    no filter to add); when neither does, nothing they share can be told apart from what
    the filters dropped, and a ``UsageError`` names both.
    """
    said = comparing.comparability(
        before.meta, after.meta, (counted_nothing(before), counted_nothing(after))
    )
    old, new = before.meta.filter, after.meta.filter
    if old == new:
        return None, tuple(said)
    narrower = model.narrower(Filter.from_canonical(old), Filter.from_canonical(new))
    if narrower is None:
        raise UsageError(
            f"the snapshots were taken with filters neither of which contains the other "
            f"({_filter_text(old)} before, {_filter_text(new)} after): compare snapshots "
            "taken with the same filter, or one of them with none"
        )
    said.append(
        f"the snapshots were taken with different filters ({_filter_text(old)} before, "
        f"{_filter_text(new)} after): both compared under {_filter_text(narrower.canonical())}"
    )
    return narrower, tuple(said)


def _filter_text(canonical: str) -> str:
    return repr(canonical) if canonical else "no filter"


def counted_nothing(snap: Snapshot) -> bool:
    """Return True when a snapshot has rows and every counter is 0 (profiling off or never on)."""
    rows = snap.samples
    return bool(
        rows.num_rows
        and not pc.any(pc.not_equal(rows["bytes"], 0)).as_py()
        and not pc.any(pc.not_equal(rows["calls"], 0)).as_py()
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
    modules = (_modules_present(old), _modules_present(new))
    return tuple(comparing.epoch_warnings(old.meta, new.meta, modules))


def _modules_present(snap: Snapshot) -> list[str]:
    """Return the modules loaded at a snapshot: recorded, or else those with rows in it."""
    if snap.meta.modules is not None:
        return list(snap.meta.modules)
    return [m for m in pc.unique(snap.samples["module"]).to_pylist() if m is not None]


def _tag_filtered(samples: pa.Table, keep: Filter) -> pa.Table:
    mask = filters.tag_mask(samples, keep)
    return samples if mask is None else samples.filter(mask)


def _stored_samples(con: query.Connection, meta: SnapshotMeta) -> pa.Table:
    table = query.run(
        con,
        "snapshot_samples",
        snapshot_id=meta.snapshot_id,
        host=meta.host,
        day=meta.taken_at.date(),
        taken_at=meta.taken_at,
    )
    return table.cast(SAMPLE_SCHEMA)


# -- analyses over a store window (leaks, growth, top, history) ------------------------------
