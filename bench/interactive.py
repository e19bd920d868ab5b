"""The commands people type by hand (issue 17): CPU, wall time and peak memory of a new process.

Each command runs as a new process, as a user types it, several times; every figure is the
median of those runs. CPU is the child's user + system time as ``os.wait4`` reports it (its own
and its children's, so a shell pipeline counts all its stages), which a loaded machine disturbs
less than the wall time; peak RSS is GNU time's ``%M`` (the largest of the command's
processes). The peer is the shell pipeline people use today (``sort | join | awk``,
bench/cli.py's ``PIPELINE``) on the same two dumps, measured in the same run.

Rows: ``--help`` of the top level and of every command; ``diff a.txt b.txt`` and ``show FILE``
on the two real 7.3 captures; ``diff first latest``, ``show latest`` and ``ls`` in a host-day
store (bench/generate.py's 8,640 snapshots x 8,000 tags in compacted hours, plus today's hot
files written by ``allocsnap import``); ``import`` of a folder of dumps in one call, per dump
beyond the first.

Run: ``.venv/bin/python bench/run.py --only interactive`` (``--quick``: fewer runs, a three-hour
store, 100 dumps). ``ALLOCSNAP_BENCH_HOSTDAY=DIR`` reuses a store bench/generate.py made
(copied, never written); ``ALLOCSNAP_BENCH_DUMPS=N`` imports N dumps;
``ALLOCSNAP_BENCH_BEFORE=DIR`` runs every command on the code in DIR too, alternating run by
run with this checkout's, and gives both in the notes. Both are compiled to bytecode first, as
an installed package is (``ALLOCSNAP_BENCH_BYTECODE=0``: not). ``ALLOCSNAP_BENCH_ROWS=one-shot`` (or
``help``, ``store``, ``import``, comma-separated) runs only those rows: ``one-shot`` is the
diff and show of two text dumps, a minute's run where the store rows take many.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench.cli import PIPELINE
from bench.report import Figure, median

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "tests" / "data" / "real" / "7.3.4-allocsnap" / "boot-2"
ALLOCSNAP = Path(sys.executable).parent / "allocsnap"
HOSTDAY = "ALLOCSNAP_BENCH_HOSTDAY"
TIME = "/usr/bin/time"  # GNU time: the peak memory of the command alone
BEFORE = "ALLOCSNAP_BENCH_BEFORE"  # a checkout of the code to compare with, run alternately
BYTECODE = "ALLOCSNAP_BENCH_BYTECODE"  # 0: leave the packages without compiled bytecode
ROWS = "ALLOCSNAP_BENCH_ROWS"  # which rows to run: help, one-shot, store, import (default all)
DUMPS = "ALLOCSNAP_BENCH_DUMPS"  # dumps in the imported folder (default 1,000; --quick 100)
HOT_SNAPSHOTS = 6  # today's hot files: one snapshot file each, not yet compacted


@dataclass(frozen=True)
class Run:
    """The medians of several runs of one command (and of the code before, when compared)."""

    cpu_s: float  # user + system, the process and its children
    wall_s: float
    rss_mb: float  # peak resident set
    before: Run | None = None  # the same command on the code of $ALLOCSNAP_BENCH_BEFORE

    def note(self) -> str:
        """Return the figures of the code before, for a figure's note ('' when not compared)."""
        b = self.before
        if b is None:
            return ""
        return (
            f"; before, alternated with it: CPU {b.cpu_s:.3f} s, wall {b.wall_s:.3f} s, "
            f"peak {b.rss_mb:.0f} MB (after: CPU {self.cpu_s:.3f} s, peak {self.rss_mb:.0f} MB)"
        )


def measure(argv: list[str], runs: int, *, compare: bool = True) -> Run:
    """Return the medians of running ``argv`` ``runs`` times, each a new process.

    With ``$ALLOCSNAP_BENCH_BEFORE`` (a checkout of older code, e.g. ``git archive``), an
    ``allocsnap`` command also runs on that code, alternating with this one run by run, so
    both see the same load (not with ``compare`` False: a command that writes).
    """
    older = os.environ.get(BEFORE)
    if not older or not compare or argv[0] != str(ALLOCSNAP):
        return _medians([_once(argv, None) for _ in range(runs)])
    env = {**os.environ, "PYTHONPATH": older}  # ahead of the editable install's path
    now, then = [], []
    for _ in range(runs):
        then.append(_once(argv, env))
        now.append(_once(argv, None))
    return replace(_medians(now), before=_medians(then))


