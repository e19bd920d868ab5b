"""CPU to parse + filter + store one 8,000-row snapshot, against a Python loop and grep | awk.

allocsnap runs the recorder's path (``capture.snapshot`` with the cached parser, then
``writing.Writer.add``: two Parquet files per snapshot) on synthetic 8,000-row texts shaped like
a real 6.12 capture (with module rows), 20% of the rows changing between snapshots. The
alternatives only read: a plain Python loop (split each line, two ``int``, keep one module, sum
its bytes) and ``grep -F '[ext4]' | awk '{s+=$1}'`` run once per snapshot file. They store
nothing, so they are a floor for "look at the numbers", not a like-for-like recorder.

CPU is measured over batches of snapshots (getrusage is exact in total but splits user and
system time by ticks), and the figure is the median of the batches' per-snapshot means.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from allocsnap import filters
from allocsnap.kernel import capture, fastparse, source
from allocsnap.model import Filter
from allocsnap.store import writing
from bench.recorder import Series, render, synthetic_tags
from bench.report import Figure, median

MODULE = "ext4"
GREP_AWK = "grep -F '[ext4]' \"$1\" | awk '{s += $1} END {print s + 0}'"


def plain_loop(text: bytes, module: str = MODULE) -> int:
    """Return the live bytes of one module's rows, the way a short script would."""
    total = 0
    wanted = f"[{module}]"
    for line in text.decode().splitlines()[2:]:
        fields = line.split()
        size, _calls = int(fields[0]), int(fields[1])
        if wanted in fields:
            total += size
    return total


def _cpu(who: int = resource.RUSAGE_SELF) -> tuple[float, float]:
    usage = resource.getrusage(who)
    return usage.ru_utime * 1000, usage.ru_stime * 1000


def _batches(
    step: Callable[[int], object], batches: int, size: int, who: int = resource.RUSAGE_SELF
) -> tuple[float, float]:
    """Return the median per-call user and user+system ms over ``batches`` batches."""
    users, totals = [], []
    k = 0
    for _ in range(batches):
        u0, s0 = _cpu(who)
        for _ in range(size):
            step(k)
            k += 1
        u1, s1 = _cpu(who)
        users.append((u1 - u0) / size)
        totals.append((u1 - u0 + s1 - s0) / size)
    return median(users), median(totals)


def figures(work: Path, *, quick: bool = False) -> list[Figure]:
    """Measure and return the parse + filter + store figures."""
    batches, size = (3, 10) if quick else (15, 20)
    tags = synthetic_tags(8000, capture="snap-3.txt")
    series = Series()
    texts = [render(tags, *series.step()) for _ in range(size)]

    def recorder(keep: Filter, root: Path) -> Callable[[int], object]:
        parser = fastparse.CachedParser()
        masks = filters.TagMasks()  # as the recorder does
        writer = writing.Writer(root)

        def step(k: int) -> object:
            raw = source.RawRead(text=texts[k % size], source="file", taken_at=datetime.now(UTC))
            snap = capture.snapshot(
                raw, keep=keep, host="bench", parser=parser, snapshot_id=f"{k:012x}", masks=masks
            )
            return writer.add(snap)

        step(10**9)  # the first read parses in full and caches the layout: not the steady state
        return step

    every_user, every_total = _batches(recorder(Filter(), work / "cpu-all"), batches, size)
    mod_user, mod_total = _batches(
        recorder(Filter(module=MODULE), work / "cpu-module"), batches, size
    )
    loop_user, loop_total = _batches(lambda k: plain_loop(texts[k % size]), batches, size)

    paths = []
    for i, text in enumerate(texts):
        paths.append(work / f"dump-{i}.txt")
        paths[-1].write_bytes(text)
    bash = shutil.which("bash") or "/bin/bash"

    def pipeline(k: int) -> object:
        return subprocess.run(
            [bash, "-c", GREP_AWK, "grep-awk", str(paths[k % size])],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    awk_user, awk_total = _batches(pipeline, batches, size, resource.RUSAGE_CHILDREN)
    runs = f"median of {batches} batches of {size}"
    return [
        Figure(
            "parse+filter+store, 8,000 rows, no filter (user CPU)",
            every_user,
            "ms",
            target=2.0,
            versus="plain Python loop (user CPU)",
            versus_value=loop_user,
            note=f"{runs}; user+sys {every_total:.2f} ms; the loop stores nothing",
        ),
        Figure(
            f"parse+filter+store, 8,000 rows, --module {MODULE} (user CPU)",
            mod_user,
            "ms",
            target=2.0,
            versus="plain Python loop (user CPU)",
            versus_value=loop_user,
            note=f"{runs}; user+sys {mod_total:.2f} ms",
        ),
        Figure(
            f"parse+filter+store, 8,000 rows, --module {MODULE} (user+sys CPU)",
            mod_total,
            "ms",
            versus="grep -F | awk per snapshot (user+sys, incl. exec)",
            versus_value=awk_total,
            note=f"{runs}; grep|awk user only {awk_user:.2f} ms; the loop: user+sys "
            f"{loop_total:.2f} ms",
        ),
    ]
