"""Read a saved text dump as the one-shot path needs it: rows of plain Python values.

Only a dump the normal path would read without a word is taken: a regular file of at most
``MAX_DUMP_BYTES`` of the kernel's plain ASCII text, every line a row, a known header or a
comment. Anything else — compressed, binary, a bad line, an
unknown version — is ``NotQuick``, and the normal path reads it
(and says what is wrong with it, naming the line). The row and header expressions are the
parser's own (allocsnap/kernel/parse.py; tests/test_quick.py checks they are the same text).
"""

from __future__ import annotations

import os
import re
import stat
from collections import namedtuple
from datetime import UTC, datetime

TYPE_CHECKING = False  # typing and dataclasses stay out of the one-shot path (render.py)
if TYPE_CHECKING:
    from typing import Any, NamedTuple

MAX_DUMP_BYTES = 16 << 20  # model.MAX_DUMP_BYTES
MAX_LINE_BYTES = 4096  # model.MAX_LINE_BYTES
SCHEMA_VERSION = 3  # model.SCHEMA_VERSION, written in --format json's metadata
KNOWN_VERSIONS = ("1.0", "2.0")  # parse.KNOWN_VERSIONS
UNKNOWN_HOST = "unknown"  # capture.UNKNOWN_HOST
COUNTED_NOTHING_NOTE = (  # capture.COUNTED_NOTHING_NOTE
    "every counter is 0: taken with profiling off (vm.mem_profiling=0, or never on); recorded "
    "as profiling off, so windows leave it out"
)

HEADER = re.compile(r"^allocinfo - version: (\d+\.\d+)\s*$")
ROW = re.compile(
    r"^\s*(-?\d+)\s+(\d+)\s+(.+?):(\d+)(?:\s+\[([^\]\s]+)\])?\s+func:(\S+)"
    r"((?:\s+[A-Za-z_]\w*:\S*)*)\s*$"
)
_PLAIN = b"\t\n" + bytes(range(0x20, 0x7F))  # the kernel's bytes: nothing else is taken here
_MAX_U64 = 2**64 - 1
_MAX_U32 = 2**32 - 1


class NotQuick(Exception):
    """The one-shot path cannot answer exactly as the normal path would: take that one."""


if TYPE_CHECKING:

    class Row(NamedTuple):
        """One row of a dump: the call site and its counters (``calls`` read as signed)."""

        file: str
        line: int
        module: str | None
        function: str
        bytes: int
        calls: int

else:
    Row = namedtuple("Row", "file line module function bytes calls")


class Dump:
    """A saved dump read as ``capture.snapshot`` describes it: metadata and rows."""

    host = UNKNOWN_HOST
    boot_id = None  # the boot, kernel, name and labels of a dump are not known
    kernel = None
    name = None
    source = "file"

    def __init__(
        self,
        *,
        path: str,
        snapshot_id: str,
        taken_at: datetime,
        format: str,
        modules: tuple[str, ...],
        rows: list[Row],
        total_bytes: int,  # live bytes summed over every row
        total_calls: int,  # calls summed over every row, each read as signed
        magnitude: int,  # the sum of every counter's absolute value: no sum of rows passes it
    ) -> None:
        self.path = path
        self.snapshot_id = snapshot_id
        self.taken_at = taken_at
        self.format = format
        self.modules = modules
        self.rows = rows
        self.total_bytes = total_bytes
        self.total_calls = total_calls
        self.magnitude = magnitude

    @property
    def counted_nothing(self) -> bool:
        """True when the dump has rows and every counter is 0: taken with profiling off."""
        return self.magnitude == 0 and bool(self.rows)

    @property
    def profiling(self) -> int | None:
        """vm.mem_profiling as capture.snapshot infers it for a dump: 0 when it counted
        nothing, else unknown."""
        return 0 if self.counted_nothing else None

    @property
    def notes(self) -> list[str]:
        """The snapshot's notes: the parser gives none for a dump taken here."""
        return [COUNTED_NOTHING_NOTE] if self.counted_nothing else []

    @property
    def origin(self) -> str:
        """The file the dump was read from."""
        return self.path

    def to_row(self) -> dict[str, Any]:
        """Return the metadata as ``SnapshotMeta.to_row`` gives it (for --format json)."""
        return {
            "snapshot_id": self.snapshot_id,
            "name": None,
            "taken_at": self.taken_at,
            "boottime_s": None,
            "host": UNKNOWN_HOST,
            "boot_id": None,
            "kernel": None,
            "format": self.format,
            "source": "file",
            "origin": self.path,
            "profiling": self.profiling,
            "filter": "",
            "read_s": None,
            "modules": list(self.modules),
            "labels": [],
            "notes": self.notes,
            "rows": len(self.rows),
            "total_bytes": self.total_bytes,
            "total_calls": self.total_calls,
            "skipped_lines": 0,
            "schema_version": SCHEMA_VERSION,
        }


