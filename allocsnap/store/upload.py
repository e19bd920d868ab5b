"""Uploads of a local store's closed, compacted hours and days to object storage.

A remote store is laid out like a local one (docs/storage.md) but holds compacted files only.
Each run lists what the bucket has, then uploads what it lacks in the order a reader needs: the
marker, the tags files, and per unit its samples file, then its snapshots file — the commit
point, as locally: a reader that lists a snapshots file finds its samples. File names carry the
generation and are never rewritten with other content, so a file already there with the same
size is skipped, and a run cut short is simply run again. Remote files that a newer generation
superseded are deleted once the newest commit of their partition is ``grace_s`` old, as
compaction does locally.

``python -m allocsnap.store.upload ROOT URL`` is the child process the recorder starts beside itself
(``start_upload``): pyarrow's S3 client, its threads and buffers never enter the recorder.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from allocsnap.errors import StoreNotFound
from allocsnap.store import child, generations, housekeeping, layout, remote
from allocsnap.store.remote import Remote

_CHUNK = 8 << 20  # bytes per write to the output stream (S3 multipart parts are >= 5 MiB)


@dataclass
class Uploaded:
    """What one upload run did."""

    files: int = 0  # files uploaded
    bytes: int = 0
    units: int = 0  # compacted hours and days committed remotely by this run
    present: int = 0  # units the bucket already had
    removed: int = 0  # superseded remote files deleted


def upload(root: Path, to: Remote, *, grace_s: float = housekeeping.GRACE_S) -> Uploaded:
    """Upload the store at ``root``'s compacted hours and days that ``to`` lacks; clean what
    they superseded there. Raise ``StoreError`` (``StoreNotFound`` for a missing bucket)."""
    if not (root / layout.MARKER).is_file():
        raise StoreNotFound(f"no store at {root} to upload (no {layout.MARKER})")
    s3, base = remote.filesystem(to)
    try:
        return _Run(root, s3, base).run(grace_s)
    except OSError as e:
        raise remote.error(to, e, "upload to") from e


class _Run:
    def __init__(self, root: Path, s3: Any, base: str) -> None:
        from pyarrow import fs

        self.root, self.s3, self.base = root, s3, base
        self.done = Uploaded()
        selector = fs.FileSelector(base, recursive=True, allow_not_found=True)
        # what the bucket holds, listed once a run: path below base -> (size, mtime)
        self.there: dict[str, tuple[int, float]] = {
            info.path[len(base) + 1 :]: (info.size, info.mtime.timestamp())
            for info in s3.get_file_info(selector)
            if info.type == fs.FileType.File
        }

    def run(self, grace_s: float) -> Uploaded:
        units = generations.committed_units(self.root)
        self._put(layout.MARKER)
        for tags in sorted((self.root / "tags").glob("*.parquet")):
            self._put(f"tags/{tags.name}")
        for partition, name in units:
            snapshots, samples = f"snapshots/{partition}/{name}", f"samples/{partition}/{name}"
            if self._has(snapshots) and self._has(samples):
                self.done.present += 1
                continue
            # samples first: the snapshots file commits them, for a reader listing the bucket
            if self._put(samples) and self._put(snapshots):
                self.done.units += 1
        for partition in sorted({p for p, _ in units} | self._remote_partitions()):
            self._collect(partition, grace_s)
        return self.done

    def _has(self, path: str) -> bool:
        info = self.there.get(path)
        if info is None:
            return False
        try:
            return info[0] == (self.root / path).stat().st_size
        except FileNotFoundError:
            return True  # replaced locally since: the remote copy is what was committed

    def _put(self, path: str) -> bool:
        """Copy one file unless the bucket has it; False when it vanished locally meanwhile
        (compaction replaced it: the next run uploads its successor)."""
        if self._has(path):
            return True
        try:
            source = open(self.root / path, "rb")  # noqa: SIM115  closed below
        except FileNotFoundError:
            return False
        size = 0
        with source, self.s3.open_output_stream(f"{self.base}/{path}") as out:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
                size += len(chunk)
        self.there[path] = (size, time.time())
        self.done.files += 1
        self.done.bytes += size
        return True

    def _remote_partitions(self) -> set[str]:
        return {
            path.split("/", 1)[1].rsplit("/", 1)[0]
            for path in self.there
            if path.startswith("snapshots/") and path.count("/") == 3
        }

    def _collect(self, partition: str, grace_s: float) -> None:
        """Delete superseded remote files of a partition, as ``compaction`` does locally: a
        snapshots file all of whose rows have a newer generation, and samples files that no
        snapshots file names, once the partition's newest commit is ``grace_s`` old."""
        import pyarrow.parquet as pq

        def files(table: str) -> dict[str, tuple[int, float]]:
            folder = f"{table}/{partition}/"
            return {
                path: info
                for path, info in self.there.items()
                if path.startswith(folder) and "/" not in path[len(folder) :]
            }

        snapshot_files, sample_files = files("snapshots"), files("samples")
        names = {path.rsplit("/", 1)[1] for path in snapshot_files}
        if len(snapshot_files) <= 1 and {p.rsplit("/", 1)[1] for p in sample_files} <= names:
            return  # nothing superseded, nothing orphaned: no file to read
        now = time.time()
        if now - max((mtime for _size, mtime in snapshot_files.values()), default=0.0) < grace_s:
            return  # the newest commit is younger than readers may need what it replaced
        rows = {
            path: pq.read_table(
                f"{self.base}/{path}", columns=["snapshot_id", "generation"], filesystem=self.s3
            ).to_pydict()
            for path in snapshot_files
        }
        live = generations.live_generations(
            (row["snapshot_id"], row["generation"]) for row in rows.values()
        )
        kept = set()
        for path, row in rows.items():
            if generations.is_superseded(row["snapshot_id"], row["generation"], live):
                self._delete(path)
            else:
                kept.add(path.rsplit("/", 1)[1])
        for path, (_size, mtime) in sample_files.items():
            if path.rsplit("/", 1)[1] not in kept and now - mtime >= grace_s:
                self._delete(path)

    def _delete(self, path: str) -> None:
        self.s3.delete_file(f"{self.base}/{path}")
        del self.there[path]
        self.done.removed += 1


def start_upload(root: Path, to: Remote) -> subprocess.Popen[str]:
    """Start an upload in a child process; ``upload_result`` waits for it and reads it."""
    return child.start("allocsnap.store.upload", [str(root), to.url], "the upload")


def upload_result(process: subprocess.Popen[str], timeout: float | None = None) -> Uploaded:
    """Wait for a child from ``start_upload`` (killing it past ``timeout`` seconds); return
    what it did, or raise its error."""
    return Uploaded(**child.result(process, "the upload", timeout))


def _upload(argv: list[str]) -> dict[str, object]:
    return asdict(upload(Path(argv[0]), Remote(argv[1])))


if __name__ == "__main__":
    child.main(_upload)
