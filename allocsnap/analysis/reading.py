"""Reading a store while it changes and when it is damaged.

Every analysis reads a store through ``read_store``: the store is listed, a connection gets its
views, and the analysis runs. A file that compaction or prune removed between the listing and
the read is not an error: the store is listed afresh and the analysis runs again (a few times
at most). A damaged file is never answered around: what a snapshot reads is checked against
its own row (rows, live bytes, calls), and a file that cannot be read or disagrees is named, with
what to do; with ``--skip-damaged`` (``skipping_damaged``) its snapshots are left out instead,
each one said in a ``DamagedSkipped`` warning (docs/storage.md, "Damaged files").
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap.analysis import query
from allocsnap.analysis.session import Session, Store
from allocsnap.errors import (
    REPAIR,
    DamagedSkipped,
    QueryError,
    StoreDamaged,
    StoreError,
    StoreNotFound,
)
from allocsnap.model import SnapshotMeta
from allocsnap.store import layout
from allocsnap.store.layout import StoreFiles

T = TypeVar("T")
RETRIES = 20  # fresh listings after files vanished under a read, before giving up

_skip_damaged: ContextVar[bool] = ContextVar("allocsnap_skip_damaged", default=False)


@contextmanager
def skipping_damaged(skip: bool = True) -> Iterator[None]:
    """Leave damaged files' snapshots out of every read inside (``--skip-damaged``)."""
    token = _skip_damaged.set(skip)
    try:
        yield
    finally:
        _skip_damaged.reset(token)


class Mismatch(Exception):
    """Snapshots whose samples read back other than their rows say (raised inside a read)."""

    def __init__(self, snapshots: list[tuple[str, str, date]], why: str) -> None:
        self.snapshots = snapshots  # (host, snapshot_id, date)
        self.why = why
        super().__init__(why)


def read_store(where: Store, body: Callable[[query.Connection], T]) -> T:
    """Run ``body`` on a connection over the store's files; list again and rerun when a file
    vanished under it; name a damaged file, or leave it out when skipping damaged files.

    Given a ``Session``, ``body`` runs on its connection first; if that reading fails (a file
    gone since its listing, or damage), it runs again here on a fresh listing, which names
    the damage or leaves it out."""
    prepare = None
    if isinstance(where, Session):
        try:
            with query.translated_errors():
                return body(where.con)
        except (Mismatch, StoreError, QueryError):
            prepare = where.prepare
            where = where.location
    left_out: dict[str, str] = {}  # path -> why
    vanished = 0
    while True:
        try:
            files = _without(layout.open_store(where), left_out)
        except StoreError as e:
            # a partition pruned while it was being listed
            if not isinstance(e.__cause__, FileNotFoundError):
                raise
            vanished = _again(vanished, str(e.__cause__.filename))
            continue
        try:
            with query.connect(files) as con:
                if prepare is not None:  # what the session's connection held, on this one too
                    prepare(con)
                return body(con)
        except Mismatch as e:
            if gone := _gone(files):
                vanished = _again(vanished, gone)
                continue
            damaged = dict.fromkeys(_samples_files(files, e.snapshots), e.why)
            if not damaged:
                ids = ", ".join(sid for _host, sid, _day in e.snapshots[:3])
                raise StoreDamaged(f"snapshot {ids} is damaged: {e.why}; {REPAIR}") from None
        except (StoreError, QueryError) as e:
            if gone := _gone(files):
                vanished = _again(vanished, gone)
                continue
            damaged = {path: _reason(str(e), path) for path in _named(files, str(e))}
            if not damaged:
                raise
        new = {path: why for path, why in damaged.items() if path not in left_out}
        path, why = next(iter(new.items() or damaged.items()))
        if not _skip_damaged.get() or not new:
            raise StoreDamaged(
                f"{path} is damaged: {why}; {REPAIR}, or pass --skip-damaged to leave it out",
                tuple(damaged),
            )
        for path, why in new.items():
            for each in _pair(path):
                left_out[each] = why
            warnings.warn(DamagedSkipped(f"left out damaged file {path}: {why}"), stacklevel=2)


def _again(vanished: int, gone: str) -> int:
    """Count one more reading that files vanished under; past ``RETRIES``, say the store
    keeps changing (a file compacted or pruned away is never called damaged)."""
    if vanished < RETRIES:
        return vanished + 1
    raise StoreError(
        f"the store changed under {RETRIES + 1} readings in a row (files compacted or pruned "
        f"meanwhile, such as {gone}); try again when compaction or prune is done"
    )