def _medians(runs: list[Run]) -> Run:
    return Run(
        median([r.cpu_s for r in runs]),
        median([r.wall_s for r in runs]),
        median([r.rss_mb for r in runs]),
    )


def _once(argv: list[str], env: dict[str, str] | None) -> Run:
    """Run ``argv`` once: its CPU (user + system, with its children), wall time and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="allocsnap-rss-") as tmp:
        peak = Path(tmp) / "peak"
        start = time.perf_counter()
        # /usr/bin/time starts the command from its own small process: a child forked from
        # this one would count this process's memory in its peak (Linux keeps the high-water
        # mark across exec)
        gnu_time = os.access(TIME, os.X_OK)
        child = subprocess.Popen(
            [TIME, "-f", "%M", "-o", str(peak), *argv] if gnu_time else argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert child.stderr is not None
        err = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {child.returncode}: {err.strip()}")
        # without GNU time, the child's own high-water mark (this process's memory at least)
        kib = int(peak.read_text().split()[-1]) if gnu_time else usage.ru_maxrss
        return Run(usage.ru_utime + usage.ru_stime, wall, kib / 1024)


def compiled(*trees: Path) -> None:
    """Compile each tree's allocsnap package to bytecode, as pip does when it installs one.

    A machine with PYTHONDONTWRITEBYTECODE=1 (this one) never writes it, so each new process
    would compile every allocsnap module it imports from source: a cost no installed
    allocsnap pays (docs/performance.md). ``ALLOCSNAP_BENCH_BYTECODE=0`` measures without.
    """
    import compileall

    for tree in trees:
        compileall.compile_dir(tree / "allocsnap", quiet=1)


def commands() -> list[str]:
    """Return every command name, as ``allocsnap --help`` lists them."""
    from allocsnap.cli.core import FAMILIES

    return list(FAMILIES)


def help_figures(runs: int) -> list[Figure]:
    """Return the wall time of ``--help`` of the top level and of the slowest command."""
    python = measure([sys.executable, "-c", "pass"], runs)
    top = measure([str(ALLOCSNAP), "--help"], runs)
    each = {name: measure([str(ALLOCSNAP), name, "--help"], runs) for name in commands()}
    slowest = max(each, key=lambda n: each[n].wall_s)
    spread = ", ".join(
        f"{n} {r.wall_s * 1000:.0f}" + (f" ({r.before.wall_s * 1000:.0f})" if r.before else "")
        for n, r in sorted(each.items())
    )
    return [
        Figure(
            "allocsnap --help (wall)",
            top.wall_s,
            "s",
            target=0.12,
            versus="python -c pass",
            versus_value=python.wall_s,
            note=f"median of {runs}; CPU {top.cpu_s:.3f} s, peak {top.rss_mb:.0f} MB{top.note()}",
        ),
        Figure(
            f"allocsnap CMD --help, the slowest of {len(each)} ({slowest}) (wall)",
            each[slowest].wall_s,
            "s",
            target=0.12,
            versus="python -c pass",
            versus_value=python.wall_s,
            note=f"median of {runs}; CPU {each[slowest].cpu_s:.3f} s{each[slowest].note()}; "
            f"every command (wall ms, before in brackets): {spread}",
        ),
    ]


def one_shot_figures(runs: int) -> list[Figure]:
    """Return ``diff a.txt b.txt`` and ``show FILE`` against the shell pipeline: CPU, wall, RSS."""
    a, b = CAPTURES / "snap-0.txt", CAPTURES / "snap-1.txt"
    bash = shutil.which("bash") or "/bin/bash"
    peer = measure([bash, "-c", PIPELINE, "pipeline", str(a), str(b)], runs)
    rows = len(a.read_text().splitlines()) - 2
    figures = []
    for what, argv in (
        (f"diff a.txt b.txt, real 7.3 dumps, {rows:,} rows", ["diff", str(a), str(b)]),
        (f"show FILE, real 7.3 dump, {rows:,} rows", ["show", str(b)]),
    ):
        run = measure([str(ALLOCSNAP), *argv], runs)
        for kind, value, versus, unit, target in (
            ("CPU", run.cpu_s, peer.cpu_s, "s", 10 * peer.cpu_s),
            ("wall", run.wall_s, peer.wall_s, "s", 0.12),
            ("peak RSS", run.rss_mb, peer.rss_mb, "MB", 60),
        ):
            figures.append(
                Figure(
                    f"allocsnap {what} ({kind})",
                    value,
                    unit,
                    target=target,
                    versus=f"sort | join | awk on the same dumps ({kind})",
                    versus_value=versus,
                    note=f"median of {runs}"
                    + ("; target: 10x the pipeline's CPU in this run" if kind == "CPU" else "")
                    + (run.note() if kind == "CPU" else ""),
                )
            )
    return figures


def host_day(work: Path, *, quick: bool) -> Path:
    """Return a host-day store in the recorder's layout: compacted hours, then hot files."""
    out = work / "hostday"
    given = os.environ.get(HOSTDAY)
    if given:
        shutil.copytree(given, out, symlinks=True)
    else:
        from bench.generate import Config, generate

        generate(out, Config(snapshots=1080) if quick else Config())
    # today's hot snapshots, one file each, as the recorder writes them before compaction
    subprocess.run(
        [
            str(ALLOCSNAP),
            "import",
            *[str(CAPTURES / f"snap-{i % 2}.txt") for i in range(HOT_SNAPSHOTS)],
            "--host",
            "bench",
            "--at",
            "2026-01-06T00:00:00Z",
            "--every",
            "10s",
            "--store",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return out


def store_figures(store: Path, runs: int) -> list[Figure]:
    """Return the wall time (and CPU, RSS) of ``diff first latest``, ``show latest`` and ``ls``."""
    listed = subprocess.run(
        [str(ALLOCSNAP), "ls", "--store", str(store), "--format", "csv"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    count = len(listed.splitlines()) - 1
    figures = []
    for argv in (["diff", "first", "latest"], ["show", "latest"], ["ls"]):
        run = measure([str(ALLOCSNAP), *argv, "--store", str(store)], runs)
        figures.append(
            Figure(
                f"allocsnap {' '.join(argv)}, {count:,}-snapshot host-day store (wall)",
                run.wall_s,
                "s",
                target=0.2,
                note=f"median of {runs}; CPU {run.cpu_s:.3f} s, peak {run.rss_mb:.0f} MB"
                + run.note(),
            )
        )
    return figures


def import_figures(work: Path, dumps: int) -> list[Figure]:
    """Return the CPU per dump beyond the first of ``allocsnap import FOLDER`` (one process)."""
    folder = work / "dumps"
    folder.mkdir()
    for i in range(dumps):
        shutil.copyfile(CAPTURES / f"snap-{i % 2}.txt", folder / f"snap-{i}.txt")
    # one process for one dump, then one for the folder: the difference is the per-dump cost
    one = measure(_import(work / "one", [str(folder / "snap-0.txt")]), 1, compare=False)
    many = measure(_import(work / "many", [str(folder)]), 1, compare=False)
    per_dump = (many.cpu_s - one.cpu_s) / (dumps - 1)
    per_dump_wall = (many.wall_s - one.wall_s) / (dumps - 1)
    return [
        Figure(
            f"allocsnap import FOLDER of {dumps:,} dumps, per dump beyond the first (CPU)",
            per_dump * 1000,
            "ms",
            target=5,
            note=f"one run; one dump alone: {one.cpu_s:.3f} s CPU, {one.wall_s:.3f} s wall; "
            f"the folder: {many.cpu_s:.1f} s CPU, {many.wall_s:.1f} s wall "
            f"({per_dump_wall * 1000:.1f} ms wall per dump)",
        )
    ]


def _import(store: Path, what: list[str]) -> list[str]:
    args = ["--at", "2026-01-06T00:00:00Z", "--every", "10s", "--host", "vm"]
    return [str(ALLOCSNAP), "import", *what, *args, "--store", str(store)]


def figures(work: Path, *, quick: bool = False) -> list[Figure]:
    """Return every figure of issue 17."""
    runs = 3 if quick else 7
    if os.environ.get(BYTECODE, "1") != "0":
        compiled(ROOT, *([Path(os.environ[BEFORE])] if os.environ.get(BEFORE) else []))
    wanted = {r.strip() for r in os.environ.get(ROWS, "help,one-shot,store,import").split(",")}
    found: list[Figure] = []
    if "help" in wanted:
        found += help_figures(runs)
    if "one-shot" in wanted:
        found += one_shot_figures(runs)
    if "store" in wanted:
        found += store_figures(host_day(work, quick=quick), runs)
    if "import" in wanted:
        found += import_figures(work, int(os.environ.get(DUMPS) or (100 if quick else 1000)))
    return found
