"""The recorder: snapshots on a drift-free schedule into a store, until a count, a duration or a
signal, with compaction of closed hours and retention along the way.

Slot k is due at start + k·interval on the monotonic clock, so a slow read delays only its own
snapshot; when a snapshot ends past the next slot's window, the slots in between are counted as
missed. SIGINT and SIGTERM finish the snapshot in flight, then stop. The library reports
progress through a callback; ``Status.line()`` is the text people see, and ``status_printer``
writes it onto a stream the caller gives. ``python -m allocsnap.recorder`` is the lean process
that ``allocsnap record`` becomes once its options are parsed (``exec_lean``).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO

import pyarrow as pa

from allocsnap import errors, filters, openmetrics
from allocsnap.errors import AllocinfoUnavailable, AllocsnapError, UsageError
from allocsnap.kernel import capture, fastparse
from allocsnap.model import Filter, Snapshot
from allocsnap.store import (
    compaction,
    durable,
    generations,
    housekeeping,
    locks,
    remote,
    upload,
    writing,
)
from allocsnap.units import format_size

UPLOAD_RETRY_MAX_S = 3600.0  # the longest wait between upload attempts while they fail
UPLOAD_STOP_S = 30.0  # at the stop, an upload still running gets this long, then is ended
# --textfile: node_exporter runs as another user and must read it; it holds aggregates and the
# top call sites, which a loopback `allocsnap serve` shows every local user too (docs/guide.md)
TEXTFILE_MODE = 0o644


@dataclass(frozen=True)
class Plan:
    """What to record and for how long."""

    interval: float  # seconds between slots
    count: int | None = None  # stop after this many snapshots
    duration: float | None = None  # stop when no slot is due before start + duration
    source: str = "auto"  # as --source: auto/procfs, a saved dump, or '-'
    keep: Filter = field(default_factory=Filter)
    host: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    retain: timedelta | None = None  # prune snapshots older than this after each compaction
    compact: bool = True  # compact closed hours and days as they close
    upload: str | None = None  # s3://bucket/prefix that compacted hours and days are copied to
    upload_retry_s: float = 60.0  # first wait after a failed upload; doubles up to an hour
    textfile: str | None = None  # metrics for node_exporter, rewritten after each snapshot
    top_n: int = openmetrics.DEFAULT_TOP  # call sites by bytes, and by growth, in the textfile
    max_series: int = openmetrics.DEFAULT_MAX_SERIES  # series in the textfile at most


@dataclass
class Status:
    """The recorder's progress, handed to the callback after every event."""

    # start | snapshot | unavailable | compacted | compaction-failed | uploaded | upload-failed
    # | textfile-failed | stop
    event: str
    taken: int = 0
    missed: int = 0  # slots that passed while an earlier snapshot was still being taken
    unavailable: int = 0  # reads that failed because the source was gone
    rows: int = 0  # rows stored in all
    last_rows: int = 0
    last_read_s: float | None = None  # time spent reading the source, last snapshot
    last_cpu_ms: float | None = None  # parse + filter + store, user CPU, last snapshot
    last_at: datetime | None = None
    store_bytes: int = 0
    elapsed_s: float = 0.0
    compactions: int = 0
    uploaded: int = 0  # compacted hours and days committed to the --upload store
    upload_failures: int = 0  # upload runs that failed (each retried later)
    message: str = ""  # what happened, for unavailable / compacted / failed events

    @property
    def rows_per_s(self) -> float:
        """Return rows stored per second since the start."""
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        """Return one line for people: snapshots taken, last read, store size, rows/s."""
        read = f"{self.last_read_s * 1000:.0f} ms" if self.last_read_s is not None else "-"
        at = self.last_at.strftime("%H:%M:%S") if self.last_at else "-"
        text = (
            f"{self.taken} snapshots (last {at}, read {read}, {self.last_rows:,} rows), "
            f"store {format_size(self.store_bytes)}, {self.rows_per_s:,.0f} rows/s"
        )
        if self.missed:
            text += f", {self.missed} missed"
        if self.unavailable:
            text += f", {self.unavailable} unavailable"
        return text


Report = Callable[[Status], None]


