"""What ``allocsnap export`` and ``allocsnap serve`` expose from a store: a snapshot (the newest
by default), the one before it in the same boot for growth, and the leak verdicts of its boot
from ``leaks``; ``openmetrics.exposition`` writes them as text."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from allocsnap import openmetrics
from allocsnap.analysis import compare, windows
from allocsnap.analysis.session import Session, Store
from allocsnap.analysis.window import Window
from allocsnap.errors import StoreNotFound
from allocsnap.model import Snapshot, SnapshotMeta


def newest(store: Store, host: compare.Hosts = None) -> SnapshotMeta:
    """Return the newest snapshot of a store (of ``host``, a name or glob, when given)."""
    return compare.resolve(store, "latest", host)


@dataclass(frozen=True)
class Gathered:
    """What an exposition of a stored snapshot is made of."""

    snapshot: Snapshot
    previous: Snapshot | None  # the snapshot before it of the same host and boot
    leaks: openmetrics.Leaks | None  # the verdicts of its boot up to it


def exposition(
    store: Store,
    ref: str = "latest",
    *,
    host: compare.Hosts = None,
    limits: openmetrics.Limits | None = None,
) -> openmetrics.Exposition:
    """Return the metrics of the snapshot ``ref`` names (a store reference, a snapshot file or a
    text dump) as OpenMetrics text; from a store, with growth since the snapshot before it in
    the same boot and the leak verdicts of its boot up to it."""
    if compare.is_dump(ref) or Path(ref).is_file():
        return openmetrics.exposition(compare.load(ref, store), limits=limits)
    found = gather(store, ref, host=host)
    return openmetrics.exposition(found.snapshot, found.previous, found.leaks, limits)


def gather(
    store: Store,
    ref: str = "latest",
    *,
    host: compare.Hosts = None,
    known: Snapshot | None = None,
    judge: bool = True,
) -> Gathered:
    """Return a stored snapshot, the one before it of the same boot, and (unless not to
    ``judge``) its boot's leak verdicts; a snapshot read earlier (``known``) is reused when it
    is the one before."""
    with _session(store) as session:
        if ref == "latest":  # one listing of the snapshots answers both: the newest, the one before
            metas = compare.snapshots(session, host)
            if not metas:  # none of these hosts: resolve says so as everywhere else
                compare.resolve(session, "latest", host)
            snap = compare.load_stored(session, metas[-1])
        else:
            snap = compare.load(ref, session, host=host)
            metas = compare.snapshots(session, snap.meta.host)
        previous = _previous(session, snap.meta, metas, known)
        verdicts = _leaks(session, snap.meta) if judge else None
    return Gathered(snap, previous, verdicts)


def leak_verdicts(store: Store, meta: SnapshotMeta) -> openmetrics.Leaks | None:
    """Return the leak verdicts of the series that reach a stored snapshot (``gather``'s)."""
    with _session(store) as session:
        return _leaks(session, meta)


def _session(store: Store) -> AbstractContextManager[Session]:
    return Session(store) if not isinstance(store, Session) else nullcontext(store)


def _previous(
    session: Session, meta: SnapshotMeta, metas: list[SnapshotMeta], known: Snapshot | None
) -> Snapshot | None:
    """Return the snapshot just before ``meta`` of its host among ``metas`` (oldest first),
    when it is of the same boot and was taken with profiling on (``known`` if it is that one);
    else None (no growth to tell)."""
    earlier = [m for m in metas if m.host == meta.host and m.taken_at < meta.taken_at]
    if not earlier:
        return None
    before = earlier[-1]
    if before.boot_id != meta.boot_id or before.profiling == 0:
        return None
    if known is not None and (known.meta.host, known.meta.snapshot_id) == (
        before.host,
        before.snapshot_id,
    ):
        return known
    return compare.load_stored(session, before)


def _leaks(session: Session, meta: SnapshotMeta) -> openmetrics.Leaks | None:
    """Return the leak verdicts of the series that reach the snapshot, over its host's store up
    to it (each epoch judged on its own, so only its boot's series reach it); None when the
    window has no snapshot taken with profiling on."""
    window = Window(until=meta.taken_at.isoformat(), host=meta.host)
    try:
        result = windows.leaks(session, window, top_n=None)
    except StoreNotFound:
        return None

    def current(row: dict[str, object]) -> bool:
        last = row["last_at"]
        return isinstance(last, datetime) and _utc(last) == _utc(meta.taken_at)

    found = [r for r in result.rows.to_pylist() if current(r)]
    grown = [r for r in result.others.to_pylist() if current(r) and r["bytes_per_hour"] is not None]
    series = tuple(
        openmetrics.LeakSeries(r["key"], float(r["bytes_per_hour"]), r["verdict"] == "leak")
        for r in found + grown
    )
    return openmetrics.Leaks(found=len(found), series=series)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