def check_snapshot(meta: SnapshotMeta, samples: pa.Table) -> None:
    """Raise ``Mismatch`` unless a stored snapshot's samples match its row's totals."""
    calls = pc.cast(samples["calls"], pa.int64(), safe=False)
    found = (
        samples.num_rows,
        pc.sum(samples["bytes"]).as_py() or 0,
        pc.sum(calls).as_py() or 0,
    )
    expected = (meta.rows, meta.total_bytes, meta.total_calls)
    if found != expected:
        raise Mismatch(
            [(meta.host, meta.snapshot_id, meta.taken_at.date())],
            f"snapshot {meta.snapshot_id} reads {found[0]:,} rows and {found[1]:,} bytes where "
            f"its row says {expected[0]:,} and {expected[1]:,}",
        )


def check_window(con: query.Connection, name: str, params: dict[str, object]) -> None:
    """Raise ``Mismatch`` when a snapshot a window analysis reads disagrees with its row:
    ``queries/<name>.sql`` (``damaged``, ``damaged_growth``, ...) names those of its picks."""
    rows = query.run(con, name, **params).to_pylist()
    if rows:
        r = rows[0]
        raise Mismatch(
            [(r["host"], r["snapshot_id"], r["date"]) for r in rows],
            f"snapshot {r['snapshot_id']} reads {r['found_rows']:,} rows and "
            f"{r['found_bytes']:,} bytes where its row says {r['expected_rows']:,} and "
            f"{r['expected_bytes']:,}"
            + (f" ({len(rows)} snapshots disagree)" if len(rows) > 1 else ""),
        )


def _without(files: StoreFiles, left_out: dict[str, str]) -> StoreFiles:
    if not left_out:
        return files
    kept = files._replace(
        snapshots=[p for p in files.snapshots if p not in left_out],
        samples=[p for p in files.samples if p not in left_out],
        tags=[p for p in files.tags if p not in left_out],
    )
    if not kept.snapshots:
        raise StoreNotFound("no snapshots left once the damaged files are left out")
    return kept


def _listed(files: StoreFiles) -> list[str]:
    return [*files.snapshots, *files.samples, *files.tags]


def _gone(files: StoreFiles) -> str | None:
    """Return a file of the listing that is gone (compacted or pruned meanwhile), if any."""
    paths = _listed(files)
    if files.filesystem is None:
        return next((p for p in paths if not os.path.exists(p)), None)
    import pyarrow.fs as pafs

    try:
        infos = files.filesystem.get_file_info(paths)
    except OSError:
        return None
    return next((i.path for i in infos if i.type == pafs.FileType.NotFound), None)


def _named(files: StoreFiles, message: str) -> list[str]:
    """Return the listed files an error message names (DuckDB names the file it failed on)."""
    return [p for p in _listed(files) if p in message]


def _reason(message: str, path: str) -> str:
    """Return an engine's error message about ``path`` without the path it repeats."""
    text = message.split(": ", 1)[-1]  # DuckDB's "Invalid Input Error: "
    return without_path(text, path)


def without_path(text: str, path: str) -> str:
    """Return an error text about ``path`` without the path: what follows it, else what
    precedes it."""
    if path not in text:
        return text
    before, after = text.split(path, 1)
    return after.lstrip("'\": ") or before.rstrip("'\" :")


def _pair(path: str) -> list[str]:
    """Return a snapshots file and its samples file (either one given); a tags file alone."""
    for this, other in (
        ("/samples/host=", "/snapshots/host="),
        ("/snapshots/host=", "/samples/host="),
    ):
        at = path.rfind(this)
        if at >= 0:
            return [path, path[:at] + other + path[at + len(this) :]]
    return [path]


def _samples_files(files: StoreFiles, snapshots: Iterable[tuple[str, str, date]]) -> list[str]:
    """Return the samples files that hold these snapshots' newest generation, by reading the
    snapshots files of their partitions."""
    import pyarrow.parquet as pq  # here: only a damaged store is read file by file

    found = []
    for host, snapshot_id, day in snapshots:
        folder = f"/host={host}/date={day.isoformat()}/"
        newest: tuple[int, str] | None = None
        for path in files.snapshots:
            if folder not in path:
                continue
            try:
                t = pq.read_table(
                    path, columns=["snapshot_id", "generation"], filesystem=files.filesystem
                )
            except (OSError, pa.ArrowException):
                continue
            for sid, generation in zip(
                t["snapshot_id"].to_pylist(), t["generation"].to_pylist(), strict=True
            ):
                if sid == snapshot_id and (newest is None or generation > newest[0]):
                    newest = (generation, path)
        if newest is not None:
            samples = _pair(newest[1])[1]
            if samples not in found:
                found.append(samples)
    return found
