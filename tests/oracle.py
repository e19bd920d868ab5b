"""An independent, deliberately simple reader of allocinfo text and the sums tests expect.

It shares no code with ``allocsnap``: rows are split on whitespace (``line.split()``), keys are
written the way the kernel prints them, and diffs are plain dictionaries. Tests compare what
allocsnap returns with what this module computes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

U64 = 2**64


@dataclass(frozen=True)
class Row:
    """One row as the kernel printed it."""

    bytes: int
    calls: int
    file: str
    line: int
    module: str | None
    function: str
    extras: tuple[str, ...]

    @property
    def signed_calls(self) -> int:
        return self.calls - U64 if self.calls >= 2**63 else self.calls

    @property
    def site(self) -> str:
        module = f" [{self.module}]" if self.module else ""
        return f"{self.file}:{self.line}{module} func:{self.function}"


def rows(path: Path) -> list[Row]:
    """Return the rows of a capture; header and comment lines are skipped."""
    return rows_of(path.read_text().splitlines())


def rows_of(lines: list[str]) -> list[Row]:
    """Return the rows among ``lines``; header, comment and blank lines are skipped."""
    out = []
    for line in lines:
        if line.startswith("allocinfo - version:") or line.startswith("#") or not line.strip():
            continue
        tokens = line.split()
        file, _, lineno = tokens[2].rpartition(":")
        rest = tokens[3:]
        module = None
        if rest[0].startswith("[") and rest[0].endswith("]"):
            module = rest[0][1:-1]
            rest = rest[1:]
        assert rest[0].startswith("func:"), line
        out.append(
            Row(
                bytes=int(tokens[0]),
                calls=int(tokens[1]),
                file=file,
                line=int(lineno),
                module=module,
                function=rest[0][len("func:") :],
                extras=tuple(rest[1:]),
            )
        )
    return out


def key(row: Row, by: str = "tag", depth: int = 2) -> str:
    """Return the group a row falls in for ``--by``."""
    if by == "tag":
        return row.site
    if by == "module":
        return row.module or "(built-in)"
    if by == "function":
        return row.function
    if by == "file":
        return row.file
    assert by == "dir"
    file = row.file
    while file.startswith("./"):
        file = file[2:]
    parts = file.split("/")
    return "/".join(parts[: min(depth, len(parts) - 1)])


def sums(rs: list[Row], by: str = "tag", depth: int = 2) -> dict[str, tuple[int, int]]:
    """Return bytes and signed calls summed per group."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rs:
        s = out[key(r, by, depth)]
        s[0] += r.bytes
        s[1] += r.signed_calls
    return {k: (b, c) for k, (b, c) in out.items()}


@dataclass(frozen=True)
class Change:
    key: str
    bytes_before: int
    bytes_after: int
    calls_before: int
    calls_after: int

    @property
    def delta_bytes(self) -> int:
        return self.bytes_after - self.bytes_before

    @property
    def delta_calls(self) -> int:
        return self.calls_after - self.calls_before


def diff(before: list[Row], after: list[Row], by: str = "tag", depth: int = 2) -> list[Change]:
    """Return changed groups, largest |Δbytes| first, ties by key."""
    b = sums(before, by, depth)
    a = sums(after, by, depth)
    changes = []
    for k in set(a) | set(b):
        bb, bc = b.get(k, (0, 0))
        ab, ac = a.get(k, (0, 0))
        if ab != bb or ac != bc:
            changes.append(Change(k, bb, ab, bc, ac))
    return sorted(changes, key=lambda c: (-abs(c.delta_bytes), c.key))
