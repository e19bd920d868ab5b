"""The 7.3+ binary interface of /proc/allocinfo: the only module that calls ``fcntl.ioctl``.

Implements the uapi ABI of ``include/uapi/linux/alloc_tag.h`` (../shared/docs/allocinfo.md §7):
the struct layouts, the ioctl numbers computed from each architecture's ``_IOC`` encoding, the
``GET_AT``/``GET_NEXT`` walk inside a ``CONTENT_ID`` bracket, and the mapping of allocsnap's
``Filter`` onto the kernel's exact filters. What the kernel cannot filter exactly (globs, negative
or upper size bounds, ``--nonzero``) is applied afterwards with ``filters.apply``, so a snapshot
equals the text path's for the same filter. Names come back as their last 63 characters; how
they are reconciled with the text is described in docs/ioctl.md.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import pyarrow as pa

from allocsnap import filters
from allocsnap.errors import AllocinfoUnavailable, IoctlUnsupported
from allocsnap.kernel import parse, source
from allocsnap.model import SAMPLE_SCHEMA, Filter, tag_id

# -- the ABI -------------------------------------------------------------------------------------

STR_SIZE = 64  # ALLOCINFO_STR_SIZE: 63 characters and a NUL
NAME_MAX = STR_SIZE - 1
"""Names longer than this come back as their last ``NAME_MAX`` characters."""

# Native byte order and sizes, laid out by hand exactly as the C structs (all fields 8-aligned).
CONTENT_ID = struct.Struct("=Q")  # struct allocinfo_content_id: 8
TAG_DATA = struct.Struct("=64s64s64sQqQB7x")  # struct allocinfo_tag_data: 224 (bytes as s64)
FILTER = struct.Struct("=Q64s64s64sQQQQ")  # struct allocinfo_filter: 232
GET_AT = struct.Struct("=Q" + FILTER.format[1:] + TAG_DATA.format[1:])  # allocinfo_get_at: 464
GET_AT_DATA_OFFSET = 8 + FILTER.size

MASK_MODNAME = 1 << 0
MASK_FUNCTION = 1 << 1
MASK_FILENAME = 1 << 2
MASK_LINENO = 1 << 3
MASK_INACCURATE = 1 << 4
MASK_MIN_SIZE = 1 << 5
MASK_MAX_SIZE = 1 << 6

IOC_TYPE = 0xA6  # ALLOCINFO_IOC_BASE
NR_CONTENT_ID = 0
NR_GET_AT = 1
NR_GET_NEXT = 2

RETRIES = 10
"""Walks tried while CONTENT_ID changes (a module came or went), as the kernel's kselftest."""


class IocEncoding(NamedTuple):
    """One architecture's ``_IOC`` layout (``asm/ioctl.h``): field widths and direction values."""

    size_bits: int
    dir_bits: int
    none: int
    write: int
    read: int


GENERIC = IocEncoding(size_bits=14, dir_bits=2, none=0, write=1, read=2)  # asm-generic
# powerpc, mips, sparc and alpha: 13 size bits, 3 direction bits; parisc swaps read and write.
THREE_DIR_BITS = IocEncoding(size_bits=13, dir_bits=3, none=1, write=4, read=2)
PARISC = IocEncoding(size_bits=14, dir_bits=2, none=0, write=2, read=1)
_MACHINE_PREFIXES = {
    "ppc": THREE_DIR_BITS,
    "powerpc": THREE_DIR_BITS,
    "mips": THREE_DIR_BITS,
    "sparc": THREE_DIR_BITS,
    "alpha": THREE_DIR_BITS,
    "parisc": PARISC,
}


def encoding_for(machine: str) -> IocEncoding:
    """Return the ``_IOC`` encoding of an ``os.uname().machine`` (generic unless listed)."""
    for prefix, enc in _MACHINE_PREFIXES.items():
        if machine.startswith(prefix):
            return enc
    return GENERIC


def ioc(enc: IocEncoding, direction: int, type_: int, nr: int, size: int) -> int:
    """Return ``_IOC(dir, type, nr, size)``: nr in bits 0-7, type 8-15, then size, then dir."""
    if not 0 <= size < 1 << enc.size_bits:
        raise ValueError(f"ioctl argument size {size} does not fit {enc.size_bits} bits")
    size_shift = 16
    dir_shift = size_shift + enc.size_bits
    return (direction << dir_shift) | (size << size_shift) | (type_ << 8) | nr


