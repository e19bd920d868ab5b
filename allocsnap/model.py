"""The data allocsnap works on: snapshot metadata, filters and the sample schema.

Plain frozen dataclasses and Arrow schemas, no I/O. A snapshot's rows live in a ``pyarrow.Table``
with ``SAMPLE_SCHEMA`` (one row per row the kernel printed, in its order); the metadata that
describes the read travels beside it in ``SnapshotMeta``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from allocsnap.errors import UsageError
from allocsnap.snapshot_meta import SCHEMA_VERSION as SCHEMA_VERSION
from allocsnap.snapshot_meta import SnapshotMeta as SnapshotMeta

SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("ordinal", pa.uint32(), nullable=False),  # row position in the kernel's output
        pa.field("tag_id", pa.int64(), nullable=False),  # tag_id(module, file, line, function)
        pa.field("occurrence", pa.uint16(), nullable=False),  # 0, 1, … among rows of one key
        pa.field("file", pa.string(), nullable=False),
        pa.field("line", pa.uint32(), nullable=False),
        pa.field("module", pa.string()),  # NULL for built-in code
        pa.field("function", pa.string(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),  # live bytes, signed: negatives occur
        pa.field("calls", pa.uint64(), nullable=False),  # live calls, may have underflowed
        pa.field("accurate", pa.bool_(), nullable=False),  # false for "accurate:no"
        pa.field("extras", pa.string()),  # unknown key:value tokens, raw, or NULL
    ]
)


# -- input bounds (docs/storage.md, "Names"; docs/commands.md, "Saved dumps") ---------------

MAX_DUMP_BYTES = 16 << 20
"""The largest text dump or stream read: real dumps are ~3,400 lines and ~400 KB (a kernel with
many modules, ~1 MB); the parser holds about ten times the text in memory."""
MAX_LINE_BYTES = 4096
"""The longest dump line read: the kernel's rows are under 300 bytes (a path, a function)."""
NAME_CHARS = "A-Z a-z 0-9 . _ -"
MAX_HOST_CHARS = 253  # a DNS name's limit: every host name fits
MAX_NAME_CHARS = 64
RESERVED_NAMES = ("first", "latest")
"""Snapshot references the resolver reads before names (analysis.compare): never names."""
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def check_host(host: str) -> str:
    """Return ``host`` if it may name a host (a store partition, ``host=H``); else raise
    ``UsageError`` naming the allowed characters."""
    return _check("host name", host, MAX_HOST_CHARS)


def check_snapshot_name(name: str) -> str:
    """Return ``name`` if it may name a snapshot; else raise ``UsageError``. ``first`` and
    ``latest`` are references to other snapshots, so they are refused."""
    _check("snapshot name", name, MAX_NAME_CHARS)
    if name.lower() in RESERVED_NAMES:
        raise UsageError(
            f"snapshot name {name!r} is reserved: {' and '.join(RESERVED_NAMES)} always mean "
            "the oldest and newest snapshot; choose another --name"
        )
    return name


def _check(what: str, text: str, longest: int) -> str:
    if 0 < len(text) <= longest and _NAME.fullmatch(text):
        return text
    shown = repr(text if len(text) <= 40 else text[:37] + "...")
    raise UsageError(
        f"{what} {shown} is not allowed: use 1 to {longest} of {NAME_CHARS}, not starting "
        "with '.' or '-'"
    )


def tag_id(module: str | None, file: str, line: int, function: str) -> int:
    """Return the deterministic 64-bit id of a call site key.

    The first 8 bytes, little-endian and signed, of BLAKE2b-64 over
    ``module \\0 file \\0 line \\0 function`` (module empty for built-in code), so any host
    or engine computes the same id without coordination (docs/storage.md).
    """
    key = f"{module or ''}\0{file}\0{line}\0{function}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little", signed=True)


TagKey = tuple[str | None, str, int, str]  # module, file, line, function
TAG_IDS_KEPT = 1 << 17  # call sites whose ids are remembered; a kernel has about 5,000
tag_ids: dict[TagKey, int] = {}  # the parsers look here first, inline: a row costs one lookup