def record(
    store_dir: Path,
    plan: Plan,
    *,
    on_status: Report | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Status:
    """Record into ``store_dir`` until the plan ends or a signal arrives; return the last status.

    A failed write (disk full, permissions) raises ``StoreError`` after the in-flight snapshot
    is dropped; every earlier snapshot stays readable.
    """
    if plan.interval <= 0:
        raise UsageError("--interval must be positive")
    if plan.textfile is not None:
        check_textfile(Path(plan.textfile))
    report = on_status or (lambda _status: None)
    stop = threading.Event()
    # malloc hands freed memory back; Arrow's default pool keeps it
    pa.set_memory_pool(pa.system_memory_pool())
    with locks.recorder_lock(store_dir), on_signals(stop.set):
        return _Run(store_dir, plan, report, clock, stop).run()


class _Run:
    def __init__(
        self,
        root: Path,
        plan: Plan,
        report: Report,
        clock: Callable[[], float],
        stop: threading.Event,
    ) -> None:
        self.root, self.plan, self.report, self.clock, self.stop = root, plan, report, clock, stop
        self.status = Status(event="start")
        self.parser = fastparse.CachedParser()
        self.masks = filters.TagMasks()
        self.misses = 0
        self.outage: tuple[datetime, int, str] | None = None  # since, reads, why
        self.hour: datetime | None = None
        self.child: subprocess.Popen[str] | None = None  # housekeeping running beside us
        self.target = remote.Remote(plan.upload) if plan.upload else None
        self.uploader: subprocess.Popen[str] | None = None  # an upload running beside us
        self.upload_due: float | None = None  # when the next upload starts (monotonic)
        self.upload_wait = plan.upload_retry_s  # before the next attempt, should this one fail
        self.previous: Snapshot | None = None  # the last snapshot, for the textfile's growth

    def run(self) -> Status:
        recovered = housekeeping.recover(self.root)
        self.writer = writing.Writer(self.root)
        self.status.store_bytes = generations.store_size(self.root)
        if recovered.temp_removed or recovered.files_removed:
            self.status.message = (
                f"recovered: removed {recovered.temp_removed} temp and "
                f"{recovered.files_removed} unfinished files"
            )
        if recovered.notes:  # a damaged file: recording goes on, readers will name it too
            more = f" (and {len(recovered.notes) - 1} more)" if len(recovered.notes) > 1 else ""
            self.status.message = f"warning: {recovered.notes[0]}{more}"
        self._emit("start")
        start = self.clock()
        if self.target is not None:
            self.upload_due = start  # what earlier runs compacted and did not upload yet
        interval, k = self.plan.interval, 0
        try:
            while not self.stop.is_set():
                if self.plan.count is not None and self.status.taken >= self.plan.count:
                    break
                due = start + k * interval
                if self.plan.duration is not None and due >= start + self.plan.duration:
                    break
                if self.stop.wait(max(0.0, due - self.clock())):
                    break
                self._take()
                self.status.elapsed_s = self.clock() - start
                if self.plan.compact:
                    self._housekeeping()
                self._uploads()
                # A snapshot that ran past the next slot's window forfeits the slots it covered.
                now_slot = math.floor((self.clock() - start) / interval)
                if now_slot > k + 1:
                    self.status.missed += now_slot - (k + 1)
                    k = now_slot
                else:
                    k += 1
        finally:
            self._reap()  # a running compaction is waited for: no child outlives the recorder
            self._last_upload()
        self.status.elapsed_s = self.clock() - start
        self._emit("stop")
        return self.status

    def _take(self) -> None:
        plan = self.plan
        try:
            raw = capture.read(plan.source, plan.keep)
        except (AllocinfoUnavailable, UsageError) as e:
            # The file went away (profiling shut down, a dump deleted): note it and go on.
            now = datetime.now(UTC)
            since, reads, _ = self.outage or (now, 0, "")
            self.outage = (since, reads + 1, str(e))
            self.status.unavailable += 1
            self.status.message = str(e)
            self._emit("unavailable")
            return
        cpu = time.process_time()
        at = raw.taken_at if raw.source in ("procfs", "ioctl") else datetime.now(UTC)
        host = plan.host or raw.host or capture.UNKNOWN_HOST
        snap = capture.snapshot(
            raw,
            keep=plan.keep,
            host=host,
            at=at,
            labels=plan.labels,
            parser=self.parser,
            snapshot_id=_snapshot_id(host, raw.boot_id, at),
            masks=self.masks,
        )
        if self.outage is not None:
            snap = _with_outage_note(snap, *self.outage)
            self.outage = None
        self.writer.add(snap)
        if self.parser.misses != self.misses:  # a full parse: its garbage back to the system
            self.misses = self.parser.misses
            trim()
        status = self.status
        status.last_cpu_ms = (time.process_time() - cpu) * 1000
        status.taken += 1
        status.rows += snap.meta.rows
        status.last_rows = snap.meta.rows
        status.last_read_s = raw.read_s
        status.last_at = snap.meta.taken_at
        status.store_bytes += self.writer.bytes_written
        self.writer.bytes_written = 0
        status.message = ""
        self._emit("snapshot")
        self._textfile(snap)

    def _textfile(self, snap: Snapshot) -> None:
        """Write the snapshot's metrics for node_exporter (``--textfile``); a failed write is
        said and recording goes on (the next snapshot tries again)."""
        plan = self.plan
        if plan.textfile is None:
            return
        previous, self.previous = self.previous, snap
        limits = openmetrics.Limits(top_n=plan.top_n, max_series=plan.max_series)
        try:
            text = openmetrics.exposition(snap, previous, limits=limits, openmetrics=False).text
            durable.publish(text.encode(), Path(plan.textfile), TEXTFILE_MODE)
        except AllocsnapError as e:
            self.status.message = f"textfile not written: {e}"
            self._emit("textfile-failed")

    def _housekeeping(self) -> None:
        """Once an hour (and at the first snapshot), compact what closed and apply --retain.

        The work runs in a child process beside the recorder; its result is reported at the
        first snapshot after it ends (or at the stop, which waits for it).
        """
        if self.child is not None and self.child.poll() is not None:
            self._reap()
        now = datetime.now(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        if hour == self.hour or self.child is not None:
            return
        self.hour = hour
        try:
            self.child = compaction.start_housekeeping(self.root, self.plan.retain)
        except AllocsnapError as e:
            self.status.message = f"compaction failed: {e}"
            self._emit("compaction-failed")

    def _reap(self) -> None:
        child, self.child = self.child, None
        if child is None:
            return
        try:
            done, pruned = compaction.housekeeping_result(child)
        except AllocsnapError as e:
            self.status.message = f"compaction failed: {e}"
            self._emit("compaction-failed")
            return
        if done.units or pruned:
            self.status.compactions += done.units
            self.status.store_bytes = generations.store_size(self.root)
            self.status.message = (
                f"compacted {done.snapshots} snapshots into {done.units} file(s), "
                f"{format_size(done.bytes_before)} -> {format_size(done.bytes_after)}"
            )
            if pruned:
                self.status.message += f"; pruned {pruned} older than --retain"
            self._emit("compacted")
            if done.units and self.target is not None and self.upload_due is None:
                self.upload_due = self.clock()
        trim()

    def _uploads(self) -> None:
        """Start an upload when one is due and none runs; report one that ended.

        Uploads run in a child process (pyarrow's S3 client never loads here), one at a time,
        after the compaction that made their files; a failed one is retried after a wait that
        doubles up to an hour, while recording goes on.
        """
        if self.uploader is not None and self.uploader.poll() is not None:
            self._reap_upload()
        due = self.upload_due
        if self.target is None or self.uploader is not None or self.child is not None:
            return
        if due is None or self.clock() < due:
            return
        try:
            self.uploader = upload.start_upload(self.root, self.target)
        except AllocsnapError as e:
            self._upload_failed(str(e))

    def _reap_upload(self, timeout: float | None = None) -> None:
        child, self.uploader = self.uploader, None
        if child is None:
            return
        try:
            done = upload.upload_result(child, timeout)
        except AllocsnapError as e:
            self._upload_failed(str(e))
            return
        self.upload_due, self.upload_wait = None, self.plan.upload_retry_s
        if done.units or done.removed:
            self.status.uploaded += done.units
            self.status.message = (
                f"uploaded {done.units} compacted file(s) to {self.target}, "
                f"{format_size(done.bytes)}"
            )
            if done.removed:
                self.status.message += f"; removed {done.removed} superseded there"
            self._emit("uploaded")

    def _upload_failed(self, why: str) -> None:
        wait = self.upload_wait
        self.upload_due = self.clock() + wait
        self.upload_wait = min(wait * 2, UPLOAD_RETRY_MAX_S)
        self.status.upload_failures += 1
        self.status.message = f"upload failed: {why}; retrying in {wait:.0f} s, still recording"
        self._emit("upload-failed")

    def _last_upload(self) -> None:
        """At the stop: let a running upload finish, or run a due one, for ``UPLOAD_STOP_S``."""
        if self.target is None:
            return
        if self.uploader is None and self.upload_due is not None:
            try:
                self.uploader = upload.start_upload(self.root, self.target)
            except AllocsnapError as e:
                self._upload_failed(str(e))
        self._reap_upload(UPLOAD_STOP_S)

    def _emit(self, event: str) -> None:
        self.status.event = event
        self.report(self.status)


def check_textfile(path: Path) -> None:
    """Refuse a ``--textfile`` that cannot be written: its folder missing, or a folder itself."""
    if not path.parent.is_dir():
        raise UsageError(f"--textfile {path}: the folder {path.parent} does not exist")
    if path.is_dir() and not path.is_symlink():
        raise UsageError(f"--textfile {path} is a folder: name a file in it (allocsnap.prom)")
    if not path.name.endswith(".prom"):
        raise UsageError(
            f"--textfile {path}: node_exporter reads only files named *.prom; name it so"
        )


def status_printer(stream: TextIO, tty: bool, every_s: float = 600.0) -> Report:
    """Return a callback that writes the status for people onto ``stream``: a live line on a
    terminal, else a log line now and then, and one line per event."""
    clear = "\r\033[K" if tty else ""
    last = [-every_s]

    def show(status: Status) -> None:
        if status.message and status.event != "snapshot":
            stream.write(f"{clear}{status.message}\n")
        if status.event == "stop":
            stream.write(clear)
        elif tty:
            stream.write(f"{clear}{status.line()}")
        elif status.event == "snapshot" and status.elapsed_s - last[0] >= every_s:
            last[0] = status.elapsed_s
            stream.write(f"{status.line()}\n")
        stream.flush()

    return show


def exec_lean(store_dir: Path, plan: Plan, *, tty: bool) -> NoReturn:
    """Replace this process by ``python -m allocsnap.recorder``, which records ``plan``.

    The same pid (systemd, signals) and exit codes, without what parsed the command line:
    typer and click would stay resident otherwise (docs/recorder.md has the figures).
    """
    fields = {k: v for k, v in plan.__dict__.items() if k not in ("keep", "retain")}
    spec = {
        **fields,
        "keep": plan.keep.__dict__,
        "retain": plan.retain.total_seconds() if plan.retain is not None else None,
    }
    env = {"ARROW_DEFAULT_MEMORY_POOL": "system", **os.environ}
    args = [sys.executable, "-m", "allocsnap.recorder", str(store_dir), json.dumps(spec)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [*args, "tty" if tty else "-"], env)


def _main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    retain = spec.pop("retain")
    plan = Plan(
        **{**spec, "keep": Filter(**spec["keep"])},
        retain=timedelta(seconds=retain) if retain is not None else None,
    )
    tty = argv[2] == "tty"
    try:
        status = record(Path(argv[0]), plan, on_status=status_printer(sys.stderr, tty))
    except AllocsnapError as e:
        return errors.report(e, sys.stderr)
    print(status.line(), file=sys.stderr)
    return 0


def trim() -> None:
    """Hand free heap memory back to the system (glibc keeps it otherwise; a no-op elsewhere)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _load_libc()


def _snapshot_id(host: str, boot_id: str | None, taken_at: datetime) -> str:
    """Return a 12-hex-digit id from what makes a recorded snapshot unique (not its text)."""
    key = f"{host}\0{boot_id or ''}\0{taken_at.isoformat()}\0recorder".encode()
    return hashlib.blake2b(key, digest_size=6).hexdigest()


def _with_outage_note(snap: Snapshot, since: datetime, reads: int, why: str) -> Snapshot:
    note = (
        f"source unavailable for {reads} read(s) since {since.isoformat(timespec='seconds')} "
        f"before this snapshot: {why}"
    )
    return replace(snap, meta=snap.meta._replace(notes=(*snap.meta.notes, note)))


@contextmanager
def on_signals(action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` on SIGINT and SIGTERM for the duration (main thread only): the recorder
    sets its stop event, ``allocsnap serve`` shuts its server down."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        action()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