class Numbers(NamedTuple):
    """The three ALLOCINFO_IOC_* request numbers of one architecture."""

    content_id: int
    get_at: int
    get_next: int


def numbers(machine: str | None = None) -> Numbers:
    """Return the request numbers for ``machine`` (default: this one)."""
    enc = encoding_for(os.uname().machine if machine is None else machine)
    read, read_write = enc.read, enc.read | enc.write
    return Numbers(
        content_id=ioc(enc, read, IOC_TYPE, NR_CONTENT_ID, CONTENT_ID.size),  # _IOR
        get_at=ioc(enc, read_write, IOC_TYPE, NR_GET_AT, GET_AT.size),  # _IOWR
        get_next=ioc(enc, read, IOC_TYPE, NR_GET_NEXT, TAG_DATA.size),  # _IOR
    )


# -- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelFilter:
    """``struct allocinfo_filter``: what the kernel is asked to filter, exactly."""

    mask: int = 0
    modname: str = ""
    function: str = ""
    filename: str = ""
    lineno: int = 0
    min_size: int = 0
    max_size: int = 0
    inaccurate: int = 0

    def pack(self) -> bytes:
        """Return the 232 bytes of the C struct."""
        return FILTER.pack(
            self.mask,
            _name_bytes(self.modname),
            _name_bytes(self.function),
            _name_bytes(self.filename),
            self.lineno,
            self.min_size,
            self.max_size,
            self.inaccurate,
        )


_GLOB_CHARS = frozenset("*?[")


def is_literal(pattern: str | None) -> bool:
    """Return True when a name pattern has no glob characters, so the kernel can match it."""
    return bool(pattern) and not _GLOB_CHARS.intersection(pattern or "")


def kernel_filter(f: Filter) -> KernelFilter:
    """Return the part of ``f`` the kernel applies without dropping a row the text path keeps.

    The kernel's result is a superset of the text path's; the full filter is applied afterwards.
    Names: literals only (the kernel compares the last 63 characters exactly); ``built-in`` is
    the empty module name. Sizes: the kernel compares the u64 copy of the signed byte count, so
    a negative count looks huge: a lower bound >= 0 still drops only rows the signed comparison
    drops, but an upper bound would drop negative rows, so it stays in userspace.
    """
    mask = 0
    modname = function = filename = ""
    lineno = min_size = inaccurate = 0
    if f.module == filters.BUILT_IN:
        mask |= MASK_MODNAME
    elif is_literal(f.module):
        mask |= MASK_MODNAME
        modname = f.module or ""
    if is_literal(f.function):
        mask |= MASK_FUNCTION
        function = f.function or ""
    if is_literal(f.file):
        mask |= MASK_FILENAME
        filename = f.file or ""
    if f.line is not None and f.line >= 0:
        mask |= MASK_LINENO
        lineno = f.line
    if f.min_size is not None and f.min_size >= 0:
        mask |= MASK_MIN_SIZE
        min_size = f.min_size
    if f.accurate is not None:
        mask |= MASK_INACCURATE
        inaccurate = 0 if f.accurate else 1  # input "inaccurate", output "accurate"
    return KernelFilter(mask, modname, function, filename, lineno, min_size, 0, inaccurate)


def _name_bytes(name: str) -> bytes:
    """Return a name as the kernel stores it: its last 63 bytes (struct.pack NUL-pads)."""
    return name.encode()[-NAME_MAX:]


# -- the walk -----------------------------------------------------------------------------------


class Record(NamedTuple):
    """One ``struct allocinfo_tag_data``, decoded."""

    module: str | None  # None for built-in code (the kernel sends "")
    function: str
    file: str
    line: int
    bytes: int  # signed
    calls: int
    accurate: bool


def unpack_record(buf: bytes | bytearray, offset: int = 0) -> Record:
    """Decode one ``struct allocinfo_tag_data`` at ``offset``."""
    modname, function, filename, lineno, nbytes, calls, accurate = TAG_DATA.unpack_from(buf, offset)
    module = _c_string(modname)
    return Record(
        module=module or None,
        function=_c_string(function),
        file=_c_string(filename),
        line=lineno,
        bytes=nbytes,
        calls=calls,
        accurate=bool(accurate),
    )