def remembered_tag_id(key: TagKey) -> int:
    """Return ``tag_id(*key)`` and remember it in ``tag_ids``, which is emptied first when it
    holds ``TAG_IDS_KEPT`` ids: a recorder that runs for months, or an import of dumps from
    many kernels, keeps at most that many, however many call sites it meets."""
    if len(tag_ids) >= TAG_IDS_KEPT:
        tag_ids.clear()
    ident = tag_ids[key] = tag_id(*key)
    return ident


@dataclass(frozen=True)
class Filter:
    """Which rows to keep. Empty fields keep everything; set fields are ANDed.

    ``module``, ``function`` and ``file`` are shell globs (``*``, ``?``, ``[...]``);
    ``module="built-in"`` keeps code outside modules only. Size bounds are inclusive, on live bytes.
    """

    module: str | None = None
    function: str | None = None
    file: str | None = None
    line: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    accurate: bool | None = None
    nonzero: bool = False

    def is_empty(self) -> bool:
        """Return True when the filter keeps every row."""
        return self == Filter()

    def canonical(self) -> str:
        """Return the filter as stable text, stored in each snapshot's metadata."""
        parts = []
        for name in ("module", "function", "file", "line", "min_size", "max_size"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        if self.accurate is not None:
            parts.append("accurate" if self.accurate else "inaccurate")
        if self.nonzero:
            parts.append("nonzero")
        return " ".join(parts)

    @classmethod
    def from_canonical(cls, text: str) -> Filter:
        """Return the filter a snapshot's metadata records (``canonical``'s inverse)."""
        values: dict[str, Any] = {}
        last = None
        for token in text.split(" ") if text else []:
            key, sep, value = token.partition("=")
            if sep and key in _VALUED:
                values[key] = value
                last = key
            elif token in ("accurate", "inaccurate"):
                values["accurate"] = token == "accurate"
            elif token == "nonzero":
                values["nonzero"] = True
            elif last is not None:  # a glob with a space in it
                values[last] += f" {token}"
        for key in ("line", "min_size", "max_size"):
            if key in values:
                values[key] = int(values[key])
        return cls(**values)

    def contains(self, other: Filter) -> bool:
        """Return True when every row ``other`` keeps is kept by this filter too.

        Globs are compared as text: a glob contains itself (and no filter contains all rows).
        """
        for name in ("module", "function", "file", "line", "accurate"):
            mine = getattr(self, name)
            if mine is not None and mine != getattr(other, name):
                return False
        if self.min_size is not None and (other.min_size is None or other.min_size < self.min_size):
            return False
        if self.max_size is not None and (other.max_size is None or other.max_size > self.max_size):
            return False
        return not self.nonzero or other.nonzero


def narrower(a: Filter, b: Filter) -> Filter | None:
    """Return whichever of two filters the other contains, or None when neither does."""
    if a.contains(b):
        return b
    if b.contains(a):
        return a
    return None


_VALUED = ("module", "function", "file", "line", "min_size", "max_size")


SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("snapshot_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("taken_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("boottime_s", pa.float64()),
        pa.field("host", pa.string(), nullable=False),
        pa.field("boot_id", pa.string()),
        pa.field("kernel", pa.string()),
        pa.field("format", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("origin", pa.string()),
        pa.field("profiling", pa.int8()),
        pa.field("filter", pa.string(), nullable=False),
        pa.field("read_s", pa.float64()),
        pa.field("modules", pa.list_(pa.string())),
        pa.field("labels", pa.map_(pa.string(), pa.string())),
        pa.field("notes", pa.list_(pa.string())),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("total_bytes", pa.int64(), nullable=False),
        pa.field("total_calls", pa.int64(), nullable=False),
        pa.field("skipped_lines", pa.int64(), nullable=False),
        pa.field("schema_version", pa.int32(), nullable=False),
    ]
)


@dataclass(frozen=True)
class Snapshot:
    """One snapshot: its metadata and its rows (``SAMPLE_SCHEMA``)."""

    meta: SnapshotMeta
    samples: pa.Table
