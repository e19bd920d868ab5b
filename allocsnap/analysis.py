"""One typed function per analysis: what the commands and notebooks call.

Operands are snapshot references — a snapshot file, a saved text dump, ``-`` for stdin, or a
reference into a store (a name, an id or its prefix, a time, ``first``, ``latest``) — resolved
by ``load``. Each analysis runs the query of the same name in ``queries/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
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
    return load_all([ref], store_dir, lenient=lenient)[0]


def load_all(refs: list[str], store_dir: Path, *, lenient: bool = False) -> list[Snapshot]:
    """Return the snapshots several references name, reading the store once for all of them."""
    loaded: dict[int, Snapshot] = {}
    stored: list[tuple[int, str]] = []
    for i, ref in enumerate(refs):
        if is_dump(ref):
            loaded[i] = capture.snapshot(source.read_dump(ref), lenient=lenient)
        elif Path(ref).is_file():
            loaded[i] = store.read_snapshot_file(Path(ref))
        else:
            stored.append((i, ref))
    if stored:
        ref = stored[0][1]
        try:
            with query.connect(store.open_store(store_dir)) as con:
                for i, ref in stored:
                    meta = _resolve(con, store_dir, ref)
                    loaded[i] = Snapshot(meta=meta, samples=_stored_samples(con, meta))
        except StoreNotFound as e:
            raise StoreNotFound(
                f"{ref!r} is neither a file nor a snapshot in the store: {e}"
            ) from e
    return [loaded[i] for i in range(len(refs))]


def is_dump(ref: str) -> bool:
    """Return True when a reference is a saved text dump (or stdin), whose time is a guess."""
    return ref == "-" or (Path(ref).is_file() and not store.is_parquet(Path(ref)))


def snapshots(store_dir: Path) -> list[SnapshotMeta]:
    """Return every snapshot in the store, oldest first."""
    with query.connect(store.open_store(store_dir)) as con:
        rows = query.run(con, "snapshots").to_pylist()
    return [SnapshotMeta.from_row(row) for row in rows]


def resolve(store_dir: Path, ref: str) -> SnapshotMeta:
    """Return the stored snapshot named by first, latest, a name, an id (prefix) or a time."""
    with query.connect(store.open_store(store_dir)) as con:
        return _resolve(con, store_dir, ref)


def _resolve(con: query.Connection, store_dir: Path, ref: str) -> SnapshotMeta:
    """Resolve a reference in the order: first/latest, name, id prefix, time."""
    attempts: list[tuple[str, str | None, datetime | None]] = []
    if ref in ("first", "latest"):
        attempts.append((ref, None, None))
    else:
        attempts.append(("name", ref, None))
        if re.fullmatch(r"[0-9a-f]{4,12}", ref):
            attempts.append(("id", ref, None))
        if re.match(r"^\d{4}-\d{2}-\d{2}", ref):
            attempts.append(("time", None, units.parse_time(ref)))
    for kind, text, at in attempts:
        rows = query.run(con, "resolve", kind=kind, ref=text, at=at).to_pylist()
        if kind == "id" and len(rows) > 1:
            raise UsageError(f"snapshot id prefix {ref!r} is ambiguous (several match)")
        if rows:
            return SnapshotMeta.from_row(rows[0])
    if attempts[-1][0] == "time":
        when = attempts[-1][2]
        assert when is not None
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
    per_hour: bool = True,
) -> DiffResult:
    """Return the groups whose live bytes or calls changed between two snapshots.

    With ``per_hour`` (the default) and snapshots an hour or more apart, each change is also
    given per hour; pass False when a time is only a guess (a dump's mtime, stdin's now).
    """
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
            hours=hours if per_hour and hours >= 1 else None,
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


def _stored_samples(con: query.Connection, meta: SnapshotMeta) -> pa.Table:
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


# -- analyses over a store window (leaks, growth, top, history) ------------------------------


@dataclass(frozen=True)
class Window:
    """A store window: ``--since``/``--until`` and ``--host``.

    A bound is an ISO 8601 time or a duration (``2h``) counted back from the newest snapshot of
    the window's hosts, not from the wall clock; ``None`` leaves that side open.
    """

    since: str | None = None
    until: str | None = None
    host: str | None = None

    def params(self) -> dict[str, object]:
        """Return the window as the ``$host``, ``$since_*`` and ``$until_*`` query parameters."""
        since_at, since_back = _bound(self.since)
        until_at, until_back = _bound(self.until)
        return {
            "host": self.host,
            "since_at": since_at,
            "until_at": until_at,
            "since_back": since_back,
            "until_back": until_back,
        }


@dataclass(frozen=True)
class Epochs:
    """The epochs a window covers (``queries/epochs.sql``) and what a reader must be told."""

    rows: pa.Table
    snapshots: int  # counting snapshots in the window
    first_at: datetime
    last_at: datetime
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class LeakSettings:
    """The thresholds of ``leaks`` (docs/analyses.md explains each one)."""

    max_points: int = 120
    blocks: int = 10
    min_points: int = 8
    min_growth: int = 1 << 20
    min_rate: float = 64 * 1024
    min_confidence: float = 0.99
    min_up_share: float = 0.4
    max_step_share: float = 0.5
    max_two_steps: float = 0.8
    max_drawdown: float = 0.5
    max_bend: float = 0.25
    max_wander_fall: float = 0.05


@dataclass(frozen=True)
class LeaksResult:
    """Leak candidates of a window, ranked, and the series that grew but were not judged leaks."""

    epochs: Epochs
    rows: pa.Table  # queries/leaks.sql columns, verdict 'leak' only, cut to --top
    found: int  # leaks before --top cut the list
    others: pa.Table  # series past the growth floors that are not leaks, with their verdict
    settings: LeakSettings


def tags(store_dir: Path) -> pa.Table:
    """Return every call site of a store: tag_id, file, line, module and function."""
    with query.connect(store.open_store(store_dir)) as con:
        return query.run(con, "tags")


def epochs(store_dir: Path, window: Window | None = None) -> Epochs:
    """Return the epochs of a store window; raise ``StoreNotFound`` when it holds no snapshot."""
    with query.connect(store.open_store(store_dir)) as con:
        return _epochs(con, store_dir, window or Window())


def leaks(
    store_dir: Path,
    window: Window | None = None,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    settings: LeakSettings | None = None,
    top_n: int | None = 20,
) -> LeaksResult:
    """Return the groups that grow persistently inside each epoch of a window, steepest first."""
    window = window or Window()
    keep = keep or Filter()
    grouping = grouping or Grouping()
    settings = settings or LeakSettings()
    if settings.max_points < 2:
        raise UsageError("--max-points must be at least 2")
    tag_ids = _tag_ids(store_dir, keep)
    with query.connect(store.open_store(store_dir)) as con:
        span = _epochs(con, store_dir, window)
        rows = query.run(
            con,
            "leaks",
            **window.params(),
            **_selection(tag_ids, keep, grouping),
            min_size=keep.min_size,
            max_size=keep.max_size,
            nonzero=keep.nonzero,
            max_points=settings.max_points,
            blocks=settings.blocks,
            min_points=settings.min_points,
            min_growth=settings.min_growth,
            min_rate=settings.min_rate,
            min_confidence=settings.min_confidence,
            min_up_share=settings.min_up_share,
            max_step_share=settings.max_step_share,
            max_two_steps=settings.max_two_steps,
            max_drawdown=settings.max_drawdown,
            max_bend=settings.max_bend,
            max_wander_fall=settings.max_wander_fall,
        )
    is_leak = pc.equal(rows["verdict"], "leak")
    found = rows.filter(is_leak)
    return LeaksResult(
        epochs=span,
        rows=found.slice(0, top_n) if top_n else found,
        found=found.num_rows,
        others=rows.filter(pc.invert(is_leak)),
        settings=settings,
    )


def _bound(text: str | None) -> tuple[datetime | None, float | None]:
    """Return a window bound as (absolute time, None) or (None, seconds back)."""
    if text is None:
        return None, None
    try:
        return None, units.parse_duration(text).total_seconds()
    except UsageError:
        pass
    try:
        return units.parse_time(text), None
    except UsageError:
        raise UsageError(
            f"not a time or a duration: {text!r} (try 2h, 30m, 2026-11-26T14:00:00Z)"
        ) from None


def _tag_ids(store_dir: Path, keep: Filter) -> list[int] | None:
    """Return the ids of the tags the filter's call-site parts keep, or None when all are kept.

    Accuracy is a property of a row, not of a call site, so it is applied by the queries.
    """
    by_site = replace(keep, accurate=None, min_size=None, max_size=None, nonzero=False)
    if by_site.is_empty():
        return None
    table = tags(store_dir)
    mask = filters.tag_mask(table, by_site)
    ids: list[int] = (table if mask is None else table.filter(mask))["tag_id"].to_pylist()
    return ids


def _selection(tag_ids: list[int] | None, keep: Filter, grouping: Grouping) -> dict[str, object]:
    """Return the parameters that pick and group a window query's call sites."""
    return {
        "tag_ids": tag_ids,
        "accurate": keep.accurate,
        "by": grouping.by,
        "depth": grouping.depth,
    }