def is_plain_file(path: str) -> bool:
    """Return True when ``path`` is a regular file that is not a Parquet snapshot file."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            return f.read(4) != b"PAR1"
    except OSError:
        return False


def read(path: str) -> Dump:
    """Return the dump at ``path``; raise ``NotQuick`` for anything but a clean text dump."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NotQuick(path) from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_DUMP_BYTES:
            raise NotQuick(path)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError as e:
        raise NotQuick(path) from e
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > MAX_DUMP_BYTES or raw.translate(None, _PLAIN):
        raise NotQuick(path)
    taken_at = datetime.fromtimestamp(st.st_mtime, UTC)
    version, rows = parse(raw.decode("ascii"))
    sizes = [r.bytes for r in rows]
    calls = [r.calls for r in rows]
    return Dump(
        path=path,
        snapshot_id=snapshot_id(taken_at, raw),
        taken_at=taken_at,
        format=version or "none",
        modules=tuple(sorted({r.module for r in rows if r.module is not None})),
        rows=rows,
        total_bytes=sum(sizes),
        total_calls=sum(calls),
        magnitude=sum(map(abs, sizes)) + sum(map(abs, calls)),
    )


def parse(text: str) -> tuple[str | None, list[Row]]:
    """Return the header version and the rows of a dump's text, as ``parse.parse`` reads them.

    Raise ``NotQuick`` wherever that parser would refuse a line or note something.
    """
    if not text.strip():
        raise NotQuick("empty")
    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    version: str | None = None
    rows: list[Row] = []
    trailing = 0
    match_row, match_header = ROW.match, HEADER.match
    for line in lines:
        if len(line) >= MAX_LINE_BYTES:
            raise NotQuick("long line")
        m = match_row(line)
        if m is None:
            header = match_header(line)
            if header is not None:
                version = header.group(1)
                if version not in KNOWN_VERSIONS:
                    raise NotQuick("unknown version")  # the normal path notes it
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            raise NotQuick("not a row")  # the normal path names the line and why
        bytes_s, calls_s, file, line_s, module, function, _ = m.groups()
        size, calls, number = int(bytes_s), int(calls_s), int(line_s)
        if calls > _MAX_U64 or number > _MAX_U32 or not -(2**63) <= size < 2**63:
            raise NotQuick("out of range")
        if line.endswith(" "):
            trailing += 1
        signed = calls - 2**64 if calls >= 2**63 else calls
        rows.append(Row(file, number, module, function, size, signed))
    if not ends_with_newline and lines and len(rows) >= 2:
        last = lines[-1]
        if match_row(last) and not last.endswith(" ") and trailing == len(rows) - 1:
            raise NotQuick("truncated last line")
    return version, rows


def snapshot_id(taken_at: datetime, raw: bytes) -> str:
    """Return the id ``capture.snapshot`` gives a dump read from a file, unnamed, unfiltered."""
    import hashlib  # here: show and diff of stored snapshots import this module, not this

    digest = hashlib.blake2b(digest_size=6)
    for part in (UNKNOWN_HOST, "", taken_at.isoformat(), ""):
        digest.update(part.encode() + b"\0")
    digest.update(raw)
    return digest.hexdigest()