def _c_string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Walk:
    """The records of one consistent walk and how it went."""

    records: list[Record]
    content_id: int
    attempts: int  # walks made; more than 1 when a module came or went
    consistent: bool  # False when CONTENT_ID still changed on the last attempt
    text: bytes | None = None  # the text read inside the same bracket, when it was needed


def walk(
    fd: int,
    kf: KernelFilter,
    *,
    retries: int = RETRIES,
    text_when: Callable[[Record], bool] | None = None,
) -> Walk:
    """Walk every tag matching ``kf``: CONTENT_ID, GET_AT(0), GET_NEXT to ENOENT, CONTENT_ID.

    Retried up to ``retries`` times while the content id changes. When ``text_when`` holds for a
    record, the text is also read from the same descriptor inside the bracket (the read()
    iterator is separate from the ioctl one). Raises ``IoctlUnsupported`` on ENOTTY (no
    interface) or EINVAL (a layout or filter the kernel refuses).
    """
    nums = numbers()
    attempts = 0
    while True:
        attempts += 1
        before = _content_id(fd, nums)
        records = _walk_once(fd, nums, kf)
        wanted = text_when is not None and any(text_when(r) for r in records)
        text = _read_text(fd) if wanted else None
        after = _content_id(fd, nums)
        if before == after or attempts >= retries:
            break
    return Walk(records, after, attempts, before == after, text)


def _content_id(fd: int, nums: Numbers) -> int:
    buf = bytearray(CONTENT_ID.size)
    _ioctl(fd, nums.content_id, buf, "CONTENT_ID")
    value: int = CONTENT_ID.unpack(buf)[0]
    return value


def _walk_once(fd: int, nums: Numbers, kf: KernelFilter) -> list[Record]:
    buf = bytearray(GET_AT.size)
    buf[8:GET_AT_DATA_OFFSET] = kf.pack()  # pos = 0
    if not _ioctl(fd, nums.get_at, buf, "GET_AT"):
        return []
    records = [unpack_record(buf, GET_AT_DATA_OFFSET)]
    buf = bytearray(TAG_DATA.size)
    while _ioctl(fd, nums.get_next, buf, "GET_NEXT"):
        records.append(unpack_record(buf))
    return records


def _ioctl(fd: int, request: int, buf: bytearray, name: str) -> bool:
    """Run one ioctl in place; return False on ENOENT (the end of the walk)."""
    try:
        fcntl.ioctl(fd, request, buf, True)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return False
        if e.errno in (errno.ENOTTY, errno.EINVAL):
            raise IoctlUnsupported(
                f"{source.ALLOCINFO}: ALLOCINFO_IOC_{name} failed with {errno.errorcode[e.errno]} "
                f"on kernel {os.uname().release}: no usable ioctl interface (it arrived in Linux "
                "7.3); use --source procfs, or auto to fall back to the text"
            ) from e
        raise AllocinfoUnavailable(f"{source.ALLOCINFO}: ALLOCINFO_IOC_{name}: {e}") from e
    return True


