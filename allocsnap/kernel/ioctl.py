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

import array
import errno
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

import pyarrow as pa

from allocsnap import filters
from allocsnap.errors import AllocinfoUnavailable, IoctlUnsupported
from allocsnap.kernel import parse, source
from allocsnap.kernel.ioctl_abi import (
    CONTENT_ID,
    GET_AT,
    GET_AT_DATA_OFFSET,
    NAME_MAX,
    TAG_DATA,
    KernelFilter,
    Numbers,
    Record,
    applies_exactly,
    kernel_filter,
    numbers,
    unpack_record,
)
from allocsnap.model import SAMPLE_SCHEMA, Filter, TagKey, remembered_tag_id, tag_ids

RETRIES = 10
"""Walks tried while CONTENT_ID changes (a module came or went), as the kernel's kselftest."""


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
    text_when: Callable[[list[Record]], bool] | None = None,
) -> Walk:
    """Walk every tag matching ``kf``: CONTENT_ID, GET_AT(0), GET_NEXT to ENOENT, CONTENT_ID.

    Retried up to ``retries`` times while the content id changes. When ``text_when`` holds for
    the records, the text is also read from the same descriptor inside the bracket (the read()
    iterator is separate from the ioctl one). Raises ``IoctlUnsupported`` on ENOTTY (no
    interface) or EINVAL (a layout or filter the kernel refuses).
    """
    nums = _numbers()
    attempts = 0
    while True:
        attempts += 1
        before = _content_id(fd, nums)
        records = _walk_once(fd, nums, kf)
        wanted = text_when is not None and text_when(records)
        text = _read_text(fd) if wanted else None
        after = _content_id(fd, nums)
        if before == after or attempts >= retries:
            break
    return Walk(records, after, attempts, before == after, text)


@cache
def _numbers() -> Numbers:
    return numbers()  # the machine a process runs on does not change


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
    """Return the text of the file the walk read, bounded as every dump is."""
    os.lseek(fd, 0, os.SEEK_SET)
    return source.read_bounded(lambda n: os.read(fd, n), str(source.ALLOCINFO))


# -- rows ---------------------------------------------------------------------------------------


def may_be_truncated(record: Record) -> bool:
    """Return True when a name is at the 63-character limit, so it may have lost its prefix."""
    return len(record.file) >= NAME_MAX or len(record.function) >= NAME_MAX


def any_truncated(records: list[Record]) -> bool:
    """Return True when a record has a name at the 63-character limit (``may_be_truncated``)."""
    if not records:
        return False
    _, functions, files, *_ = zip(*records, strict=True)
    return max(map(len, files + functions)) >= NAME_MAX


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


_EMPTY = SAMPLE_SCHEMA.empty_table()  # immutable: one for every walk that returns nothing
_last_tags: tuple[tuple[tuple[object, ...], ...], list[pa.Array]] | None = None
_last_accurate: tuple[tuple[object, ...], pa.Array] | None = None


def to_table(records: Iterable[Record]) -> pa.Table:
    """Return records as a ``SAMPLE_SCHEMA`` table; ordinal is the position in the walk.

    Built once from column lists. The columns that only the call sites decide (ids, names,
    ordinals, occurrences) are kept from the last call while the walk returns the same sites in
    the same order, as the recorder's repeated snapshots of one filter do.
    """
    return _table(_columns(records))


Columns = tuple[tuple[Any, ...], ...]
"""The records' fields as columns, in ``Record``'s order."""


def _columns(records: Iterable[Record]) -> Columns:
    return tuple(zip(*records, strict=True)) or ((),) * len(Record._fields)


