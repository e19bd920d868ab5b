"""The window of a store that every window analysis reads: its bounds (``Window``), its epochs
and warnings (``Epochs``), the filters its snapshots were taken with, and ``run_window``, which
runs one analysis's query over it through ``reading.read_store``."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap import filters, units
from allocsnap.analysis import query, reading
from allocsnap.analysis.grouping import Grouping
from allocsnap.analysis.session import Store
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.model import Filter, SnapshotMeta


@dataclass(frozen=True)
class Window:
    """A store window: ``--since``/``--until`` and ``--host``.

    A bound is an ISO 8601 time or a duration (``2h``) counted back from the newest snapshot of
    the window's hosts, not from the wall clock; ``None`` leaves that side open. ``host`` is a
    host name or a shell glob (``web*``), or several of them; ``None`` keeps every host.
    """

    since: str | None = None
    until: str | None = None
    host: str | tuple[str, ...] | None = None

    @property
    def hosts(self) -> tuple[str, ...]:
        """Return the host names or globs the window keeps; empty for all hosts."""
        if self.host is None:
            return ()
        return (self.host,) if isinstance(self.host, str) else tuple(self.host)

    def params(self) -> dict[str, object]:
        """Return the window as the ``$host``, ``$since_*`` and ``$until_*`` query parameters."""
        since_at, since_back = bound(self.since)
        until_at, until_back = bound(self.until)
        return {
            "host": filters.hosts_regex(self.hosts),
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
    # the narrowest filter the window's snapshots were taken with, when they differ: the
    # analyses keep only what it keeps, so no series starts or ends at a filter change
    narrower: Filter | None = None

    def narrowed(self, keep: Filter) -> Filter:
        """Return ``keep`` with the window's narrower value bounds and accuracy added."""
        n = self.narrower
        if n is None:
            return keep
        return replace(
            keep,
            accurate=keep.accurate if keep.accurate is not None else n.accurate,
            min_size=max((v for v in (keep.min_size, n.min_size) if v is not None), default=None),
            max_size=min((v for v in (keep.max_size, n.max_size) if v is not None), default=None),
            nonzero=keep.nonzero or n.nonzero,
        )

    @property
    def counting(self) -> int:
        """Return how many of the epochs have snapshots taken with profiling on."""
        return sum(1 for n in self.rows["snapshots"].to_pylist() if n)


def tags(store_dir: Store) -> pa.Table:
    """Return every call site of a store: tag_id, file, line, module and function."""
    return reading.read_store(store_dir, lambda con: query.run(con, "tags"))


def epochs(store_dir: Store, window: Window | None = None) -> Epochs:
    """Return the epochs of a store window; raise ``StoreNotFound`` when it holds no snapshot."""
    return reading.read_store(store_dir, lambda con: _epochs(con, store_dir, window or Window()))


def window_snapshots(store_dir: Store, window: Window | None = None) -> list[SnapshotMeta]:
    """Return the snapshots of a store window with their metadata, oldest first, picked by the
    same rules as every window analysis (profiling-off snapshots included)."""
    rows = reading.read_store(
        store_dir, lambda con: query.run(con, "snapshots", **(window or Window()).params())
    )
    return [SnapshotMeta.from_row(row) for row in rows.to_pylist()]


def run_window(
    store: Store,
    name: str,
    window: Window | None,
    keep: Filter | None,
    grouping: Grouping | None,
    *,
    sizes: bool = False,
    check: tuple[str, dict[str, object]],
    **params: object,
) -> tuple[Epochs, pa.Table]:
    """Run ``queries/<name>.sql`` over a window, as every window analysis does: the defaults,
    the epochs (which raise when the window is empty), the tag filter's ids under the window's
    narrowest filter, the damage check of the snapshots it reads (``check``: a ``damaged*``
    query, which picks them as the analysis does, and its parameters beside the window's),
    then the query with the window, the selection, the size filters when
    ``sizes`` (queries whose rows are a snapshot's values) and the analysis's own parameters;
    through ``reading.read_store``, which lists again when files vanish under the read."""
    window = window or Window()
    grouping = grouping or Grouping()

    def read(con: query.Connection) -> tuple[Epochs, pa.Table]:
        span = _epochs(con, store, window)
        narrowed = span.narrowed(keep or Filter())  # snapshots taken with different filters
        tag_ids = _tag_ids(con, narrowed, span.narrower)
        check_name, check_params = check
        reading.check_window(con, check_name, {**window.params(), **check_params})
        extra = dict(params)
        if sizes:
            extra.update(
                min_size=narrowed.min_size, max_size=narrowed.max_size, nonzero=narrowed.nonzero
            )
        rows = query.run(
            con, name, **window.params(), **_selection(tag_ids, narrowed, grouping), **extra
        )
        return span, rows

    return reading.read_store(store, read)