def _epochs(con: query.Connection, store_dir: Path, window: Window) -> Epochs:
    rows = query.run(con, "epochs", **window.params())
    counting = rows.filter(pc.greater(rows["snapshots"], 0))
    if counting.num_rows == 0:
        what = "with profiling on " if rows.num_rows else ""
        raise StoreNotFound(f"no snapshots {what}in the window in {store_dir}")
    warnings = []
    if counting.num_rows > 1:
        names = ", ".join(counting["epoch"].to_pylist())
        warnings.append(
            f"the window crosses {counting.num_rows} epochs ({names}): counters restart or "
            "freeze between them, so each is analysed on its own"
        )
    off = pc.sum(rows["profiling_off"]).as_py() or 0
    if off:
        warnings.append(
            f"{off} snapshots taken with profiling off (vm.mem_profiling=0) were left out: "
            "counters are frozen then, and counting after it is a new epoch"
        )
    changed = counting.filter(pc.greater(counting["module_sets"], 1))["epoch"].to_pylist()
    if changed:
        warnings.append(
            f"modules were loaded or unloaded within {', '.join(changed)}: their call sites' "
            "series break there (a vanished row is not a free)"
        )
    return Epochs(
        rows=rows,
        snapshots=pc.sum(counting["snapshots"]).as_py(),
        first_at=pc.min(counting["first_at"]).as_py(),
        last_at=pc.max(counting["last_at"]).as_py(),
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class WindowResult:
    """Rows of a window analysis (growth, top, history) and the epochs they come from."""

    epochs: Epochs
    rows: pa.Table  # the columns of the query of the same name


def growth(
    store_dir: Path,
    window: Window | None = None,
    *,
    split: str | None = None,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    max_points: int = 200,
    top_n: int | None = 20,
) -> WindowResult:
    """Return per group the median of the window's later part against its earlier part, per hour.

    ``split`` is where the later part starts: a time, a duration back from the newest snapshot,
    or None for the middle of the window.
    """
    window = window or Window()
    keep = keep or Filter()
    grouping = grouping or Grouping()
    split_at, split_back = _bound(split)
    tag_ids = _tag_ids(store_dir, keep)
    with query.connect(store.open_store(store_dir)) as con:
        span = _epochs(con, store_dir, window)
        rows = query.run(
            con,
            "growth",
            **window.params(),
            split_at=split_at,
            split_back=split_back,
            **_selection(tag_ids, keep, grouping),
            min_size=keep.min_size,
            max_size=keep.max_size,
            nonzero=keep.nonzero,
            max_points=max(2, max_points),
            top_n=top_n or None,
        )
    return WindowResult(epochs=span, rows=rows)


def top(
    store_dir: Path,
    window: Window | None = None,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    top_n: int | None = 20,
) -> WindowResult:
    """Return the groups whose live bytes moved most, up or down, from first to last snapshot of
    each epoch in the window."""
    window = window or Window()
    keep = keep or Filter()
    grouping = grouping or Grouping()
    tag_ids = _tag_ids(store_dir, keep)
    with query.connect(store.open_store(store_dir)) as con:
        span = _epochs(con, store_dir, window)
        rows = query.run(
            con,
            "top",
            **window.params(),
            **_selection(tag_ids, keep, grouping),
            min_size=keep.min_size,
            max_size=keep.max_size,
            nonzero=keep.nonzero,
            top_n=top_n or None,
        )
    return WindowResult(epochs=span, rows=rows)


def history(
    store_dir: Path,
    pattern: str,
    window: Window | None = None,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    max_points: int | None = 200,
) -> WindowResult:
    """Return the series (key, epoch, taken_at, bytes, calls, rows) of the groups matching
    ``pattern``: a shell glob over the whole key when it has ``*?[``, else a substring."""
    window = window or Window()
    keep = keep or Filter()
    grouping = grouping or Grouping()
    if any(c in pattern for c in "*?["):
        regex = filters.glob_to_regex(pattern)
    else:
        regex = re.escape(pattern)
    tag_ids = _tag_ids(store_dir, keep)
    with query.connect(store.open_store(store_dir)) as con:
        span = _epochs(con, store_dir, window)
        rows = query.run(
            con,
            "history",
            **window.params(),
            **_selection(tag_ids, keep, grouping),
            pattern=regex,
            max_points=max(2, max_points) if max_points else None,
        )
    if rows.num_rows == 0:
        raise StoreNotFound(f"no {grouping.by} matching {pattern!r} in the window")
    return WindowResult(epochs=span, rows=rows)
