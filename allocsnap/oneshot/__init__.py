"""One-shot ``diff a.txt b.txt`` and ``show FILE`` on saved text dumps, in pure Python.

A kernel developer compares two dumps with ``sort | join | awk`` in a hundredth of a second;
the normal path imports pyarrow, numpy and DuckDB first (0.5 s and 150 MB). This path reads the
dumps (``dumps``), sums and compares them with the rules of queries/diff.sql and show.sql
(``groups``), and prints the same report (``reports``, through present/render.py): the same
bytes on stdout and stderr, tests/test_quick.py proves it on every capture in tests/data.

``show`` and ``diff`` of references into a local store (``first``, ``latest``, a name, an id,
a time) are answered from the store's catalog and DuckDB, without pyarrow (``stored``).

It answers only what it can answer exactly. ``diff`` and ``show`` return False — and the CLI
takes the normal path, which then says whatever is to be said — for a reference that is not a
plain text file, an option other than ``--by``, ``--top``, ``--min-delta``, ``--sort`` and
``--format``, and any dump ``dumps.read`` does not take (``NotQuick``). As the normal path
does, it reads a dump whose counters are all 0 as taken with profiling off, and says so.
"""

from __future__ import annotations

from allocsnap import comparing
from allocsnap.oneshot import dumps, groups, reports
from allocsnap.oneshot.dumps import NotQuick
from allocsnap.present import snapshot_lines
from allocsnap.present.render import Format, render

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from allocsnap.store.remote import Location
    from allocsnap.store.views import Opening


def diff(
    before: str,
    after: str,
    *,
    by: str,
    top: int,
    min_delta: str,
    fmt: Format,
    out: TextIO,
    err: TextIO,
    store: Location | str | None = None,
    hosts: list[str] | None = None,
) -> bool:
    """Print ``allocsnap diff BEFORE AFTER`` of two text dumps, or with ``store`` of two
    references into a local store among the snapshots of ``hosts`` (names or globs; all when
    None: allocsnap/oneshot/stored.py); False when not answered here."""
    if store is not None and not (dumps.is_plain_file(before) or dumps.is_plain_file(after)):
        opening = _opening()
        try:
            from allocsnap.oneshot import stored

            return stored.diff(
                before,
                after,
                store,
                opening,
                hosts=hosts,
                by=by,
                top=top,
                min_delta=min_delta,
                fmt=fmt,
                out=out,
                err=err,
            )
        finally:
            opening.close()
    try:
        if not (dumps.is_plain_file(before) and dumps.is_plain_file(after)):
            return False
        grouping = groups.Grouping.parse(by)
        smallest = _size(min_delta)
        old, new = dumps.read(before), dumps.read(after)
        comparability = comparing.comparability(
            old, new, (old.counted_nothing, new.counted_nothing)
        )
        warnings = comparability + comparing.epoch_warnings(old, new, (old.modules, new.modules))
        rows, changed = groups.diff_rows(old, new, grouping, min_delta=smallest, top_n=top or None)
    except NotQuick:
        return False
    for line in snapshot_lines.diff_warnings(warnings, comparability, fmt):
        err.write(line + "\n")
    render(reports.diff_report(old, new, rows, changed, warnings, grouping), fmt, out)
    return True


def show(
    path: str,
    *,
    sort: str,
    by: str,
    top: int,
    fmt: Format,
    out: TextIO,
    err: TextIO,
    store: Location | str | None = None,
    hosts: list[str] | None = None,
) -> bool:
    """Print ``allocsnap show FILE`` of a text dump, or with ``store`` of a reference into a
    local store among the snapshots of ``hosts`` (names or globs; all when None:
    allocsnap/oneshot/stored.py); False when not answered here."""
    if store is not None and not dumps.is_plain_file(path):
        opening = _opening()
        try:
            from allocsnap.oneshot import stored

            return stored.show(
                path,
                store,
                opening,
                hosts=hosts,
                sort=sort,
                by=by,
                top=top,
                fmt=fmt,
                out=out,
                err=err,
            )
        finally:
            opening.close()
    try:
        if sort not in ("bytes", "calls", "tag") or not dumps.is_plain_file(path):
            return False
        grouping = groups.Grouping.parse(by)
        dump = dumps.read(path)
        rows, count = groups.show_rows(dump, grouping, sort=sort, top_n=top or None)
    except NotQuick:
        return False
    note = snapshot_lines.profiling_note(dump, dump.counted_nothing)
    if note is not None:
        err.write(note + "\n")
    render(reports.show_report(dump, rows, count, grouping), fmt, out)
    return True


def _opening() -> Opening:
    """Start opening DuckDB for a store's snapshots (stored.py), before the modules that read
    them are imported: its start-up runs beside them and the catalog's read (views.Opening).
    DuckDB is never imported for dumps."""
    from allocsnap.store import views

    return views.Opening()


def _size(text: str) -> int:
    """``--min-delta`` in bytes; a value units.parse_size refuses is the normal path's to say."""
    from allocsnap.errors import UsageError
    from allocsnap.units import parse_size

    try:
        return parse_size(text)
    except UsageError as e:
        raise NotQuick(text) from e


__all__ = ["NotQuick", "diff", "show"]
