"""Saved text dumps into a store, each at a time of its own.

A dump's time is, in this order: ``--at`` (with ``--every``, spaced in the order given), a time
in its file name, or its mtime. One host never has two snapshots at one instant: dumps that
would share a time, with each other or with a snapshot the store holds, stop the import before
anything is written (a copy of the tree by ``git clone``, ``cp`` or ``unzip`` gives every file
one mtime, and a diff between two snapshots at one time compares nothing).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from allocsnap.errors import UsageError
from allocsnap.kernel import capture, fastparse, source
from allocsnap.model import Snapshot, SnapshotMeta
from allocsnap.store import writing
from allocsnap.units import natural_key, time_in_name

# What a dump's first lines show: the header, or a row (excerpts without one)
_DUMP_LINE = re.compile(rb"^(?:allocinfo - version|\s*-?\d+\s+-?\d+\s+\S+:\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Dated:
    """A dump and the time it will be stored at, with where that time came from."""

    dump: str
    at: datetime
    why: str  # --at | --every | file name | mtime | stdin


def expand(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return the dumps the arguments name, a folder's in natural order, and notes on it.

    In a folder, files that do not look like dumps (``meta.json``, notes) are left out and
    named; hidden files are ignored.
    """
    dumps: list[str] = []
    notes: list[str] = []
    for arg in args:
        folder = Path(arg)
        if arg == "-" or not folder.is_dir():
            dumps.append(arg)
            continue
        found: list[Path] = []
        skipped: list[Path] = []
        for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
            if path.name.startswith(".") or not path.is_file():
                continue
            (found if _looks_like_dump(path) else skipped).append(path)
        if skipped:
            notes.append(f"{arg}: left out {_listing([p.name for p in skipped])}: not dumps")
        if not found:
            raise UsageError(f"{arg} is a folder without dumps in it")
        dumps.extend(str(p) for p in found)
    return dumps, notes


