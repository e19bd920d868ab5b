"""Store bytes per tag per snapshot, against gzip'd and ``xz -9``'d text dumps of the same series.

Two kinds of series:

- **synthetic**: 8,000 and 20,000 tags, 20% of them changing per snapshot, every 10 s
  (bench/recorder.py's series), one hour of snapshots (``--quick``: ten minutes). The store
  is what the recorder leaves: one hot file pair per snapshot, then the hour compacted.
- **real**: a mostly idle 7.3.4 guest read once a second (``bench/data/``; how it was
  recorded is in docs/performance.md), imported snapshot by snapshot with the recorder's
  parser and writer, then compacted.

The whole store counts (samples, snapshots and tags files, markers). The text alternatives are
each dump gzip'd on its own (level 6, gzip's default: its 32 KiB window cannot reach the
previous dump anyway) and the whole series as one ``xz -9`` stream (its 64 MiB dictionary
does reach back, which is what makes it strong on a quiet kernel).
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from allocsnap.kernel import capture, fastparse, source
from allocsnap.store import compaction, generations, writing
from bench.recorder import Series, _snapshot, render, synthetic_tags
from bench.report import Figure

DATA = Path(__file__).resolve().parent / "data"
REAL_SERIES = DATA / "vm-7.3.4-idle-1s.txt.xz"
START = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def split_dumps(stream: bytes) -> list[bytes]:
    """Return the dumps of a concatenated series (each starts with its header line)."""
    marker = b"allocinfo - version:"
    starts = [i for i in _find_all(stream, marker) if i == 0 or stream[i - 1 : i] == b"\n"]
    return [stream[a:b] for a, b in zip(starts, [*starts[1:], len(stream)], strict=True)]


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    i = data.find(needle)
    while i >= 0:
        yield i
        i = data.find(needle, i + 1)


class TextSizes:
    """gzip per dump and one ``xz -9`` stream of the series, fed one dump at a time."""

    def __init__(self, out: Path) -> None:
        self.gzip = 0
        self.raw = 0
        xz = shutil.which("xz")
        self._out = out
        self._file = out.open("wb")
        # the xz program itself when there is one (the alternative people run); else liblzma
        self._proc = (
            subprocess.Popen([xz, "-9", "-c"], stdin=subprocess.PIPE, stdout=self._file)
            if xz
            else None
        )
        self._lzma = None if xz else lzma.LZMACompressor(preset=9)

    def add(self, text: bytes) -> None:
        self.raw += len(text)
        z = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip header, as gzip(1) writes
        self.gzip += len(z.compress(text) + z.flush())
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.write(text)
        elif self._lzma is not None:
            self._file.write(self._lzma.compress(text))

    def xz(self) -> int:
        """Finish the xz stream; return its size."""
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()
            self._proc.wait()
        elif self._lzma is not None:
            self._file.write(self._lzma.flush())
        self._file.close()
        return self._out.stat().st_size


def _compacted(root: Path, last: datetime) -> tuple[int, int]:
    """Return the store's size hot, then after compacting every hour up to ``last``."""
    hot = generations.store_size(root)
    compaction.compact(root, last + timedelta(hours=1), days=False, grace_s=0)
    return hot, generations.store_size(root)


def synthetic(work: Path, tags: int, snapshots: int) -> list[Figure]:
    """Return the size figures of a synthetic series of ``tags`` x ``snapshots``."""
    names = synthetic_tags(tags)
    series = Series(tags=tags)
    text = render(names, *series.step())
    first = capture.snapshot(source.RawRead(text=text, source="file", taken_at=START), host="b")
    root = work / f"size-{tags}"
    writer = writing.Writer(root)
    sizes = TextSizes(work / f"series-{tags}.txt.xz")
    at = START
    for k in range(snapshots):
        at = START + timedelta(seconds=10 * k)
        values, calls = series.step()
        sizes.add(render(names, values, calls))
        writer.add(_snapshot(first.samples, first.meta, at, values, calls))
    hot, compacted = _compacted(root, at)
    tag_files = generations.store_size(root / "tags")
    xz = sizes.xz()
    cells = tags * snapshots
    label = f"synthetic {tags:,} tags x {snapshots} snapshots, 20% changing"
    return [
        Figure(
            f"store, hourly compacted: {label}",
            compacted / cells,
            "B/tag/snap",
            target=0.5,
            versus="xz -9 of the text dumps",
            versus_value=xz / cells,
            note=f"hot (one file pair per snapshot) {hot / cells:.1f}; gzip per dump "
            f"{sizes.gzip / cells:.2f} (store/gzip {compacted / sizes.gzip:.2f}x); raw text "
            f"{sizes.raw / cells:.1f}; of the store, the tags file {tag_files / cells:.3f}",
        ),
        Figure(
            f"store, hourly compacted vs gzip: {label}",
            compacted / cells,
            "B/tag/snap",
            versus="gzip -6 of each text dump",
            versus_value=sizes.gzip / cells,
        ),
    ]


def real(work: Path, series: Path = REAL_SERIES, limit: int | None = None) -> list[Figure]:
    """Return the size figures of a real recorded series (a concatenation of dumps, xz'd)."""
    dumps = split_dumps(lzma.decompress(series.read_bytes()))[:limit]
    root = work / "size-real"
    writer = writing.Writer(root)
    parser = fastparse.CachedParser()
    sizes = TextSizes(work / "series-real.txt.xz")
    at = START
    rows = 0
    for k, text in enumerate(dumps):
        at = START + timedelta(seconds=k)
        sizes.add(text)
        raw = source.RawRead(text=text, source="file", taken_at=at)
        snap = capture.snapshot(raw, host="vm", parser=parser, snapshot_id=f"{k:012x}")
        rows += snap.samples.num_rows
        writer.add(snap)
    hot, compacted = _compacted(root, at)
    xz = sizes.xz()
    label = f"real 7.3.4 guest, idle, {rows // len(dumps):,} tags x {len(dumps)} snapshots"
    return [
        Figure(
            f"store, hourly compacted: {label}",
            compacted / rows,
            "B/tag/snap",
            target=xz / rows,
            versus="xz -9 of the text dumps",
            versus_value=xz / rows,
            note=f"target: no larger than xz -9; hot {hot / rows:.1f}; gzip per dump "
            f"{sizes.gzip / rows:.2f} (store/gzip {compacted / sizes.gzip:.2f}x); raw text "
            f"{sizes.raw / rows:.1f}",
        ),
        Figure(
            f"store, hourly compacted vs gzip: {label}",
            compacted / rows,
            "B/tag/snap",
            versus="gzip -6 of each text dump",
            versus_value=sizes.gzip / rows,
        ),
    ]


def figures(work: Path, *, quick: bool = False) -> list[Figure]:
    """Measure and return every size figure."""
    # xz -9 of 20,000-tag dumps is the slow part: half an hour of them, not a full one
    out = synthetic(work, 8000, 30 if quick else 360)
    out += synthetic(work, 20000, 30 if quick else 180)
    if REAL_SERIES.exists():
        out += real(work, limit=30 if quick else None)
    return out