def _table(columns: Columns) -> pa.Table:
    global _last_tags, _last_accurate
    if not columns[0]:  # a filter that matched nothing: 0.4 ms of Arrow calls in the guest
        return _EMPTY
    modules, functions, files, lines, nbytes, calls, accurate = columns
    sites = columns[:4]
    if _last_tags is not None and _last_tags[0] == sites:
        tags = _last_tags[1]
    else:
        tags = _tag_columns(modules, files, lines, functions)
        _last_tags = (sites, tags)
    if _last_accurate is not None and _last_accurate[0] == accurate:
        accurate_array = _last_accurate[1]
    else:
        accurate_array = pa.array(accurate, pa.bool_())
        _last_accurate = (accurate, accurate_array)
    ordinal, ident, occurrence, file, line, module, function, extras = tags
    values = [_int_array(pa.int64(), "q", nbytes), _int_array(pa.uint64(), "Q", calls)]
    arrays = [ordinal, ident, occurrence, file, line, module, function, *values, accurate_array]
    return pa.Table.from_arrays([*arrays, extras], schema=SAMPLE_SCHEMA)


def _tag_columns(
    modules: tuple[str | None, ...],
    files: tuple[str, ...],
    lines: tuple[int, ...],
    functions: tuple[str, ...],
) -> list[pa.Array]:
    """Return ordinal, tag_id, occurrence, file, line, module, function and extras of a walk."""
    ids, occurrences = [], []
    seen: dict[TagKey, int] = {}
    for key in zip(modules, files, lines, functions, strict=True):
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        ident = tag_ids.get(key)
        if ident is None:
            ident = remembered_tag_id(key)
        ids.append(ident)
        occurrences.append(occurrence)
    return [
        _int_array(pa.uint32(), "I", range(len(files))),
        _int_array(pa.int64(), "q", ids),
        pa.array(occurrences, pa.uint16()),
        pa.array(files, pa.string()),
        pa.array(lines, pa.uint32()),
        pa.array(modules, pa.string()),
        pa.array(functions, pa.string()),
        pa.nulls(len(files), pa.string()),
    ]


def _int_array(kind: pa.DataType, code: str, values: Iterable[int]) -> pa.Array:
    """Return integers as an Arrow array without nulls, from their machine representation
    (``array.array`` checks the range, as ``pa.array`` would)."""
    data = array.array(code, values)
    return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])


def record_totals(records: list[Record]) -> tuple[int, int]:
    """Return the bytes and calls of records summed as ``capture.with_totals`` sums a table:
    in 64-bit two's complement (calls, a u64 that can underflow, come out signed)."""
    return _totals(_columns(records))


def _totals(columns: Columns) -> tuple[int, int]:
    return _wrap64(sum(columns[4])), _wrap64(sum(columns[5]))


def _wrap64(value: int) -> int:
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


# -- the read -----------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _kernel_part(keep: Filter) -> tuple[KernelFilter, bool]:
    """Return the kernel's filter for ``keep`` and whether it is all of ``keep``."""
    return kernel_filter(keep), applies_exactly(keep)


def read_kernel(keep: Filter | None = None, *, resolve_names: bool = True) -> source.RawRead:
    """Read the kernel's table through the ioctl, filtered by ``keep``, with the kernel facts.

    The kernel filters what it can exactly; ``keep`` is then applied in full. With
    ``resolve_names``, names at the 63-character limit are completed from the text, read from
    the same descriptor inside the same CONTENT_ID bracket (only when such a name came back).
    """
    keep = keep or Filter()
    path = source.ALLOCINFO
    kf, exact = _kernel_part(keep)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise AllocinfoUnavailable(source.explain_unavailable(path, e)) from e
    try:
        started = time.perf_counter()
        result = walk(fd, kf, text_when=any_truncated if resolve_names else None)
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
    if resolve_names and result.text is None:  # the walk found no name at the limit
        records = result.records
    else:
        records, name_notes = reconcile(result.records, result.text)
        notes += name_notes
    columns = _columns(records)
    table = _table(columns)
    if exact:  # the kernel kept exactly these rows
        samples, totals = table, _totals(columns)
    else:
        samples, totals = filters.apply(table, keep), None
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
        kept=keep,
        totals=totals,
    )
