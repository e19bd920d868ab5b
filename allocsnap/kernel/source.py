"""The only module that reads the running kernel: /proc/allocinfo and the facts around it.

``ALLOCINFO`` and ``PROC`` are read at call time, so tests point them elsewhere. A failed read
becomes an ``AllocinfoUnavailable`` that says why (kernel option, boot parameter, permissions)
and how to fix it; the kernel facts are in ../shared/docs/allocinfo.md §4.
"""

from __future__ import annotations

import errno
import gzip
import io
import lzma
import os
import socket
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from allocsnap.errors import AllocinfoUnavailable, AllocsnapError, InputTooLarge, UsageError
from allocsnap.model import MAX_DUMP_BYTES, MAX_LINE_BYTES, Filter

ALLOCINFO = Path("/proc/allocinfo")
PROC = Path("/proc")
READ_CHUNK = 1 << 16  # the kernel hands out about a page per read() whatever we ask
MODULES_MAX_BYTES = 4 << 20  # /proc/modules: a line of about 100 bytes per loaded module
BOOT_ID_MAX_BYTES = 64  # a UUID and its newline
MODULE_RETRIES = 3
PROFILING_OFF_NOTE = "profiling is off (vm.mem_profiling=0): counters are frozen"
NEVER_COUNTED_NOTE = (
    "profiling is off and every counter is 0: this boot has counted nothing (booted with "
    "sysctl.vm.mem_profiling=never, or 0 and never switched on); switch it on with "
    "'sysctl vm.mem_profiling=1', or, if that write fails (never), boot with "
    "sysctl.vm.mem_profiling=1"
)

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class RawRead:
    """The text of one read and the facts recorded beside it."""

    text: bytes
    source: str  # procfs | ioctl | file | stdin
    taken_at: datetime
    origin: str | None = None
    boottime_s: float | None = None
    read_s: float | None = None
    host: str | None = None
    boot_id: str | None = None
    kernel: str | None = None
    profiling: int | None = None
    modules: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()
    samples: pa.Table | None = None  # rows already decoded (the ioctl), instead of text
    format: str | None = None  # "ioctl" with samples; the text's header decides otherwise
    kept: Filter | None = None  # with samples: the filter already applied to them
    totals: tuple[int, int] | None = None  # with samples: their bytes and calls, as with_totals


def read_kernel(path: Path | None = None) -> RawRead:
    """Read /proc/allocinfo to EOF with the module list, boot id and profiling state."""
    path = ALLOCINFO if path is None else path
    notes: list[str] = []
    for attempt in range(MODULE_RETRIES + 1):
        modules_before = loaded_modules()
        started = time.perf_counter()
        text = _read_to_eof(path)
        read_s = time.perf_counter() - started
        modules_after = loaded_modules()
        if modules_before == modules_after:
            break
        if attempt == MODULE_RETRIES:
            notes.append(
                f"modules changed during the read {MODULE_RETRIES + 1} times; kept the last"
            )
    profiling = mem_profiling()
    if profiling == 0:
        notes.append(PROFILING_OFF_NOTE)
    return RawRead(
        text=text,
        source="procfs",
        origin=str(path),
        taken_at=datetime.now(UTC),
        boottime_s=time.clock_gettime(time.CLOCK_BOOTTIME),
        read_s=read_s,
        host=socket.gethostname(),
        boot_id=boot_id(),
        kernel=os.uname().release,
        profiling=profiling,
        modules=modules_after,
        notes=tuple(notes),
    )


def read_dump(path: str) -> RawRead:
    """Read a saved text dump from a file, or from stdin when ``path`` is ``-``.

    A regular file, or a stream (stdin, a pipe, a device), read up to ``MAX_DUMP_BYTES`` with
    lines of at most ``MAX_LINE_BYTES``: ``/dev/zero`` or an endless pipe fails in a moment
    with ``InputTooLarge`` rather than fill the memory. A gzip, xz or zstd stream is
    decompressed as it is read (the bounds apply to its text); other binary input is refused
    with what it looks like.
    """
    if path == "-":
        stdin = sys.stdin.buffer
        text = _read_text(_Chunks(getattr(stdin, "read1", stdin.read)), "stdin")
        return RawRead(text=text, source="stdin", taken_at=datetime.now(UTC))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"cannot read {path}: it is a folder, not a text dump")
        if stat.S_ISREG(st.st_mode) and st.st_size > MAX_DUMP_BYTES:
            raise InputTooLarge(f"{path}: {_too_large(st.st_size)}")
        text = _read_text(_Chunks(lambda n: os.read(fd, n)), path)
        # a stream's time is now; a file's, when it was last written
        seconds = st.st_mtime if stat.S_ISREG(st.st_mode) else time.time()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from e
    finally:
        os.close(fd)
    return RawRead(
        text=text, source="file", origin=path, taken_at=datetime.fromtimestamp(seconds, UTC)
    )


