"""Recorder benchmarks: CPU per snapshot, bytes per tag per snapshot, resident memory.

    .venv/bin/python bench/recorder.py            # everything, a full synthetic host-day
    .venv/bin/python bench/recorder.py --hours 2  # quicker: hourly figures from two hours

Prints figures only; docs/recorder.md quotes them. Synthetic data: 8,000 tags; each snapshot
20% of them change, calls by a uniform step in [-20, 20] and bytes = calls x a per-tag object
size of 8 B to 4 KiB, every 10 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from allocsnap.kernel import capture, fastparse, parse, source
from allocsnap.model import SAMPLE_SCHEMA, Snapshot, SnapshotMeta
from allocsnap.store import compaction, generations, writing
from bench.report import Figure

TAGS = 8000
CHANGING = 0.2
INTERVAL_S = 10
REAL = Path(__file__).resolve().parent.parent / "tests" / "data" / "real"


def synthetic_tags(n: int = TAGS, capture: str = "snap-0.txt") -> list[str]:
    """Return n distinct tag texts shaped like the kernel's, from a real capture's tags.

    ``capture`` names a 6.12 boot-1 capture; snap-3 has module rows (ext4, zram, ...).
    """
    text = (REAL / "6.12.117-allocsnap" / "boot-1" / capture).read_text()
    real = [line[22:] for line in text.splitlines()[2:]]
    out = []
    for i in range(n):
        tag = real[i % len(real)]
        file, _, rest = tag.partition(":")
        line, _, tail = rest.partition(" ")
        out.append(f"{file}:{int(line) + 100000 * (i // len(real))} {tail}")
    return out


def render(tags: list[str], values: np.ndarray, calls: np.ndarray) -> bytes:
    head = "allocinfo - version: 1.0\n#     <size>  <calls> <tag info>\n"
    rows = [f"{b:12d} {c:8d} {t}\n" for b, c, t in zip(values, calls, tags, strict=True)]
    return (head + "".join(rows)).encode()


class Series:
    """The synthetic counters: a random walk on 20% of the tags per step."""

    def __init__(self, seed: int = 1, tags: int = TAGS) -> None:
        self.tags = tags
        self.rng = np.random.default_rng(seed)
        self.size = 2 ** self.rng.integers(3, 13, tags)
        self.calls = self.rng.integers(0, 100_000, tags).astype(np.int64)

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        changed = self.rng.random(self.tags) < CHANGING
        delta = self.rng.integers(-20, 21, self.tags) * changed
        self.calls = np.maximum(self.calls + delta, 0)
        return self.calls * self.size, self.calls


def user_ms() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime * 1000


def sys_ms() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime * 1000


def bench_cpu(work: Path, n: int) -> None:
    """User CPU of parse + filter + store of one 8,000-row snapshot, cached vs full parser.

    Linux splits a thread's CPU time into user and system by sampling ticks, so one call's
    user time is coarse: the figures are the mean user time over the run (exact in total) and
    the median of ``time.process_time()`` per call (user + system, exact per call).
    """
    tags = synthetic_tags()
    series = Series()
    texts = [render(tags, *series.step()) for _ in range(50)]
    for label, parser in (
        ("cached parser", fastparse.CachedParser()),
        ("full parser", parse.parse),
    ):
        root = work / f"cpu-{label.split()[0]}"
        writer = writing.Writer(root)
        both = []
        count = n if label == "cached parser" else max(20, n // 10)
        warm = 10
        for i in range(count + warm):
            raw = source.RawRead(
                text=texts[i % len(texts)], source="file", taken_at=datetime.now(UTC)
            )
            if i == warm:
                u, s = user_ms(), sys_ms()
            t = time.process_time()
            snap = capture.snapshot(raw, host="bench", parser=parser, snapshot_id=f"{i:012x}")
            writer.add(snap)
            both.append((time.process_time() - t) * 1000)
        user, system = (user_ms() - u) / count, (sys_ms() - s) / count
        print(
            f"cpu per 8,000-row snapshot ({label}): user {user:.2f} ms mean, system "
            f"{system:.2f}; user+system {statistics.median(both[warm:]):.2f} ms median "
            f"(p90 {np.percentile(both[warm:], 90):.2f}), {count} snapshots"
        )
    # parse alone, for the record
    cached = fastparse.CachedParser()
    cached(texts[0])
    u = user_ms()
    for i in range(n):
        cached(texts[i % len(texts)])
    print(f"cached parse alone: {(user_ms() - u) / n:.3f} ms user per snapshot")


def _snapshot(
    template: pa.Table, meta: SnapshotMeta, at: datetime, values: np.ndarray, calls: np.ndarray
) -> Snapshot:
    samples = template.set_column(
        SAMPLE_SCHEMA.get_field_index("bytes"), SAMPLE_SCHEMA.field("bytes"), pa.array(values)
    ).set_column(
        SAMPLE_SCHEMA.get_field_index("calls"),
        SAMPLE_SCHEMA.field("calls"),
        pa.array(calls.astype(np.uint64)),
    )
    sid = f"{int(at.timestamp()):012x}"
    return Snapshot(meta=meta._replace(snapshot_id=sid, taken_at=at), samples=samples)


def bench_size(work: Path, hours: int) -> None:
    """Bytes per tag per snapshot: hot, hourly compacted and daily compacted."""
    tags = synthetic_tags()
    series = Series()
    first = capture.snapshot(
        source.RawRead(
            text=render(tags, *series.step()), source="file", taken_at=datetime.now(UTC)
        ),
        host="bench",
    )
    root = work / "size"
    writer = writing.Writer(root)
    day = datetime(2026, 11, 20, tzinfo=UTC)
    per_hour = 3600 // INTERVAL_S
    started = time.perf_counter()
    hot_bytes = 0
    compact_s = 0.0
    hourly_bytes = 0
    for hour in range(hours):
        for k in range(per_hour):
            at = day + timedelta(hours=hour, seconds=k * INTERVAL_S)
            writer.add(_snapshot(first.samples, first.meta, at, *series.step()))
        if hour == 0:
            hot_bytes = generations.store_size(root / "samples") + generations.store_size(
                root / "snapshots"
            )
        t = time.perf_counter()
        done = compaction.compact(root, day + timedelta(hours=hour + 1), days=False)
        compact_s += time.perf_counter() - t
        hourly_bytes += done.bytes_after
    cells = hours * per_hour * TAGS
    print(f"synthetic: {hours} h x {per_hour} snapshots x {TAGS:,} tags, {CHANGING:.0%} changing")
    print(f"  hot (one file per snapshot): {hot_bytes / (per_hour * TAGS):.2f} B/tag/snapshot")
    print(
        f"  hourly compacted: {hourly_bytes / cells:.3f} B/tag/snapshot "
        f"({compact_s / hours:.1f} s per hour to compact)"
    )
    t = time.perf_counter()
    done = compaction.compact(root, day + timedelta(days=2))
    print(
        f"  daily compacted: {done.bytes_after / cells:.3f} B/tag/snapshot "
        f"({time.perf_counter() - t:.1f} s to compact the day; whole run "
        f"{time.perf_counter() - started:.0f} s)"
    )


def real_series(n: int = 200, seed: int = 1) -> list[bytes]:
    """Return n dumps of a real, mostly idle kernel: boot-1 of the 6.12 captures, each step
    adding the per-row changes of one of its real 10 s steps (23 and 77 of 3,115 rows)."""
    boot = REAL / "6.12.117-allocsnap" / "boot-1"
    texts = [(boot / f"snap-{i}.txt").read_bytes() for i in range(3)]
    head = texts[0].decode().splitlines(keepends=True)[:2]
    parsed = [parse.parse(t).samples for t in texts]
    values = parsed[0]["bytes"].to_numpy().copy()
    calls = parsed[0]["calls"].to_numpy().astype(np.int64)
    steps = [
        (
            parsed[i + 1]["bytes"].to_numpy() - parsed[i]["bytes"].to_numpy(),
            parsed[i + 1]["calls"].to_numpy().astype(np.int64)
            - parsed[i]["calls"].to_numpy().astype(np.int64),
        )
        for i in range(2)
    ]
    tags = [line[22:] for line in texts[0].decode().splitlines(keepends=True)[2:]]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        db, dc = steps[int(rng.integers(0, 2))]
        values, calls = np.maximum(values + db, 0), np.maximum(calls + dc, 0)
        rows = [f"{b:12d} {c:8d} {t}" for b, c, t in zip(values, calls, tags, strict=True)]
        out.append(("".join(head) + "".join(rows)).encode())
    return out


def bench_real(work: Path, n: int = 200) -> None:
    """A real, mostly idle series: store bytes against xz -9 of the same text dumps."""
    texts = real_series(n)
    rows = texts[0].count(b"\n") - 2
    dumps = work / "dumps"
    dumps.mkdir()
    for i, text in enumerate(texts):
        (dumps / f"snap-{i:03d}.txt").write_bytes(text)
    xz = subprocess.run(
        ["sh", "-c", f"cat {dumps}/snap-*.txt | xz -9 -T1 | wc -c"], capture_output=True, text=True
    )
    xz_bytes = int(xz.stdout)
    root = work / "real"
    writer = writing.Writer(root)
    parser = fastparse.CachedParser()
    day = datetime(2026, 11, 20, tzinfo=UTC)
    for i, text in enumerate(texts):
        raw = source.RawRead(text=text, source="file", taken_at=day + timedelta(seconds=10 * i))
        writer.add(capture.snapshot(raw, host="real", parser=parser))
    compaction.compact(root, day + timedelta(days=2), grace_s=0)
    data = sum(generations.store_size(root / t) for t in ("samples", "snapshots"))
    tags = generations.store_size(root / "tags")
    cells = n * rows
    print(f"real idle series: {n} snapshots x {rows:,} tags (boot-1 of 6.12, its real steps)")
    print(
        f"  xz -9 of the dumps: {xz_bytes / cells:.3f} B/tag/snapshot; store, compacted: "
        f"{data / cells:.3f} (+ tags file {tags / cells:.3f})"
    )


def bench_rss(work: Path, snapshots: int) -> None:
    """Peak resident memory of a recorder run, and of compacting what it recorded."""
    tags = synthetic_tags()
    dump = work / "allocinfo.txt"
    dump.write_bytes(render(tags, *Series().step()))
    root = work / "rss"
    command = [sys.executable, "-m", "allocsnap", "record", "--store", str(root)]
    command += ["--source", str(dump), "--interval", "0.005s", "--count", str(snapshots)]
    peak = _peak_rss(command)
    print(f"recorder peak RSS: {peak:.0f} MB over {snapshots} snapshots of {TAGS:,} rows")
    # Put them in a closed hour, then compact them as the recorder would at the next hour.
    compact = [sys.executable, "-c", _COMPACT, str(root)]
    print(f"compaction of those snapshots, peak RSS: {_peak_rss(compact):.0f} MB")


_COMPACT = """
import sys
from datetime import timedelta, datetime, UTC
from pathlib import Path
from allocsnap.store import compaction
compaction.compact(Path(sys.argv[1]), datetime.now(UTC) + timedelta(hours=2), days=False)
"""


def _peak_rss(command: list[str]) -> float:
    """Return the peak RSS of ``command`` in MB (``ru_maxrss`` of it and its children).

    Spawned with posix_spawn (vfork): a fork copies this process's page tables first, and
    ``ru_maxrss`` would then count this (large) benchmark process's memory too.
    """
    devnull = [(os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    pid = os.posix_spawn(command[0], command, os.environ, file_actions=devnull)
    _pid, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"{command} failed with status {status}")
    return float(usage.ru_maxrss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24, help="synthetic hours (24 = a day)")
    parser.add_argument("--cpu-snapshots", type=int, default=300)
    parser.add_argument("--rss-snapshots", type=int, default=3000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="allocsnap-bench-"))
    try:
        bench_real(work)
        bench_cpu(work, args.cpu_snapshots)
        bench_rss(work, args.rss_snapshots)
        bench_size(work, args.hours)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()


def _own_peak_rss(code: str) -> float:
    """Return the peak RSS in MB that a Python process running ``code`` reports itself.

    Its own VmHWM, not ``ru_maxrss``: a child spawned by this benchmark process (large after
    the analyses part) shares its pages until exec, and ``ru_maxrss`` counts them.
    """
    report = "import pathlib; print(pathlib.Path('/proc/self/status').read_text())"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], capture_output=True, text=True, check=True
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def rss_figures(work: Path, snapshots: int) -> list[Figure]:
    """Return the recorder's peak and steady resident memory over ``snapshots`` snapshots."""
    tags = synthetic_tags()
    dump = work / "allocinfo.txt"
    dump.write_bytes(render(tags, *Series().step()))
    root = work / "rss"
    command = [sys.executable, "-m", "allocsnap", "record", "--store", str(root)]
    command += ["--source", str(dump), "--interval", "0.005s", "--count", str(snapshots)]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    samples, hwm = [], [0.0]
    while proc.poll() is None:  # VmRSS and the high-water mark VmHWM every 100 ms
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            break
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                samples.append(int(line.split()[1]) / 1024)
            elif line.startswith("VmHWM:"):
                hwm.append(int(line.split()[1]) / 1024)
        time.sleep(0.1)
    peak = max(hwm)
    steady = statistics.median(samples[len(samples) // 2 :]) if samples else peak
    imports = _own_peak_rss("import numpy, pyarrow.parquet, allocsnap.recorder")
    return [
        Figure(
            f"recorder resident memory, steady (second half of {snapshots:,} snapshots)",
            steady,
            "MB",
            target=100.0,
            versus="python importing numpy + pyarrow.parquet + the recorder",
            versus_value=imports,
            note="median VmRSS sampled every 100 ms",
        ),
        Figure(
            f"recorder resident memory, peak (high-water mark, {snapshots:,} snapshots)",
            peak,
            "MB",
            target=100.0,
            versus="python importing numpy + pyarrow.parquet + the recorder",
            versus_value=imports,
        ),
    ]
