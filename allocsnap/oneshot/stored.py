"""``show REF`` and ``diff BEFORE AFTER`` of snapshots in a local store, answered from its
catalog and DuckDB alone.

The normal path imports pyarrow, numpy and the analyses before it reads a snapshot's rows,
which costs a new process more than the read itself (figures: docs/performance.md). Here
the catalog resolves the references (allocsnap/store/catalog.py), and DuckDB reads each
snapshot through the store's own views over the files that hold it and the tags
(store/views.py): queries/snapshot_samples.sql picks its rows, and their totals are checked
against its row as ``reading.check_snapshot`` checks them (snapshot_totals.sql). Then
queries/show.sql or diff.sql runs as on the normal path, with the same parameters, and the
report is the one present/tables.py makes (both build it in present/snapshot_lines.py, with
the warnings of comparing.py), so the output is the normal path's, byte for byte;
tests/test_stored.py holds the two equal.

It answers only what it can answer exactly: ``show`` and ``diff`` return False, and the
normal path runs and says whatever is to be said, for a remote store, a store the catalog
leaves to its views (a link in it, a file that cannot be read), a reference that names no
snapshot or several, a snapshot whose files are missing, fail to read or disagree with its
row, and a diff of snapshots taken with different filters or on two kernels (whose call
sites the normal path pairs: analysis/kernels.py).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from allocsnap import comparing
from allocsnap.errors import AllocsnapError
from allocsnap.oneshot.dumps import NotQuick
from allocsnap.oneshot.groups import Grouping
from allocsnap.present import snapshot_lines
from allocsnap.present.render import Format, Rows, render
from allocsnap.snapshot_meta import SnapshotMeta
from allocsnap.store import catalog, views
from allocsnap.store.remote import location
from allocsnap.units import parse_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, TextIO

    from allocsnap.store.remote import Location


# what snapshot_samples, snapshot_totals, show and diff read, each after what it reads
_DEFINITIONS = (
    "macro_call_site",
    "macro_dir_prefix",
    "macro_group_key",
    "macro_signed_calls",
    "view_samples",
    "view_tags",
)


class _Declined(Exception):
    """The normal path answers: it says what is amiss, in its words."""


class _Side:
    """One snapshot read: its row, and what its rows say beside the totals checked."""

    def __init__(self, meta: SnapshotMeta, counted_nothing: bool, modules: list[str]) -> None:
        self.meta = meta
        self.counted_nothing = counted_nothing
        # the modules loaded at it: recorded, or else those with rows (compare._modules_present)
        self.modules = list(meta.modules) if meta.modules is not None else modules


def is_reference(ref: str) -> bool:
    """Return True when ``analysis.load`` reads ``ref`` as a reference into the store: not
    stdin, and no file, pipe or device of that name (a folder's name is a reference)."""
    return ref != "-" and (not os.path.exists(ref) or os.path.isdir(ref))


def show(
    ref: str,
    store: Location | str,
    opening: views.Opening,
    *,
    hosts: list[str] | None = None,
    sort: str,
    by: str,
    top: int,
    fmt: Format,
    out: TextIO,
    err: TextIO,
) -> bool:
    """Print ``allocsnap show REF`` of a snapshot in a local store, among the snapshots of
    ``hosts`` (names or globs) when given, with the connection ``opening``; False when not
    answered here."""
    if sort not in ("bytes", "calls", "tag"):
        return False
    try:
        grouping = Grouping.parse(by)
        cat, (entry,) = _resolved(store, [ref], hosts)
        with _connection(cat, [entry], opening) as con:
            side = _kept(con, _meta(entry), "shown_rows")  # show.sql reads it: snapshot_rows
            rows = views.columns(
                con, "show", by=grouping.by, depth=grouping.depth, sort=sort, top_n=top or None
            )
    except (AllocsnapError, NotQuick, _Declined):
        return False
    groups = rows.pop("groups")
    meta = side.meta
    note = snapshot_lines.profiling_note(meta, side.counted_nothing)
    if note is not None:
        err.write(note + "\n")
    totals = (meta.rows, meta.total_bytes, meta.total_calls)  # checked equal to the rows'
    table: Any = Rows(rows)  # what render reads of a table
    report = snapshot_lines.show_report(
        meta, totals, table, groups[0] if groups else 0, grouping.by
    )
    render(report, fmt, out)
    return True


def diff(
    before: str,
    after: str,
    store: Location | str,
    opening: views.Opening,
    *,
    hosts: list[str] | None = None,
    by: str,
    top: int,
    min_delta: str,
    fmt: Format,
    out: TextIO,
    err: TextIO,
) -> bool:
    """Print ``allocsnap diff BEFORE AFTER`` of two snapshots in a local store, among the
    snapshots of ``hosts`` (names or globs) when given, with the connection ``opening``; False
    when not answered here."""
    try:
        grouping = Grouping.parse(by)
        smallest = parse_size(min_delta)
        cat, entries = _resolved(store, [before, after], hosts)
        metas = [_meta(e) for e in entries]
        if metas[0].filter != metas[1].filter or _kernels_differ(*metas):
            return False  # compared under the narrower filter, or their sites paired
        with _connection(cat, entries, opening) as con:
            old = _kept(con, metas[0], "before_rows")
            new = _kept(con, metas[1], "after_rows")
            hours = (new.meta.taken_at - old.meta.taken_at).total_seconds() / 3600
            rows = views.columns(
                con,
                "diff",
                by=grouping.by,
                depth=grouping.depth,
                min_delta=smallest,
                min_size=None,
                max_size=None,
                nonzero=False,
                after_modules=new.modules,
                hours=hours if hours >= 1 else None,
                top_n=top or None,
            )
    except (AllocsnapError, NotQuick, _Declined):
        return False
    changed = rows.pop("changed_groups")
    comparability = comparing.comparability(
        old.meta, new.meta, (old.counted_nothing, new.counted_nothing)
    )
    warnings = comparability + comparing.epoch_warnings(
        old.meta, new.meta, (old.modules, new.modules)
    )
    for line in snapshot_lines.diff_warnings(warnings, comparability, fmt):
        err.write(line + "\n")
    table: Any = Rows(rows)  # what render reads of a table
    report = snapshot_lines.diff_report(
        old.meta,
        new.meta,
        (
            (old.meta.total_bytes, old.meta.total_calls),
            (new.meta.total_bytes, new.meta.total_calls),
        ),
        table,
        changed[0] if changed else 0,
        warnings,
        grouping.by,
        per_hour=any(v is not None for v in rows["bytes_per_hour"]),
    )
    render(report, fmt, out)
    return True


def _kernels_differ(before: SnapshotMeta, after: SnapshotMeta) -> bool:
    """``kernels.LineOptions().applies``: two known kernels, whose sites the normal path pairs."""
    return before.kernel is not None and after.kernel is not None and before.kernel != after.kernel


def _resolved(
    store: Location | str, refs: list[str], hosts: list[str] | None
) -> tuple[catalog.Catalog, list[catalog.Entry]]:
    """Return a local store's catalog and the snapshots ``refs`` name in it, each among the
    snapshots of ``hosts`` (every host's when None), as ``analysis.load_all`` resolves them."""
    if isinstance(store, Path):
        root: Location = store
    else:
        root = location(store)  # a value --store refuses raises: the normal path says it
    if not isinstance(root, Path) or not all(is_reference(ref) for ref in refs):
        raise _Declined
    match = catalog.hosts_test(hosts)
    cat = catalog.open_catalog(root) if match is not None else None
    if cat is None or match is None:
        raise _Declined
    entries = [cat.named(ref, match) for ref in refs]
    found = [e for e in entries if e is not None]
    if len(found) < len(refs):
        raise _Declined
    return cat, found


@contextmanager
def _connection(
    cat: catalog.Catalog, entries: list[catalog.Entry], opening: views.Opening
) -> Iterator[views.Connection]:
    """Set up ``opening``'s connection so that its views read the snapshots and samples files
    of ``entries`` (below snapshots/ and samples/: ``host=H/date=D/NAME.parquet``) and every
    tags file, and yield it."""
    paths = sorted({e[catalog.FILE] for e in entries})
    if not all(f"samples/{path}" in cat.others for path in paths):
        raise _Declined
    files = views.StoreFiles(
        snapshots=[str(cat.root / "snapshots" / path) for path in paths],
        samples=[str(cat.root / "samples" / path) for path in paths],
        tags=sorted(str(cat.root / p) for p in cat.others if p.startswith("tags/")),
    )
    con = views.open_connection(files, only=_DEFINITIONS, opening=opening)
    try:
        yield con
    finally:
        con.close()


def _meta(entry: catalog.Entry) -> SnapshotMeta:
    return SnapshotMeta.from_row(catalog.as_row(entry))


def _kept(con: views.Connection, meta: SnapshotMeta, table: str) -> _Side:
    """Keep one snapshot's rows as ``table``, readable as ``snapshot_rows`` too, and return
    what they say; ``_Declined`` when they disagree with its row (``reading.check_snapshot``:
    the normal path reports it)."""
    views.keep(
        con,
        table,
        "snapshot_samples",
        snapshot_id=meta.snapshot_id,
        host=meta.host,
        day=meta.taken_at.date(),
        taken_at=meta.taken_at,
    )
    views.name_as(con, table, "snapshot_rows")
    found = views.columns(con, "snapshot_totals")
    totals = [found[name][0] for name in ("rows", "bytes", "calls")]
    if totals != [meta.rows, meta.total_bytes, meta.total_calls]:
        raise _Declined
    return _Side(meta, bool(found["counted_nothing"][0]), found["modules"][0])
