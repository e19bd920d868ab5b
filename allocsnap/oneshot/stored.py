"""``show REF`` of a snapshot in a local store, answered from its catalog and DuckDB alone.

The normal path imports pyarrow, numpy and the analyses before it reads one snapshot's rows:
about 0.4 s of a new process's 0.5 s on a 2-core machine, where the target is 0.2 s
(docs/performance.md). Here the catalog resolves the reference (allocsnap/store/catalog.py),
and DuckDB reads the snapshot through the store's own views over the two files that hold it
and the tags (store/views.py): queries/snapshot_samples.sql picks its rows, their totals are
checked against its row as ``reading.check_snapshot`` checks them (snapshot_totals.sql), and
queries/show.sql groups them. The report is the one ``tables.show_report`` makes
(present/snapshot_lines.py), so the output is the normal path's, byte for byte; tests/
test_stored.py holds the two equal.

It answers only what it can answer exactly: ``show`` returns False, and the normal path runs
and says whatever is to be said, for a remote store, a store the catalog leaves to its views
(a link in it, a file that cannot be read), a reference that names no snapshot or several,
and a snapshot whose files are missing, fail to read or disagree with its row.
"""

from __future__ import annotations

import os
from pathlib import Path

from allocsnap.errors import AllocsnapError
from allocsnap.oneshot.dumps import NotQuick
from allocsnap.oneshot.groups import Grouping
from allocsnap.present import snapshot_lines
from allocsnap.present.render import Format, Rows, render
from allocsnap.snapshot_meta import SnapshotMeta
from allocsnap.store import catalog, views
from allocsnap.store.remote import location

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

    from allocsnap.store.remote import Location


def is_reference(ref: str) -> bool:
    """Return True when ``analysis.load`` reads ``ref`` as a reference into the store: not
    stdin, and no file, pipe or device of that name (a folder's name is a reference)."""
    return ref != "-" and (not os.path.exists(ref) or os.path.isdir(ref))


def show(
    ref: str,
    store: Location | str,
    *,
    sort: str,
    by: str,
    top: int,
    fmt: Format,
    out: TextIO,
    err: TextIO,
) -> bool:
    """Print ``allocsnap show REF`` of a snapshot in a local store; False when not answered."""
    root = _local(store)
    if root is None or not is_reference(ref) or sort not in ("bytes", "calls", "tag"):
        return False
    cat = catalog.open_catalog(root)
    if cat is None:
        return False
    try:
        grouping = Grouping.parse(by)
        entry = cat.named(ref, lambda _host: True)
        if entry is None:
            return False
        meta = SnapshotMeta.from_row(catalog.as_row(entry))
        found = _show_rows(cat, entry, meta, grouping, sort, top)
    except (AllocsnapError, NotQuick):  # a grouping or a time refused, a file unreadable
        return False
    if found is None:
        return False
    rows, groups, counted_nothing = found
    note = snapshot_lines.profiling_note(meta, counted_nothing)
    if note is not None:
        err.write(note + "\n")
    totals = (meta.rows, meta.total_bytes, meta.total_calls)  # checked equal to the rows'
    table: Any = Rows(rows)  # what render reads of a table
    render(snapshot_lines.show_report(meta, totals, table, groups, grouping.by), fmt, out)
    return True


def _local(store: Location | str) -> Path | None:
    """Return a local store's folder; None for a remote one, or a value --store refuses."""
    if isinstance(store, Path):
        return store
    try:
        where = location(store)
    except AllocsnapError:
        return None
    return where if isinstance(where, Path) else None


def _show_rows(
    cat: catalog.Catalog,
    entry: catalog.Entry,
    meta: SnapshotMeta,
    grouping: Grouping,
    sort: str,
    top: int,
) -> tuple[dict[str, list[Any]], int, bool] | None:
    """Return show.sql's columns of one snapshot (``groups`` taken out), how many groups there
    are, and whether it counted nothing; None when its rows disagree with its row."""
    path = entry[catalog.FILE]  # host=H/date=D/NAME.parquet, the same below samples/
    if f"samples/{path}" not in cat.others:
        return None
    files = views.StoreFiles(
        snapshots=[str(cat.root / "snapshots" / path)],
        samples=[str(cat.root / "samples" / path)],
        tags=sorted(str(cat.root / p) for p in cat.others if p.startswith("tags/")),
    )
    con = views.open_connection(files)
    try:
        views.keep(
            con,
            "snapshot_rows",
            "snapshot_samples",
            snapshot_id=meta.snapshot_id,
            host=meta.host,
            day=meta.taken_at.date(),
            taken_at=meta.taken_at,
        )
        totals = views.columns(con, "snapshot_totals")
        if [totals[k][0] for k in ("rows", "bytes", "calls")] != [
            meta.rows,
            meta.total_bytes,
            meta.total_calls,
        ]:
            return None
        rows = views.columns(
            con, "show", by=grouping.by, depth=grouping.depth, sort=sort, top_n=top or None
        )
    finally:
        con.close()
    groups = rows.pop("groups")
    return rows, groups[0] if groups else 0, bool(totals["counted_nothing"][0])
