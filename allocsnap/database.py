"""The notebook way in: ``allocsnap.open(store)`` returns a ``Database`` (docs/sql.md).

A ``Database`` holds one DuckDB connection on which the store's views (``snapshots``, ``tags``,
``samples``, ``series``, ``latest``, ``deltas``) and allocsnap's macros are registered.
``sql()`` runs any SQL there and returns a DuckDB relation; the analyses (``diff``, ``show``,
``leaks``, ``growth``, ``top``, ``history``, ``outliers``) take the CLI's snapshot references,
windows, filters and groupings and return Arrow tables, each the rows the command prints. Epoch
warnings (a comparison across a reboot, profiling off, modules unloaded) are issued as
``EpochWarning``s, which a notebook shows under the cell. The analyses read the store as it is
when called; the connection sees the files listed at ``open`` until ``refresh()``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TypedDict, Unpack

import pyarrow as pa

from allocsnap import analysis, units
from allocsnap.analysis import query
from allocsnap.errors import EpochWarning, UsageError
from allocsnap.model import Filter, SnapshotMeta
from allocsnap.store import remote

Size = int | str
"""A byte count, or text in human units (``1M``, ``64K``)."""
Bound = str | datetime | timedelta | None
"""A window bound: a time, a duration back from the newest snapshot, or text (``2h``)."""
Hosts = str | Sequence[str] | None
"""``--host``: a host name or shell glob, or several; None for every host."""


class Filters(TypedDict, total=False):
    """The CLI's filter options, as keyword arguments of the analyses."""

    module: str  # glob; "built-in" for code outside modules
    function: str  # glob
    file: str  # glob over the source file as printed
    line: int
    min_size: Size
    max_size: Size
    accurate: bool  # True: only accurate rows; False: only "accurate:no" rows
    nonzero: bool


