"""Analyses over a window of a store, inside its epochs: leaks, growth, top, history, outliers."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap.analysis.grouping import Grouping
from allocsnap.analysis.session import Store
from allocsnap.analysis.window import Epochs, Window, bound, key_pattern, run_window
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.model import Filter


@dataclass(frozen=True)
class LeakSettings:
    """The thresholds of ``leaks`` (docs/analyses.md explains each one)."""

    max_points: int | None = 120  # None: every snapshot
    blocks: int = 10
    min_points: int = 8
    min_growth: int = 1 << 20
    min_rate: float = 64 * 1024
    min_confidence: float = 0.99
    min_up_share: float = 0.4
    max_drawdown: float = 0.5
    max_kpss: float = 0.216
    max_wander_fall: float = 0.01
    min_steps: float = 2.5
    min_late_share: float = 0.1
    min_jump_share: float = 0.5
    max_step_lag1: float = -0.2
    min_step_skew_z: float = 2.326  # one-sided 99% for the skewness of symmetric steps
    short_hours: float = 2.0
    look_back: float = 3.0  # window spans read before a window, for a staircase of few steps


@dataclass(frozen=True)
class LeaksResult:
    """Leak candidates of a window, ranked, and the series that grew but were not judged leaks."""

    epochs: Epochs
    rows: pa.Table  # queries/leaks.sql columns, verdict 'leak' only, cut to --top
    found: int  # leaks before --top cut the list
    others: pa.Table  # series past the growth floors that are not leaks, with their verdict
    settings: LeakSettings
    fleet: bool = False  # rows are FLEET_COLUMNS, one per key: on which hosts it leaks


FLEET_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("hosts", pa.int64()),  # hosts where the key leaks
        ("of_hosts", pa.int64()),  # hosts in the window
        ("leaking_hosts", pa.list_(pa.string())),
        ("series", pa.int64()),  # leaking series (a host with two leaking boots has two)
        ("median_bytes_per_hour", pa.float64()),  # over the leaking hosts' steepest series
        ("max_bytes_per_hour", pa.float64()),
        ("growth_bytes", pa.int64()),  # summed over the leaking series
    ]
)


def leaks(
    store_dir: Store,
    window: Window | None = None,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    settings: LeakSettings | None = None,
    top_n: int | None = 20,
    fleet: bool = False,
) -> LeaksResult:
    """Return the groups that grow persistently inside each epoch of a window, steepest first;
    with ``fleet``, one row per group: on how many hosts, and which, it leaks."""
    settings = settings or LeakSettings()
    if settings.max_points is not None and settings.max_points < 2:
        raise UsageError("--max-points must be 0 (every snapshot) or at least 2")
    keep = keep or Filter()
    span, rows = run_window(
        store_dir,
        "leaks",
        window,
        keep,
        grouping,
        sizes=True,
        check=("damaged", {"max_points": settings.max_points}),
        max_points=settings.max_points,
        blocks=settings.blocks,
        min_points=settings.min_points,
        min_growth=settings.min_growth,
        min_rate=settings.min_rate,
        min_confidence=settings.min_confidence,
        min_up_share=settings.min_up_share,
        max_drawdown=settings.max_drawdown,
        max_kpss=settings.max_kpss,
        max_wander_fall=settings.max_wander_fall,
        min_steps=settings.min_steps,
        min_late_share=settings.min_late_share,
        min_jump_share=settings.min_jump_share,
        max_step_lag1=settings.max_step_lag1,
        min_step_skew_z=settings.min_step_skew_z,
        short_hours=settings.short_hours,
        look_back=settings.look_back,
    )
    is_leak = pc.equal(rows["verdict"], "leak")
    found = rows.filter(is_leak)
    if fleet:
        counting = span.rows.filter(pc.greater(span.rows["snapshots"], 0))
        found = _by_key(found, len(set(counting["host"].to_pylist())))
    return LeaksResult(
        epochs=span,
        rows=found.slice(0, top_n) if top_n else found,
        found=found.num_rows,
        others=rows.filter(pc.invert(is_leak)),
        settings=settings,
        fleet=fleet,
    )


def _by_key(leaks: pa.Table, of_hosts: int) -> pa.Table:
    """Return one row per key of the leaking series: most hosts first, then steepest."""
    per_key: dict[str, dict[str, float]] = {}
    growth: dict[str, int] = {}
    series: dict[str, int] = {}
    for row in leaks.select(["key", "host", "bytes_per_hour", "growth_bytes"]).to_pylist():
        key = row["key"]
        rates = per_key.setdefault(key, {})
        rates[row["host"]] = max(
            rates.get(row["host"], row["bytes_per_hour"]), row["bytes_per_hour"]
        )
        growth[key] = growth.get(key, 0) + row["growth_bytes"]
        series[key] = series.get(key, 0) + 1
    medians = {key: statistics.median(rates.values()) for key, rates in per_key.items()}
    order = sorted(per_key, key=lambda k: (-len(per_key[k]), -medians[k], k))
    out = [
        {
            "key": key,
            "hosts": len(per_key[key]),
            "of_hosts": of_hosts,
            "leaking_hosts": sorted(per_key[key]),
            "series": series[key],
            "median_bytes_per_hour": medians[key],
            "max_bytes_per_hour": max(per_key[key].values()),
            "growth_bytes": growth[key],
        }
        for key in order
    ]
    return pa.Table.from_pylist(out, schema=FLEET_SCHEMA)


@dataclass(frozen=True)
class WindowResult:
    """Rows of a window analysis (growth, top, history) and the epochs they come from."""

    epochs: Epochs
    rows: pa.Table  # the columns of the query of the same name


def growth(
    store_dir: Store,
    window: Window | None = None,
    *,
    split: str | None = None,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    max_points: int | None = 200,
    top_n: int | None = 20,
) -> WindowResult:
    """Return per group the median of the window's later part against its earlier part, per hour.

    Each part is read at ``max_points`` snapshots at most, or all of them (None).

    ``split`` is where the later part starts: a time, a duration back from the newest snapshot,
    or None for the middle of the window.
    """
    split_at, split_back = bound(split)
    keep = keep or Filter()
    parts: dict[str, object] = {
        "split_at": split_at,
        "split_back": split_back,
        "max_points": max(2, max_points) if max_points is not None else None,
    }
    span, rows = run_window(
        store_dir,
        "growth",
        window,
        keep,
        grouping,
        sizes=True,
        check=("damaged_growth", parts),
        **parts,
        top_n=top_n or None,
    )
    return WindowResult(epochs=span, rows=rows)


def top(
    store_dir: Store,
    window: Window | None = None,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    top_n: int | None = 20,
    max_points: int | None = 120,
) -> WindowResult:
    """Return the groups whose live bytes moved most, up or down, from first to last snapshot of
    each epoch in the window, reading at most ``max_points`` snapshots per epoch (None: all)."""
    keep = keep or Filter()
    span, rows = run_window(
        store_dir,
        "top",
        window,
        keep,
        grouping,
        sizes=True,
        check=("damaged", {"max_points": max_points}),
        top_n=top_n or None,
        max_points=max_points,
    )
    return WindowResult(epochs=span, rows=rows)


def history(
    store_dir: Store,
    pattern: str,
    window: Window | None = None,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    max_points: int | None = 200,
) -> WindowResult:
    """Return the series (key, epoch, taken_at, bytes, calls, rows) of the groups matching
    ``pattern``: a shell glob over the whole key when it has ``*?[``, else a substring."""
    grouping = grouping or Grouping()
    span, rows = run_window(
        store_dir,
        "history",
        window,
        keep,
        grouping,
        check=("damaged", {"max_points": max(2, max_points) if max_points else None}),
        pattern=key_pattern(pattern),
        max_points=max(2, max_points) if max_points else None,
    )
    if rows.num_rows == 0:
        raise StoreNotFound(f"no {grouping.by} matching {pattern!r} in the window")
    return WindowResult(epochs=span, rows=rows)


@dataclass(frozen=True)
class OutlierSettings:
    """The thresholds of ``outliers`` (docs/analyses.md)."""

    min_score: float = 3.5
    min_gap: int = 1 << 20
    min_rate: float = 64 * 1024
    min_hosts: int = 3


@dataclass(frozen=True)
class OutliersResult:
    """Per group and host the values and scores against the fleet; outliers first."""

    epochs: Epochs
    rows: pa.Table  # queries/outliers.sql columns; only outliers unless every host was asked
    found: int  # outliers before --top cut the list
    settings: OutlierSettings


def outliers(
    store_dir: Store,
    pattern: str | None = None,
    window: Window | None = None,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    settings: OutlierSettings | None = None,
    every_host: bool = False,
    top_n: int | None = 20,
) -> OutliersResult:
    """Return the hosts whose bytes or growth for a group stand out from the fleet's median.

    ``pattern`` picks groups as ``history`` does (a glob over the whole key, else a substring);
    ``every_host`` returns every scored host, not only the outliers.
    """
    grouping = grouping or Grouping()
    settings = settings or OutlierSettings()
    if grouping.by == "host":
        raise UsageError("outliers compares hosts with each other: --by host has nothing to add")
    if settings.min_hosts < 2:
        raise UsageError("--min-hosts must be at least 2")
    span, rows = run_window(
        store_dir,
        "outliers",
        window,
        keep,
        grouping,
        check=("damaged_outliers", {}),
        pattern=key_pattern(pattern or ""),
        min_hosts=settings.min_hosts,
        min_score=settings.min_score,
        min_gap=settings.min_gap,
        min_rate=settings.min_rate,
    )
    found = pc.sum(rows["outlier"].cast(pa.int64())).as_py() or 0
    if not every_host:
        rows = rows.filter(rows["outlier"])
    return OutliersResult(
        epochs=span,
        rows=rows.slice(0, top_n) if top_n else rows,
        found=found,
        settings=settings,
    )