def key_pattern(pattern: str) -> str:
    """Return the regular expression of a group pattern: a shell glob over the whole key when
    it has ``*?[``, else a substring (``history``, ``outliers``)."""
    if any(c in pattern for c in "*?["):
        return filters.glob_to_regex(pattern)
    return re.escape(pattern)


def bound(text: str | None) -> tuple[datetime | None, float | None]:
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


def _tag_ids(con: query.Connection, keep: Filter, also: Filter | None = None) -> list[int] | None:
    """Return the ids of the tags the filter's call-site parts keep (and those of ``also``),
    or None when all are kept.

    Accuracy is a property of a row, not of a call site, so it is applied by the queries.
    """
    return filters.kept_tag_ids(keep, lambda: query.run(con, "tags"), also)


def window_filters(store_dir: Store, window: Window | None = None) -> list[str]:
    """Return the filters a window's counting snapshots were taken with ('' for none)."""
    return reading.read_store(store_dir, lambda con: _window_filters(con, window or Window()))


def _window_filters(con: query.Connection, window: Window) -> list[str]:
    found: list[str] = query.run(con, "window_filters", **window.params())["filter"].to_pylist()
    return found


def _narrowest(con: query.Connection, window: Window) -> tuple[Filter | None, str | None]:
    """Return the filter a window is compared under when its snapshots' filters differ, and
    what to say; refuse (exit 2) filters of which none is contained by all the others."""
    texts = _window_filters(con, window)
    if len(texts) < 2:
        return None, None
    kept = [Filter.from_canonical(t) for t in texts]
    narrowest = next((f for f in kept if all(other.contains(f) for other in kept)), None)
    shown = ", ".join(repr(t) if t else "no filter" for t in texts)
    if narrowest is None:
        raise UsageError(
            f"the window's snapshots were taken with filters none of which is within all the "
            f"others ({shown}): narrow the window (--since/--until, --host) to one filter"
        )
    return narrowest, (
        f"the window's snapshots were taken with different filters ({shown}): all compared "
        f"under {narrowest.canonical()!r}, the narrowest"
    )


def _selection(tag_ids: list[int] | None, keep: Filter, grouping: Grouping) -> dict[str, object]:
    """Return the parameters that pick and group a window query's call sites."""
    return {
        "tag_ids": tag_ids,
        "accurate": keep.accurate,
        "by": grouping.by,
        "depth": grouping.depth,
    }


def _epochs(con: query.Connection, store_dir: Store, window: Window) -> Epochs:
    rows = query.run(con, "epochs", **window.params())
    counting = rows.filter(pc.greater(rows["snapshots"], 0))
    if counting.num_rows == 0:
        what = "with profiling on " if rows.num_rows else ""
        if window.hosts and not rows.num_rows:
            names = ", ".join(repr(h) for h in window.hosts)
            what = f"of a host matching {names} "
            raise StoreNotFound(
                f"no snapshots {what}in the window in {store_dir} (allocsnap ls shows its hosts)"
            )
        raise StoreNotFound(f"no snapshots {what}in the window in {store_dir}")
    warnings = []
    hosts = set(counting["host"].to_pylist())
    if len(hosts) > 1:
        # every host has its own epochs; say so only where a host has several
        several = [h for h in sorted(hosts) if counting["host"].to_pylist().count(h) > 1]
        if several:
            warnings.append(
                f"{len(several)} of the window's {len(hosts)} hosts cross epochs "
                f"({_some(several)}): counters restart or freeze between them, so each epoch "
                "is analysed on its own"
            )
    elif counting.num_rows > 1:
        names = ", ".join(counting["epoch"].to_pylist())
        warnings.append(
            f"the window crosses {counting.num_rows} epochs ({names}): counters restart or "
            "freeze between them, so each is analysed on its own"
        )
    off = pc.sum(rows["profiling_off"]).as_py() or 0
    if off:
        taken = "1 snapshot taken" if off == 1 else f"{off:,} snapshots taken"
        warnings.append(
            f"{taken} with profiling off (vm.mem_profiling=0) {'was' if off == 1 else 'were'} "
            "left out: counters are frozen then, and counting after it is a new epoch"
        )
    narrower, said = _narrowest(con, window)
    warnings += [said] if said is not None else []
    changed = counting.filter(pc.greater(counting["module_sets"], 1))["epoch"].to_pylist()
    if changed:
        warnings.append(
            f"modules were loaded or unloaded within {_some(changed)}: their call sites' "
            "series break there (a vanished row is not a free)"
        )
    return Epochs(
        rows=rows,
        snapshots=pc.sum(counting["snapshots"]).as_py(),
        first_at=pc.min(counting["first_at"]).as_py(),
        last_at=pc.max(counting["last_at"]).as_py(),
        warnings=tuple(warnings),
        narrower=narrower,
    )


def _some(names: list[str], shown: int = 6) -> str:
    """Return the first names, and how many more: a fleet has thousands."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")