def _read_text(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, source.READ_CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


# -- rows ---------------------------------------------------------------------------------------

_tag_ids: dict[tuple[str | None, str, int, str], int] = {}


def may_be_truncated(record: Record) -> bool:
    """Return True when a name is at the 63-character limit, so it may have lost its prefix."""
    return len(record.file) >= NAME_MAX or len(record.function) >= NAME_MAX


def full_names(text: bytes | str) -> dict[tuple[str | None, str, int, str], set[tuple[str, str]]]:
    """Return, from an allocinfo text, (module, file suffix, line, function suffix) -> names."""
    table = parse.parse(text, source=str(source.ALLOCINFO), lenient=True).samples
    names: dict[tuple[str | None, str, int, str], set[tuple[str, str]]] = {}
    for module, file, line, function in zip(
        table["module"].to_pylist(),
        table["file"].to_pylist(),
        table["line"].to_pylist(),
        table["function"].to_pylist(),
        strict=True,
    ):
        key = (module, file[-NAME_MAX:], line, function[-NAME_MAX:])
        names.setdefault(key, set()).add((file, function))
    return names


def reconcile(records: list[Record], text: bytes | str | None) -> tuple[list[Record], list[str]]:
    """Return the records with names at the 63-character limit replaced by the text's full names.

    A suffix that the text maps to exactly one full (file, function) pair is replaced; one that
    maps to none or several is kept as it came, and a note says how many rows that concerns.
    """
    suspects = [r for r in records if may_be_truncated(r)]
    if not suspects:
        return records, []
    if text is None:
        return records, [
            f"{len(suspects)} row(s) have a name at the ioctl's 63-character limit; kept as "
            "possibly truncated suffixes"
        ]
    names = full_names(text)
    unresolved = 0
    out = []
    for r in records:
        if may_be_truncated(r):
            found = names.get((r.module, r.file, r.line, r.function), set())
            if len(found) == 1:
                file, function = next(iter(found))
                r = r._replace(file=file, function=function)
            else:
                unresolved += 1
        out.append(r)
    notes = []
    if unresolved:
        notes.append(
            f"{unresolved} row(s) with a name at the ioctl's 63-character limit did not match "
            "exactly one text row; kept as possibly truncated suffixes"
        )
    return out, notes


def to_table(records: Iterable[Record]) -> pa.Table:
    """Return records as a ``SAMPLE_SCHEMA`` table; ordinal is the position in the walk."""
    cols: dict[str, list[object]] = {name: [] for name in SAMPLE_SCHEMA.names}
    seen: dict[tuple[str | None, str, int, str], int] = {}
    for ordinal, r in enumerate(records):
        key = (r.module, r.file, r.line, r.function)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        ident = _tag_ids.get(key)
        if ident is None:
            ident = _tag_ids.setdefault(key, tag_id(*key))
        cols["ordinal"].append(ordinal)
        cols["tag_id"].append(ident)
        cols["occurrence"].append(occurrence)
        cols["file"].append(r.file)
        cols["line"].append(r.line)
        cols["module"].append(r.module)
        cols["function"].append(r.function)
        cols["bytes"].append(r.bytes)
        cols["calls"].append(r.calls)
        cols["accurate"].append(r.accurate)
        cols["extras"].append(None)
    return pa.Table.from_pydict(cols, schema=SAMPLE_SCHEMA)


# -- the read -----------------------------------------------------------------------------------


def read_kernel(keep: Filter | None = None, *, resolve_names: bool = True) -> source.RawRead:
    """Read the kernel's table through the ioctl, filtered by ``keep``, with the kernel facts.

    The kernel filters what it can exactly; ``keep`` is then applied in full. With
    ``resolve_names``, names at the 63-character limit are completed from the text, read from
    the same descriptor inside the same CONTENT_ID bracket (only when such a name came back).
    """
    keep = keep or Filter()
    path = source.ALLOCINFO
    kf = kernel_filter(keep)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise AllocinfoUnavailable(source.explain_unavailable(path, e)) from e
    try:
        started = time.perf_counter()
        result = walk(fd, kf, text_when=may_be_truncated if resolve_names else None)
        read_s = time.perf_counter() - started
    finally:
        os.close(fd)
    notes: list[str] = []
    if not result.consistent:
        notes.append(
            f"modules changed during each of {result.attempts} ioctl walks "
            "(CONTENT_ID moved); kept the last"
        )
    elif result.attempts > 1:
        notes.append(f"modules changed during the ioctl walk; consistent on try {result.attempts}")
    records, name_notes = reconcile(result.records, result.text)
    notes += name_notes
    samples = filters.apply(to_table(records), keep)
    profiling = source.mem_profiling()
    if profiling == 0:
        notes.append(source.PROFILING_OFF_NOTE)
    return source.RawRead(
        text=b"",
        source="ioctl",
        origin=str(path),
        taken_at=datetime.now(UTC),
        boottime_s=time.clock_gettime(time.CLOCK_BOOTTIME),
        read_s=read_s,
        host=socket.gethostname(),
        boot_id=source.boot_id(),
        kernel=os.uname().release,
        profiling=profiling,
        modules=source.loaded_modules(),
        notes=tuple(notes),
        samples=samples,
        format="ioctl",
    )
