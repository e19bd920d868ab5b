"""``allocsnap loop``: run a command again and again, a snapshot after each run, then judge.

The command runs ``warmup`` times uncounted, allocsnap warms itself up (snapshots that are not
stored), then a baseline snapshot (run 0) is taken, then it
runs ``runs`` times, each followed by a settle pause (and, if asked, a write of 3 to
/proc/sys/vm/drop_caches) and a snapshot through the recorder's capture path (the ioctl where
the kernel has one, filtered there), taken and stored in a forked child so that allocsnap's own
memory is not counted as the command's. The snapshots go into the store named
``loop-<id>-run-<k>`` with the labels ``loop=<id>`` and ``run=<k>``, so every other command can
read them later; ``analysis.loop`` judges them on the run axis.

The command's own output passes through onto stderr (stdout carries only the report, data);
progress goes to the caller's callback. A run that
exits non-zero stops the loop (its number and exit code are kept); SIGINT or SIGTERM stops it
after the snapshot in flight, and the runs done so far are judged. On a terminal, Ctrl-C
reaches the command too (one process group): it ends the run in flight, which is not counted.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from allocsnap import analysis, filters, recorder
from allocsnap.errors import AllocinfoUnavailable, AllocsnapError, UsageError
from allocsnap.kernel import capture, fastparse, source
from allocsnap.model import Filter, Snapshot
from allocsnap.store import child, writing

OWN_WARMUP = 3  # snapshots taken in children and not stored, before the baseline
STDERR_FD = 2  # the command writes here, unbuffered: its output and ours stay in order


@dataclass(frozen=True)
class LoopPlan:
    """What to run, how often, and how to snapshot after each run."""

    command: tuple[str, ...]
    runs: int = 20
    warmup: int = 2
    settle_s: float = 1.0
    drop_caches: bool = False
    source: str = "auto"  # as --source: auto (ioctl on 7.3+), ioctl or procfs
    keep: Filter = field(default_factory=Filter)
    host: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class LoopProgress:
    """Where a loop is, handed to the callback after every event."""

    # start | warmup | run | snapshot | drop-caches | failed | interrupted | done
    event: str
    loop: str
    run: int = 0  # the run that just ended (0: the baseline snapshot)
    warmup: bool = False  # the run was a warm-up run (uncounted)
    exit_code: int | None = None  # of the run that just ended
    run_s: float | None = None  # wall time of that run
    snapshot_s: float | None = None  # wall time of the snapshot just taken
    rows: int = 0  # rows of that snapshot
    message: str = ""


@dataclass
class LoopRun:
    """What a loop did: its id, the runs it counted, their times and how it stopped."""

    loop: str
    command: tuple[str, ...]
    planned: int
    runs: int = 0  # counted runs done, each with its snapshot
    run_s: list[float] = field(default_factory=list)  # wall time of each counted run
    snapshot_s: list[float] = field(default_factory=list)  # each snapshot, baseline first
    warmup: int = 0
    settle_s: float = 0.0
    drop_caches: bool = False
    stopped: str = "done"  # done | failed | interrupted
    failed_run: int | None = None  # the run that exited non-zero (negative: a warm-up run)
    exit_code: int | None = None  # its exit code (negative: killed by that signal)
    source: str = ""  # where the snapshots were read from: ioctl or procfs

    def per_run_s(self) -> float | None:
        """Return the mean wall time of a counted run of the command."""
        return sum(self.run_s) / len(self.run_s) if self.run_s else None

    def snapshot_per_run_s(self) -> float | None:
        """Return the mean wall time of one snapshot (read, parse, filter, store)."""
        return sum(self.snapshot_s) / len(self.snapshot_s) if self.snapshot_s else None


Report = Callable[[LoopProgress], None]


def new_loop_id() -> str:
    """Return a fresh loop id: 8 random hex digits (names stay short and unique per store)."""
    return secrets.token_hex(4)


def check_kernel(plan: LoopPlan) -> str:
    """Read the kernel once as the loop will, before the command runs; return the source used.

    Refuses (``AllocinfoUnavailable``, as ``snap`` does) without a profiling kernel or without
    the rights to read it, and when profiling is off: frozen counters would judge nothing.
    """
    if plan.source not in ("auto", "ioctl", "procfs"):
        raise UsageError(f"--source must be auto, ioctl or procfs for a loop, not {plan.source!r}")
    raw = capture.read(plan.source, _site_filter(plan.keep))
    if raw.profiling == 0:
        raise AllocinfoUnavailable(
            "allocation profiling is off (vm.mem_profiling=0): counters are frozen and a loop "
            "would measure nothing; switch it on with 'sysctl vm.mem_profiling=1'"
        )
    return raw.source


def run_loop(
    store_dir: Path,
    plan: LoopPlan,
    *,
    loop_id: str | None = None,
    on_progress: Report | None = None,
) -> LoopRun:
    """Run the plan's command, snapshot after each run into ``store_dir``; return what it did.

    Call ``check_kernel`` first: a kernel that cannot be read fails here only after the
    warm-up runs.
    """
    if not plan.command:
        raise UsageError("no command to loop: give it after '--' (allocsnap loop -- ./test)")
    if plan.runs < 1 or plan.warmup < 0 or plan.settle_s < 0:
        raise UsageError("-n must be at least 1, --warmup and --settle at least 0")
    loop = loop_id or new_loop_id()
    # allocsnap's own memory is in what it measures: malloc hands freed memory back (with
    # recorder.trim), Arrow's default pool would keep it
    pa.set_memory_pool(pa.system_memory_pool())
    report = on_progress or (lambda _p: None)
    stop = threading.Event()
    done = LoopRun(
        loop,
        plan.command,
        plan.runs,
        warmup=plan.warmup,
        settle_s=plan.settle_s,
        drop_caches=plan.drop_caches,
    )
    writer = writing.Writer(store_dir)
    keep = _site_filter(plan.keep)
    parser, masks = fastparse.CachedParser(), filters.TagMasks()  # the recorder's, kept warm

    def take(run: int) -> Snapshot:
        return capture.snapshot(
            capture.read(plan.source, keep),
            keep=keep,
            name=analysis.loop_name(loop, run),
            host=plan.host,
            labels={**plan.labels, **analysis.loop_labels(loop, run)},
            parser=parser,
            masks=masks,
        )

    def take_and_store(run: int) -> dict[str, Any]:
        snap = take(run)
        writer.add(snap)
        return {"rows": snap.meta.rows, "source": snap.meta.source}

    def snapshot(run: int) -> None:
        if plan.drop_caches:
            source.drop_caches()
            report(LoopProgress("drop-caches", loop, run))
        started = time.monotonic()
        taken = _in_child(lambda: take_and_store(run))
        elapsed = time.monotonic() - started
        done.snapshot_s.append(elapsed)
        done.source = taken["source"]
        report(LoopProgress("snapshot", loop, run, snapshot_s=elapsed, rows=taken["rows"]))

    report(LoopProgress("start", loop))
    with recorder.on_signals(stop.set):
        for k in range(1, plan.warmup + 1):
            code, elapsed = _run(plan.command)
            report(LoopProgress("warmup", loop, k, warmup=True, exit_code=code, run_s=elapsed))
            if stop.is_set():  # before the baseline: nothing to judge
                return _stopped(done, "interrupted", report)
            if code != 0:
                done.failed_run, done.exit_code = -k, code
                return _stopped(done, "failed", report)
        # allocsnap's own warm-up, whatever --warmup: a snapshot here warms the parser that
        # each child inherits; then a few children whose snapshots are not stored, so that the
        # pages this process writes between forks have been copied once (copy-on-write moves
        # them from one page-fault call site to another) before the baseline
        take(0)
        recorder.trim()
        gc.collect()
        gc.freeze()  # the collector no longer writes to every object's page after a fork
        for _ in range(OWN_WARMUP):
            _in_child(lambda: {"rows": take(0).meta.rows})
        stop.wait(plan.settle_s)
        snapshot(0)
        for k in range(1, plan.runs + 1):
            if stop.is_set():
                return _stopped(done, "interrupted", report)
            code, elapsed = _run(plan.command)
            report(LoopProgress("run", loop, k, exit_code=code, run_s=elapsed))
            if code != 0 and stop.is_set():  # Ctrl-C ended the run with us: not counted
                return _stopped(done, "interrupted", report)
            if code != 0:
                done.failed_run, done.exit_code = k, code
                return _stopped(done, "failed", report)
            stop.wait(plan.settle_s)  # a stop cuts the pause short; the run's snapshot is kept
            snapshot(k)
            done.runs = k
            done.run_s.append(elapsed)
    return _stopped(done, "done", report)


def _in_child(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` in a forked child and return its JSON-able result, or raise its error.

    allocsnap's own memory is in what a snapshot counts: what the child allocates to read,
    parse and store a snapshot is all freed when it exits, so none of it is counted as the
    command's in the next run. A signal does not cut the child short (its handler only sets
    its own copy of the stop flag): the snapshot in flight completes.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        code = 0
        try:
            try:
                answer: dict[str, Any] = {"result": work()}
            except AllocsnapError as e:
                answer = {"error": str(e), "exit_code": int(e.exit_code)}
            with os.fdopen(write_end, "w") as out:
                json.dump(answer, out)
        except BaseException:  # a bug: its traceback, for its fixer, then out
            traceback.print_exc()
            code = 70
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as answers:
        text = answers.read()
    _, status = os.waitpid(pid, 0)
    answer = json.loads(text) if text else {}
    if "result" in answer:
        result: dict[str, Any] = answer["result"]
        return result
    if "error" in answer:
        raise child.ChildError(answer["error"], answer["exit_code"])
    raise AllocsnapError(f"the snapshot failed in its child process (wait status {status})")


def _stopped(done: LoopRun, how: str, report: Report) -> LoopRun:
    gc.unfreeze()  # as before the loop, for a caller that goes on
    done.stopped = how
    report(LoopProgress(how, done.loop, done.runs, exit_code=done.exit_code))
    return done


def _run(command: Sequence[str]) -> tuple[int, float]:
    """Run the command with our stdin and stderr, its stdout onto our stderr too (our stdout is
    the report: data); return its exit code and wall time."""
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    try:
        code = subprocess.call(list(command), stdout=STDERR_FD)
    except OSError as e:
        raise UsageError(f"cannot run {command[0]}: {e.strerror}") from e
    return code, time.monotonic() - started


def _site_filter(keep: Filter) -> Filter:
    """Return the part of a filter that picks call sites: a size bound taken at capture would
    cut a series where it crosses the bound, so sizes apply to whole series in the judgement."""
    return replace(keep, min_size=None, max_size=None, nonzero=False)