def read_bounded(read: Callable[[int], bytes], name: str) -> bytes:
    """Read a stream to its end with ``read(n)``, refusing more than ``MAX_DUMP_BYTES`` or a
    run of more than ``MAX_LINE_BYTES`` without a newline (checked as it comes: an endless
    stream stops at the first bound it passes)."""
    chunks = []
    total = 0
    run = 0  # bytes since the last newline
    while chunk := read(READ_CHUNK):
        total += len(chunk)
        if total > MAX_DUMP_BYTES:
            raise InputTooLarge(f"{name}: {_too_large(total)}")
        newline = chunk.rfind(b"\n")
        if newline < 0:
            run += len(chunk)
        else:
            first = chunk.find(b"\n")
            if run + first > MAX_LINE_BYTES:
                run += first
            else:
                run = len(chunk) - newline - 1
        if run > MAX_LINE_BYTES:
            raise InputTooLarge(
                f"{name}: not a text dump: a line longer than {MAX_LINE_BYTES:,} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int) -> str:
    return (
        f"more than {MAX_DUMP_BYTES >> 20} MiB (read {size:,} bytes): not an allocinfo dump "
        "(real ones are under 1 MiB)"
    )


class _Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _read_text(f: _Reader, name: str) -> bytes:
    """Return the text of a dump stream, decompressed if it is gzip, xz or zstd.

    The one place a dump's bytes are read: a bound on their size belongs here, where it
    applies to the decompressed text.
    """
    head = _head(f)
    stream: _Reader = _Prefixed(head, f)
    kind = compressed(head)
    if kind is None:
        text = read_bounded(stream.read, name)
    else:
        try:
            text = read_bounded(_decompressing(stream, kind, name).read, name)
        except (OSError, EOFError, lzma.LZMAError) as e:  # pyarrow's errors are OSErrors
            raise AllocsnapError(f"{name}: damaged {kind} stream: {e}") from e
    what = not_text(text[:HEAD])
    if what is not None:
        raise AllocsnapError(f"{name} is not a /proc/allocinfo text dump: {what}")
    return text


HEAD = 4096  # bytes looked at to tell what a file is
_MAGIC = {b"\x1f\x8b": "gzip", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_LOOKS_LIKE = {
    b"PAR1": "looks like a Parquet file: read it with allocsnap show FILE.parquet",
    b"\x7fELF": "looks like an ELF executable",
    b"PK\x03\x04": "looks like a zip archive: unzip it and give the dump inside",
    b"BZh": "looks like bzip2 data: decompress it with bunzip2 first",
    b"\x89PNG": "looks like a PNG image",
    b"%PDF": "looks like a PDF document",
}


def compressed(head: bytes) -> str | None:
    """Return gzip, xz or zstd when a file starts with that format's magic, else None."""
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def not_text(head: bytes) -> str | None:
    """Return what the first bytes of a file look like when they are not allocinfo text."""
    for magic, what in _LOOKS_LIKE.items():
        if head.startswith(magic):
            return what
    if head[257:262] == b"ustar":
        return "looks like a tar archive: extract it (tar xf) and give the dump inside"
    try:
        head.decode("utf-8") if len(head) < HEAD else head[: HEAD - 4].decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if b"\0" not in head:
            return None
    return f"binary data (starts with {head[:8].hex(' ')})"


def _head(f: _Reader) -> bytes:
    """Return the first bytes of a stream (several reads: a pipe hands out what it has)."""
    parts, size = [], 0
    while size < 8 and (chunk := f.read(8 - size)):
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


class _Chunks:
    """A stream read by a function that returns at most n bytes (os.read, read1)."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self.read_some = read

    def read(self, size: int = -1, /) -> bytes:
        return self.read_some(size if size >= 0 else READ_CHUNK)


class _Prefixed(io.RawIOBase):
    """A stream that hands out ``head`` and then the rest of ``f``."""

    def __init__(self, head: bytes, f: _Reader) -> None:
        self._head, self._f = head, f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._f.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _decompressing(f: _Reader, kind: str, name: str) -> _Reader:
    """Return a stream of ``f`` decompressed (gzip and xz by the stdlib, zstd by pyarrow)."""
    if kind == "gzip":
        return gzip.GzipFile(fileobj=cast(Any, f), mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(cast(Any, f), "rb")
    import pyarrow as pa

    if not pa.Codec.is_available("zstd"):
        raise AllocsnapError(f"{name} is zstd-compressed: decompress it with zstd -d first")
    return cast(_Reader, pa.CompressedInputStream(pa.PythonFile(f, mode="r"), "zstd"))


_modules: tuple[Path, bytes, tuple[str, ...]] | None = None  # PROC, the file, its names


def loaded_modules() -> tuple[str, ...] | None:
    """Return the names of the loaded modules, sorted, or None when /proc/modules is absent."""
    global _modules
    proc = PROC
    raw = _read_bytes(_proc_path(proc, "modules"), MODULES_MAX_BYTES)
    if raw is None:
        return None
    # read every time (a module can come or go between snapshots); parsed again only when the
    # file's bytes changed, which they also do when a use count moves
    if _modules is not None and _modules[0] is proc and _modules[1] == raw:
        return _modules[2]
    text = raw.decode().strip()
    names = tuple(sorted(line.split(" ", 1)[0] for line in text.splitlines() if line))
    _modules = (proc, raw, names)
    return names


_sysctl_fd: tuple[str, int] | None = None


def mem_profiling() -> int | None:
    """Return vm.mem_profiling (0 or 1), or None when the kernel has no such sysctl."""
    value = _read_sysctl(_proc_path(PROC, "sys/vm/mem_profiling"))
    if value is None:
        return None
    return 1 if value.strip() in (b"1", b"Y", b"y") else 0


def _read_sysctl(path: str) -> bytes | None:
    """Return the value of a sysctl, read afresh through a descriptor kept open: the kernel
    answers each read from the current value, and opening /proc/sys costs more than reading."""
    global _sysctl_fd
    for _ in range(2):  # a kept descriptor that fails is reopened once
        if _sysctl_fd is None or _sysctl_fd[0] != path:
            _close_sysctl()
            try:
                _sysctl_fd = (path, os.open(path, os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                return None
        try:
            return os.pread(_sysctl_fd[1], 4096, 0)
        except OSError:
            _close_sysctl()
    return None


def _close_sysctl() -> None:
    global _sysctl_fd
    if _sysctl_fd is not None:
        os.close(_sysctl_fd[1])
        _sysctl_fd = None


def drop_caches() -> None:
    """Write back dirty data, then have the kernel drop its clean caches: page cache, dentries
    and inodes (``echo 3 > /proc/sys/vm/drop_caches``); root only."""
    os.sync()
    path = PROC / "sys/vm/drop_caches"
    try:
        with open(path, "w") as f:
            f.write("3\n")
    except OSError as e:
        raise AllocinfoUnavailable(f"cannot write {path}: {e.strerror}") from e


_boot_ids: dict[Path, str] = {}


def boot_id() -> str | None:
    """Return this boot's random id, or None when /proc does not have it."""
    # a process never outlives its boot, so the id is read once
    proc = PROC
    known = _boot_ids.get(proc)
    if known is not None:
        return known
    raw = _read_bytes(_proc_path(proc, "sys/kernel/random/boot_id"), BOOT_ID_MAX_BYTES)
    if raw is None:
        return None
    _boot_ids[proc] = value = raw.decode().strip()
    return value


_paths: dict[tuple[Path, str], str] = {}


def _proc_path(proc: Path, relative: str) -> str:
    """Return ``proc / relative`` as text, joined once (tests point PROC elsewhere)."""
    path = _paths.get((proc, relative))
    if path is None:
        path = _paths[proc, relative] = str(proc / relative)
    return path


def _read_bytes(path: str, most: int) -> bytes | None:
    """Return a small /proc file's bytes, or None when it cannot be read; raise
    ``InputTooLarge`` past ``most`` bytes (not the kernel's file: never read without end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks, size = [], 0
        while chunk := os.read(fd, READ_CHUNK):
            size += len(chunk)
            if size > most:
                raise InputTooLarge(f"{path}: more than {most:,} bytes, not the kernel's file")
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks)


def _read_to_eof(path: Path) -> bytes:
    try:
        with open(path, "rb", buffering=0) as f:
            chunks = []
            total = 0
            while chunk := f.read(READ_CHUNK):
                chunks.append(chunk)
                total += len(chunk)
                if total > MAX_DUMP_BYTES:  # the kernel's table is ~400 KB; not that file
                    raise InputTooLarge(f"{path}: {_too_large(total)}")
    except OSError as e:
        raise AllocinfoUnavailable(explain_unavailable(path, e)) from e
    return b"".join(chunks)


def explain_unavailable(path: Path, e: OSError) -> str:
    """Return why ``path`` cannot be read and what to do about it, on one line."""
    release = os.uname().release
    if e.errno == errno.ENOENT:
        sysctl = PROC / "sys/vm/mem_profiling"
        if sysctl.exists():
            return (
                f"{path} does not exist, although kernel {release} has allocation profiling: it "
                "was booted with sysctl.vm.mem_profiling=never (or profiling shut itself down; see "
                "dmesg). Reboot with sysctl.vm.mem_profiling=1 on the kernel command line"
            )
        return (
            f"{path} does not exist: kernel {release} was built without "
            "CONFIG_MEM_ALLOC_PROFILING (Linux 6.10+ needs CONFIG_MEM_ALLOC_PROFILING=y, and "
            "sysctl.vm.mem_profiling=1 on the command line unless "
            "CONFIG_MEM_ALLOC_PROFILING_ENABLED_BY_DEFAULT=y). Saved dumps work without one: "
            "allocsnap diff BEFORE.txt AFTER.txt (README: 'Try it without a profiling kernel')"
        )
    if e.errno in (errno.EACCES, errno.EPERM):
        return (
            f"cannot read {path}: permission denied; it is mode 0400 root: run allocsnap as "
            "root (sudo) or with CAP_DAC_OVERRIDE"
        )
    return f"cannot read {path}: {e.strerror}"
