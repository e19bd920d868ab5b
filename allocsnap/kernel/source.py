"""The only module that reads the running kernel: /proc/allocinfo and the facts around it.

``ALLOCINFO`` and ``PROC`` are read at call time, so tests point them elsewhere. A failed read
becomes an ``AllocinfoUnavailable`` that says why (kernel option, boot parameter, permissions)
and how to fix it; the kernel facts are in ../shared/docs/allocinfo.md §4.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from allocsnap.errors import AllocinfoUnavailable, InputTooLarge, UsageError
from allocsnap.model import MAX_DUMP_BYTES, MAX_LINE_BYTES

ALLOCINFO = Path("/proc/allocinfo")
PROC = Path("/proc")
READ_CHUNK = 1 << 16  # the kernel hands out about a page per read() whatever we ask
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
    with ``InputTooLarge`` rather than fill the memory.
    """
    if path == "-":
        stdin = sys.stdin.buffer
        text = read_bounded(getattr(stdin, "read1", stdin.read), "stdin")
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
        text = read_bounded(lambda n: os.read(fd, n), path)
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


def loaded_modules() -> tuple[str, ...] | None:
    """Return the names of the loaded modules, sorted, or None when /proc/modules is absent."""
    text = _read_proc("modules")
    if text is None:
        return None
    return tuple(sorted(line.split(" ", 1)[0] for line in text.splitlines() if line))


def mem_profiling() -> int | None:
    """Return vm.mem_profiling (0 or 1), or None when the kernel has no such sysctl."""
    value = _read_proc("sys/vm/mem_profiling")
    if value is None:
        return None
    return 1 if value.strip() in ("1", "Y", "y") else 0


def boot_id() -> str | None:
    """Return this boot's random id, or None when /proc does not have it."""
    return _read_proc("sys/kernel/random/boot_id")


def _read_proc(relative: str) -> str | None:
    try:
        return (PROC / relative).read_text().strip()
    except OSError:
        return None


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
