"""Analyses over a window of a store, inside its epochs: leaks, growth, top, history."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap import filters, query, store, units
from allocsnap.analysis.grouping import Grouping
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.model import Filter


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


def tags(store_dir: store.Location) -> pa.Table:
    """Return every call site of a store: tag_id, file, line, module and function."""
    with query.connect(store.open_store(store_dir)) as con:
        return query.run(con, "tags")


def epochs(store_dir: store.Location, window: Window | None = None) -> Epochs:
    """Return the epochs of a store window; raise ``StoreNotFound`` when it holds no snapshot."""
    with query.connect(store.open_store(store_dir)) as con:
        return _epochs(con, store_dir, window or Window())


def leaks(
    store_dir: store.Location,
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


def _tag_ids(store_dir: store.Location, keep: Filter) -> list[int] | None:
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


def _epochs(con: query.Connection, store_dir: store.Location, window: Window) -> Epochs:
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
    store_dir: store.Location,
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
    store_dir: store.Location,
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
    store_dir: store.Location,
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