def _looks_like_dump(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(source.HEAD)
    except OSError:
        return True  # reading it says why
    if source.compressed(head) is not None:
        return True
    return source.not_text(head) is None and bool(_DUMP_LINE.search(head))


def natural_order(dumps: list[str]) -> tuple[list[str], str | None]:
    """Return the dumps in natural order when they came in a shell glob's order, and a note.

    A shell sorts ``snap-*.txt`` as ``snap-1 snap-10 snap-2``; spacing those by ``--every``
    would put snap-10 before snap-2. Any other order is kept as given.
    """
    natural = sorted(dumps, key=natural_key)
    # bash sorts by the locale's collation: bytes under C, punctuation ignored under en_US
    collated = sorted(dumps, key=lambda d: (re.sub(r"[\W_]", "", d).casefold(), d))
    if dumps in (sorted(dumps), collated) and dumps != natural:
        return natural, "dumps spaced in the natural order of their names (snap-2 before snap-10)"
    return dumps, None


def dates(dumps: Sequence[str], *, at: datetime | None, every: timedelta | None) -> list[Dated]:
    """Return each dump's time; refuse (exit 2) when two would share one."""
    if every is not None and at is None:
        raise UsageError("--every spaces the dumps from --at: give --at T too")
    if every is not None and every <= timedelta(0):
        raise UsageError("--every must be positive")
    dated = []
    for i, dump in enumerate(dumps):
        if at is not None:
            when = at + i * every if every is not None else at
            dated.append(Dated(dump, when, "--every" if every is not None else "--at"))
        elif dump == "-":
            dated.append(Dated(dump, datetime.now(UTC), "stdin"))
        elif (named := time_in_name(Path(dump).name)) is not None:
            dated.append(Dated(dump, named, "file name"))
        else:
            try:
                mtime = Path(dump).stat().st_mtime
            except OSError as e:
                raise UsageError(f"cannot read {dump}: {e.strerror}") from e
            dated.append(Dated(dump, datetime.fromtimestamp(mtime, UTC), "mtime"))
    _refuse_shared_times(dated)
    return dated


def _refuse_shared_times(dated: list[Dated]) -> None:
    by_time: dict[datetime, list[Dated]] = {}
    for d in dated:
        by_time.setdefault(d.at, []).append(d)
    for when, same in by_time.items():
        if len(same) > 1 and len({d.dump for d in same}) > 1:
            names = _listing([d.dump for d in same])
            whys = sorted({d.why for d in same})
            raise UsageError(
                f"{names} would all be taken at {when:%Y-%m-%d %H:%M:%S} UTC (their "
                f"{' and '.join(whys)}), and a host has one snapshot per instant: give their "
                "times with --at T --every 60s (spaced in the order given), or import each "
                "with its own --at"
            )


@dataclass(frozen=True)
class Reboot:
    """A reboot inferred between two dumps: most call sites' calls fell at once."""

    before: str
    after: str
    fell: int  # call sites whose calls fell
    of: int  # call sites with calls in the earlier dump and present in both


REBOOT_MIN_SITES = 20  # fewer shared call sites with calls say nothing either way
REBOOT_SHARE = 0.6  # measured: 0.97-0.99 across a reboot; at most 0.27 within a boot (an unload)

# a snapshot's call sites (tag ids, sorted, unique) and the calls summed at each: numpy arrays
SiteCalls = tuple[Any, Any]


def reboot_between(old: Snapshot, new: Snapshot) -> tuple[int, int] | None:
    """Return (sites whose calls fell, sites compared) when ``new`` looks like a later boot."""
    return _sites_fell(_calls_by_site(old), _calls_by_site(new))


def _sites_fell(before: SiteCalls, after: SiteCalls) -> tuple[int, int] | None:
    """Return ``reboot_between``'s answer from each snapshot's calls by call site."""
    import numpy as np

    (old_tags, old_calls), (new_tags, new_calls) = before, after
    if not np.array_equal(old_tags, new_tags):  # a module loaded or unloaded between them
        _, old_at, new_at = np.intersect1d(
            old_tags, new_tags, assume_unique=True, return_indices=True
        )
        old_calls, new_calls = old_calls[old_at], new_calls[new_at]
    counted = old_calls > 0
    shared = int(counted.sum())
    fell = int((counted & (new_calls < old_calls)).sum())
    if shared >= REBOOT_MIN_SITES and fell >= REBOOT_SHARE * shared:
        return fell, shared
    return None


def _calls_by_site(snap: Snapshot, grouping: _Grouping | None = None) -> SiteCalls:
    """Return a snapshot's call sites (tag ids, sorted) and the calls of each, summed over
    its rows of one tag (underflowed counters count as negative, as signed_calls does)."""
    import numpy as np
    import pyarrow as pa

    rows = snap.samples
    sites, row_site = (grouping or _Grouping())(rows["tag_id"])
    calls = rows["calls"].cast(pa.int64(), safe=False)
    calls = (calls.fill_null(0) if calls.null_count else calls).to_numpy()
    summed = np.zeros(len(sites), dtype=np.int64)
    np.add.at(summed, row_site, calls)
    return sites, summed


class _Grouping:
    """Each row's call site among the sorted distinct ones, kept for the last tag column seen:
    the cached parser hands the same column to every dump of one kernel and module set."""

    def __init__(self) -> None:
        self._column: Any = None  # held, so its buffer is not reused while cached
        self._grouping: tuple[Any, Any] = (None, None)

    def __call__(self, column: Any) -> tuple[Any, Any]:
        import numpy as np

        if self._column is None or not _same_column(column, self._column):
            self._column = column
            self._grouping = np.unique(column.to_numpy(), return_inverse=True)
        return self._grouping


def _same_column(a: Any, b: Any) -> bool:
    """Return whether two one-chunk columns are views of the same buffer, whole."""
    return a.num_chunks == b.num_chunks == 1 and writing.same_buffer(a.chunk(0), b.chunk(0))


def import_dumps(
    root: Path,
    dated: Sequence[Dated],
    *,
    host: str,
    name: str | None,
    labels: dict[str, str],
    lenient: bool,
    boot: str | None = None,
    kernel: str | None = None,
    on_reboot: Callable[[Reboot, str], None] = lambda reboot, boot_id: None,
    on_written: Callable[[Dated, Snapshot], None],
) -> None:
    """Parse every dump and check its instant against the store, then write them all.

    Nothing is written when a dump is not readable, does not parse, or would take the
    instant of another snapshot of ``host`` in the store; re-importing the same dump the same
    way finds its own snapshot there and rewrites it unchanged.

    ``boot`` and ``kernel`` are recorded with every dump. Without ``boot``, a reboot between
    two dumps (in time order) is inferred when most call sites' calls fell at once; the dumps
    of the run then get one inferred boot id per boot (``…-inferred``), so windows see epochs.
    """
    if name is not None and len(dated) > 1:
        raise UsageError("--name names one snapshot: import one dump with it")
    stdin: dict[str, source.RawRead] = {}
    boots: dict[str, str | None] = dict.fromkeys((d.dump for d in dated), boot)
    # dumps of one kernel share their tags: the recorder's parser decodes only the numbers
    parser = fastparse.CachedParser()

    def snapshot_of(d: Dated) -> Snapshot:
        raw = stdin.get(d.dump) or source.read_dump(d.dump)
        if d.dump == "-":
            stdin[d.dump] = raw
        raw = replace(raw, boot_id=boots[d.dump], kernel=kernel or raw.kernel)
        return capture.snapshot(
            raw, name=name, host=host, at=d.at, labels=labels, lenient=lenient, parser=parser
        )

    kept = _Kept()  # the snapshots parsed before the writes, while they fit its budget

    def parsed(d: Dated) -> Snapshot:
        snap = snapshot_of(d)
        kept.keep(d, snap)
        return snap

    metas: dict[Dated, SnapshotMeta] = {}  # the first pass's, while no boot was inferred
    if boot is None and len(dated) > 1:  # first pass: read and parse all, infer reboots
        in_time = sorted(dated, key=lambda d: d.at)
        reboots: list[Reboot] = []
        previous: tuple[str, SiteCalls] | None = None  # a dump's origin and calls by site
        grouping = _Grouping()
        for d in in_time:
            snap = parsed(d)
            metas[d] = snap.meta
            calls = _calls_by_site(snap, grouping)
            if previous is not None and (fell := _sites_fell(previous[1], calls)) is not None:
                reboots.append(Reboot(previous[0], d.dump, *fell))
            previous = str(snap.meta.origin), calls
        if reboots:
            metas.clear()  # a boot id is part of a snapshot's id: read them again
            kept.clear()
            starts = {r.after for r in reboots}
            current = ""
            for d in in_time:
                if not current or d.dump in starts:
                    digest = hashlib.blake2b(
                        f"{host}\0{d.dump}\0{d.at.isoformat()}".encode(), digest_size=4
                    )
                    current = f"{digest.hexdigest()}-inferred"  # epochs name boots by 8 chars
                boots[d.dump] = current
            for r in reboots:
                on_reboot(r, str(boots[r.after]))
    instants = writing.Instants(root, once=True)  # nothing is written until all are checked
    for d in dated:  # read, parse and check each against the store
        meta = metas.get(d) or parsed(d).meta
        taken = instants.holder(meta.host, meta.taken_at) if root.exists() else None
        if taken is not None and taken["snapshot_id"] != meta.snapshot_id:
            raise UsageError(
                f"{d.dump}: the store holds snapshot {taken['snapshot_id']} of host {host} at "
                f"{meta.taken_at:%Y-%m-%d %H:%M:%S} UTC already "
                f"({taken['origin'] or 'recorded'}), and a host has one snapshot per instant: "
                "give this dump another time with --at (nothing was imported)"
            )
    writer = None
    for d in dated:
        snap = kept.take(d) or snapshot_of(d)
        writer = writer or writing.Writer(root, exclusive=True)
        writer.add(snap)
        on_written(d, snap)


class _Kept:
    """Snapshots parsed to be checked, kept to be written without reading their dumps again,
    as long as their memory (buffers not shared with a snapshot kept before: dumps of one
    kernel share their tag columns) stays within ``budget`` bytes; the rest are read again."""

    budget = 128 << 20  # 1,000 dumps of 3,360 rows take about 55 MB

    def __init__(self) -> None:
        self._snapshots: dict[Dated, Snapshot] = {}
        self._buffers: set[int] = set()
        self._size = 0

    def keep(self, d: Dated, snap: Snapshot) -> None:
        """Keep ``snap`` as ``d``'s when it fits the budget."""
        if d in self._snapshots:
            return
        new = {
            buffer.address: buffer.size
            for column in snap.samples.columns
            for chunk in column.chunks
            for buffer in chunk.buffers()
            if buffer is not None and buffer.address not in self._buffers
        }
        if self._size + sum(new.values()) <= self.budget:
            self._snapshots[d] = snap
            self._buffers.update(new)
            self._size += sum(new.values())

    def take(self, d: Dated) -> Snapshot | None:
        """Return ``d``'s snapshot when it was kept, and forget it."""
        return self._snapshots.pop(d, None)

    def clear(self) -> None:
        """Forget every snapshot (a boot id inferred changes their ids)."""
        self._snapshots.clear()
        self._buffers.clear()
        self._size = 0


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more"