class Database:
    """A store opened for SQL and the analyses; close it, or use it in a ``with`` block."""

    def __init__(
        self,
        store_dir: str | os.PathLike[str] | remote.Location = "allocsnap-data",
        *,
        sandbox: bool = False,
    ) -> None:
        """Open the store; ``sandbox`` limits SQL to reading its files (``allocsnap sql``
        without ``--unsafe``: docs/commands.md), and ``refresh`` is then refused."""
        self.path = remote.location(store_dir)  # a directory, or a remote.Remote (s3://…)
        self.sandbox = sandbox
        self._session = analysis.Session(self.path, explore=True, sandbox=sandbox)  # shared
        self._con = self._session.con

    # -- SQL -------------------------------------------------------------------------------------

    @property
    def connection(self) -> query.Connection:
        """Return the DuckDB connection itself, for DuckDB's own API (``register``, UDFs)."""
        return self._con

    def sql(self, text: str, /, **params: object) -> query.Relation:
        """Return a DuckDB relation of any SQL over the store's views, with bound ``$params``.

        Nothing is read until it is fetched: ``.to_arrow_table()``, ``.df()`` (pandas),
        ``.pl()`` (polars), ``.fetchall()``, or shown in a notebook. Text with several
        statements runs them all and returns the last one's relation.
        """
        return query.relation(self._con, text, **params)

    def arrow(self, text: str, /, **params: object) -> pa.Table:
        """Return all rows of any SQL over the store's views as an Arrow table."""
        return query.run_text(self._con, text, **params)

    def printable(self, text: str, /, **params: object) -> pa.Table:
        """Return all rows of any SQL as ``arrow`` does, intervals as DuckDB prints them
        (``allocsnap sql``: the text and CSV outputs show what DuckDB's shell shows)."""
        return query.intervals_as_text(self._con, self.arrow(text, **params))

    def refresh(self) -> None:
        """Point the views at the store's files as they are now (a recorder added snapshots,
        compaction replaced files); views and macros of your own stay."""
        if self.sandbox:
            raise UsageError("a sandboxed Database reads the files listed at open: open anew")
        self._session.refresh()

    def close(self) -> None:
        """Close the connection; relations made from it can no longer be read."""
        self._session.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"allocsnap.Database({str(self.path)!r})"

    # -- snapshot references and the analyses ----------------------------------------------------

    def snapshot(self, ref: str = "latest", *, host: Hosts = None) -> SnapshotMeta:
        """Return the stored snapshot a reference names: first, latest, a name, an id (prefix)
        or a time (the latest at or before it); among ``host``'s snapshots when given."""
        return analysis.resolve(self._session, ref, host)

    def diff(
        self,
        before: str = "first",
        after: str = "latest",
        *,
        by: str = "tag",
        top: int | None = 20,
        min_delta: Size = 0,
        host: Hosts = None,
        **filters: Unpack[Filters],
    ) -> pa.Table:
        """Return the groups whose live bytes or calls changed between two snapshots, as
        ``allocsnap diff`` prints them: references into the store, snapshot files or dumps."""
        old, new = analysis.load_all([before, after], self._session, host=host)
        result = analysis.diff(
            old,
            new,
            keep=_filter(filters),
            grouping=analysis.Grouping.parse(by),
            top_n=top,
            min_delta=_size(min_delta),
            per_hour=not (analysis.is_dump(before) or analysis.is_dump(after)),
        )
        _warn(result.warnings)
        return result.rows

    def show(
        self,
        snapshot: str = "latest",
        *,
        by: str = "tag",
        sort: str = "bytes",
        top: int | None = 20,
        host: Hosts = None,
        **filters: Unpack[Filters],
    ) -> pa.Table:
        """Return one snapshot's groups filtered and sorted, as ``allocsnap show`` prints them."""
        result = analysis.show(
            analysis.load(snapshot, self._session, host=host),
            keep=_filter(filters),
            grouping=analysis.Grouping.parse(by),
            sort=sort,
            top_n=top,
        )
        return result.rows

    def leaks(
        self,
        since: Bound = None,
        until: Bound = None,
        host: Hosts = None,
        *,
        by: str = "tag",
        top: int | None = 20,
        min_rate: Size = "64K",
        min_growth: Size = "1M",
        confidence: float = 0.99,
        max_points: int = 120,
        rejected: bool = False,
        fleet: bool = False,
        **filters: Unpack[Filters],
    ) -> pa.Table:
        """Return the leak candidates of a window, steepest first, as ``allocsnap leaks`` does;
        with ``rejected`` also the series that grew past the floors but were judged otherwise
        (their ``verdict`` and ``reason`` say why); with ``fleet``, one row per group instead:
        on how many hosts, and which, it leaks."""
        settings = analysis.LeakSettings(
            max_points=max_points,
            min_growth=_size(min_growth),
            min_rate=_size(min_rate),
            min_confidence=confidence,
        )
        result = analysis.leaks(
            self._session,
            _window(since, until, host),
            keep=_filter(filters),
            grouping=analysis.Grouping.parse(by, window=True),
            settings=settings,
            top_n=top,
            fleet=fleet,
        )
        _warn(result.epochs.warnings)
        if rejected and not fleet:
            return pa.concat_tables([result.rows, result.others])
        return result.rows

    def growth(
        self,
        since: Bound = None,
        until: Bound = None,
        host: Hosts = None,
        *,
        split: Bound = None,
        by: str = "tag",
        top: int | None = 20,
        max_points: int = 200,
        **filters: Unpack[Filters],
    ) -> pa.Table:
        """Return per group the median of the window's later part against its earlier part,
        as a rate per hour (``allocsnap growth``)."""
        result = analysis.growth(
            self._session,
            _window(since, until, host),
            split=_bound(split),
            keep=_filter(filters),
            grouping=analysis.Grouping.parse(by, window=True),
            max_points=max_points,
            top_n=top,
        )
        _warn(result.epochs.warnings)
        return result.rows

    def top(
        self,
        since: Bound = None,
        until: Bound = None,
        host: Hosts = None,
        *,
        by: str = "tag",
        top: int | None = 20,
        max_points: int | None = 120,
        **filters: Unpack[Filters],
    ) -> pa.Table:
        """Return the largest movers of a window, up and down, first against last snapshot of
        each epoch (``allocsnap top``), reading at most ``max_points`` snapshots per epoch."""
        result = analysis.top(
            self._session,
            _window(since, until, host),
            keep=_filter(filters),
            grouping=analysis.Grouping.parse(by, window=True),
            top_n=top,
            max_points=max_points,
        )
        _warn(result.epochs.warnings)
        return result.rows

    def history(
        self,
        pattern: str,
        since: Bound = None,
        until: Bound = None,
        host: Hosts = None,
        *,
        by: str = "tag",
        points: int | None = None,
        **filters: Unpack[Filters],
    ) -> pa.Table:
        """Return the raw series (key, epoch, taken_at, bytes, calls, rows) of the groups whose
        key contains ``pattern`` (or matches it, when it has ``*?[``); every snapshot unless
        ``points`` bounds them per epoch (``allocsnap history --format csv``)."""
        result = analysis.history(
            self._session,
            pattern,
            _window(since, until, host),
            keep=_filter(filters),
            grouping=analysis.Grouping.parse(by, window=True),
            max_points=points,
        )
        _warn(result.epochs.warnings)
        return result.rows

    def outliers(
        self,
        pattern: str | None = None,
        since: Bound = None,
        until: Bound = None,
        host: Hosts = None,
        *,
        by: str = "tag",
        top: int | None = 20,
        min_score: float = 3.5,
        min_gap: Size = "1M",
        min_rate: Size = "64K",
        min_hosts: int = 3,
        every_host: bool = False,
        **filters: Unpack[Filters],
    ) -> pa.Table:
        """Return the hosts whose bytes or growth for a group stand out from the fleet's median
        (``allocsnap outliers``); with ``every_host``, every scored host."""
        settings = analysis.OutlierSettings(
            min_score=min_score,
            min_gap=_size(min_gap),
            min_rate=_size(min_rate),
            min_hosts=min_hosts,
        )
        result = analysis.outliers(
            self._session,
            pattern,
            _window(since, until, host),
            keep=_filter(filters),
            grouping=analysis.Grouping.parse(by),
            settings=settings,
            every_host=every_host,
            top_n=top,
        )
        _warn(result.epochs.warnings)
        return result.rows


def _filter(filters: Filters) -> Filter:
    """Return the analyses' Filter for the keyword arguments, sizes parsed as the CLI does."""
    min_size, max_size = filters.get("min_size"), filters.get("max_size")
    return Filter(
        module=filters.get("module"),
        function=filters.get("function"),
        file=filters.get("file"),
        line=filters.get("line"),
        min_size=None if min_size is None else _size(min_size),
        max_size=None if max_size is None else _size(max_size),
        accurate=filters.get("accurate"),
        nonzero=filters.get("nonzero", False),
    )


def _size(value: Size) -> int:
    return value if isinstance(value, int) else units.parse_size(value)


def _bound(value: Bound) -> str | None:
    """Return a window bound as the CLI's text: ISO 8601 for a time, seconds for a duration."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds()}s"
    return value


def _window(since: Bound, until: Bound, host: Hosts) -> analysis.Window:
    hosts = host if host is None or isinstance(host, str) else tuple(host)
    return analysis.Window(_bound(since), _bound(until), hosts)


def _warn(messages: Iterable[str]) -> None:
    for message in messages:
        warnings.warn(message, EpochWarning, stacklevel=3)
