"""The 7.3+ ioctl ABI of /proc/allocinfo as data: the uapi structs of
``include/uapi/linux/alloc_tag.h`` (../shared/docs/allocinfo.md §7), the ioctl numbers computed
from each architecture's ``_IOC`` encoding, the kernel's exact filters made from allocsnap's
``Filter``, and the records it returns. No system calls here: ``ioctl`` walks the kernel.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import NamedTuple

from allocsnap import filters
from allocsnap.model import Filter

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


def applies_exactly(f: Filter) -> bool:
    """Return True when ``kernel_filter(f)`` keeps exactly the rows ``filters.apply`` keeps.

    Then the kernel's rows need no second pass. Names must be ASCII literals shorter than the
    63-character suffix the kernel compares (a longer one also matches other names ending the
    same way); size bounds and ``--nonzero`` are never exact (negative counts, docs/ioctl.md).
    """
    if f.min_size is not None or f.max_size is not None or f.nonzero:
        return False
    if f.line is not None and not 0 <= f.line < 1 << 32:  # the text's line is a u32
        return False
    names = (f.function, f.file, None if f.module == filters.BUILT_IN else f.module)
    return all(name is None or _exact_name(name) for name in names)


def _exact_name(name: str) -> bool:
    return is_literal(name) and name.isascii() and len(name) < NAME_MAX


def _name_bytes(name: str) -> bytes:
    """Return a name as the kernel stores it: its last 63 bytes (struct.pack NUL-pads)."""
    return name.encode()[-NAME_MAX:]


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
