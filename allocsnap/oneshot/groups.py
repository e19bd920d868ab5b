"""queries/diff.sql and queries/show.sql over rows held in Python, for two dumps read at once.

The SQL is the definition: every rule here names the line of the query it follows, and
tests/test_quick.py compares both on every capture in tests/data, every grouping and several
--top values. A sum or a difference past a signed 64-bit integer (where DuckDB's ``::bigint``
fails) is ``NotQuick``: the normal path says what DuckDB says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

from allocsnap.oneshot.dumps import Dump, NotQuick, Row

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GROUPINGS = ("tag", "function", "file", "module", "dir")  # analysis.grouping.GROUPINGS
DEFAULT_DIR_DEPTH = 2  # analysis.grouping.DEFAULT_DIR_DEPTH
_DOT_SLASHES = re.compile(r"^(\./)+")
_INT64 = (-(2**63), 2**63 - 1)


class Grouping:
    """``--by``: how rows are summed, as ``analysis.Grouping`` holds it."""

    def __init__(self, by: str, depth: int) -> None:
        self.by = by
        self.depth = depth

    @classmethod
    def parse(cls, text: str) -> Grouping:
        """Return the grouping ``text`` names; ``NotQuick`` for anything ``analysis.Grouping``
        would refuse (it says why)."""
        by, colon, depth = text.partition(":")
        if by not in GROUPINGS or (colon and (by != "dir" or not depth.isdigit())):
            raise NotQuick(text)
        if colon and int(depth) < 1:
            raise NotQuick(text)
        return cls(by, int(depth) if colon else DEFAULT_DIR_DEPTH)


Summed = tuple[int, int, int, bool]
"""One group: live bytes, signed calls, rows, and whether every row is a module's that the
later snapshot has not loaded (diff.sql's ``unloaded``)."""


def key_of(grouping: Grouping) -> Callable[[Row], str]:
    """Return the macro group_key (queries/macro_group_key.sql) for one grouping."""
    by, depth = grouping.by, grouping.depth
    if by == "function":
        return lambda r: r.function
    if by == "file":
        return lambda r: r.file
    if by == "module":
        return lambda r: r.module if r.module is not None else "(built-in)"
    if by == "dir":
        return lambda r: dir_prefix(r.file, depth)
    return call_site


def call_site(r: Row) -> str:
    """queries/macro_call_site.sql: ``file:line [module] func:name``."""
    module = f" [{r.module}]" if r.module is not None else ""
    return f"{r.file}:{r.line}{module} func:{r.function}"


def dir_prefix(file: str, depth: int) -> str:
    """queries/macro_dir_prefix.sql: the first ``depth`` directories, without a leading ./."""
    parts = _DOT_SLASHES.sub("", file, count=1).split("/")
    return "/".join(parts[: max(min(depth, len(parts) - 1), 0)])


def summed(
    rows: Iterable[Row], grouping: Grouping, later_modules: set[str], *, checked: bool
) -> dict[str, Summed]:
    """Return each group's sums (the grouped CTEs of diff.sql and show.sql); ``checked``
    when a sum may pass a BIGINT (the dump's ``magnitude`` says whether one can)."""
    key = key_of(grouping)
    acc: dict[str, list[Any]] = {}
    for r in rows:
        k = key(r)
        s = acc.get(k)
        gone = r.module is not None and r.module not in later_modules
        if s is None:
            acc[k] = [r.bytes, r.calls, 1, gone]
        else:
            s[0] += r.bytes
            s[1] += r.calls
            s[2] += 1
            s[3] = s[3] and gone
    if checked:
        for b, c, _, _ in acc.values():
            _bigint(b), _bigint(c)
    return {k: (b, c, n, u) for k, (b, c, n, u) in acc.items()}


def _may_pass_bigint(*dumps: Dump) -> bool:
    return sum(d.magnitude for d in dumps) > _INT64[1]


def diff_rows(
    before: Dump,
    after: Dump,
    grouping: Grouping,
    *,
    min_delta: int,
    top_n: int | None,
) -> tuple[list[dict[str, Any]], int]:
    """Return diff.sql's rows (without changed_groups) and its changed_groups, for two
    dumps an unknown time apart ($hours NULL), with no size filter; the later dump's modules
    are those its rows show ($after_modules)."""
    checked = _may_pass_bigint(before, after)
    later = set(after.modules)
    old = summed(before.rows, grouping, later, checked=checked)
    new = summed(after.rows, grouping, later, checked=checked)
    total = _bigint(after.total_bytes)
    nothing = (0, 0, 0, False)
    found: list[dict[str, Any]] = []
    for key in new.keys() | old.keys():
        b, a = old.get(key), new.get(key)
        if b is None:
            status = "new"
        elif a is None:
            status = "unloaded" if b[3] else "gone"
        else:
            status = ""
        bytes_before, calls_before, _, _ = b or nothing
        bytes_after, calls_after, _, _ = a or nothing
        delta_bytes = bytes_after - bytes_before
        delta_calls = calls_after - calls_before
        if checked:
            _bigint(delta_bytes), _bigint(delta_calls)
        if (delta_bytes == 0 and delta_calls == 0) or abs(delta_bytes) < min_delta:
            continue
        found.append(
            {
                "key": key,
                "status": status,
                "bytes_before": bytes_before,
                "bytes_after": bytes_after,
                "delta_bytes": delta_bytes,
                "calls_before": calls_before,
                "calls_after": calls_after,
                "delta_calls": delta_calls,
                "delta_pct": _percent(delta_bytes, abs(bytes_before), 1)
                if bytes_before != 0
                else None,
                "share_pct": _percent(bytes_after, total, 2) if total > 0 else None,
                "bytes_per_hour": None,
            }
        )
    found.sort(key=lambda row: (-abs(row["delta_bytes"]), _utf8(row["key"])))
    return found[:top_n] if top_n else found, len(found)


def show_rows(
    dump: Dump, grouping: Grouping, *, sort: str, top_n: int | None
) -> tuple[list[dict[str, Any]], int]:
    """Return show.sql's rows (without groups) and its groups, for a whole dump."""
    groups = summed(dump.rows, grouping, set(), checked=_may_pass_bigint(dump))
    total = _bigint(dump.total_bytes)
    found: list[dict[str, Any]] = [
        {
            "key": key,
            "bytes": size,
            "calls": calls,
            "rows": count,
            "share_pct": _percent(size, total, 2) if total > 0 else None,
        }
        for key, (size, calls, count, _) in groups.items()
    ]
    if sort in ("bytes", "calls"):
        found.sort(key=lambda row: (-row[sort], _utf8(row["key"])))
    else:
        found.sort(key=lambda row: _utf8(row["key"]))
    return found[:top_n] if top_n else found, len(found)


def _percent(part: int, whole: int, digits: int) -> float:
    """``round(100.0 * part / whole, digits)`` as DuckDB computes it: a double quotient,
    rounded half away from zero (C's round)."""
    scale = 10.0**digits
    value = float(100 * part) / float(whole) * scale
    floor = math.floor(abs(value))
    rounded = floor + 1.0 if abs(value) - floor >= 0.5 else float(floor)
    return math.copysign(rounded, value) / scale


def _bigint(value: int) -> int:
    if not _INT64[0] <= value <= _INT64[1]:
        raise NotQuick("out of BIGINT range")  # DuckDB's cast fails: the normal path says so
    return value


def _utf8(text: object) -> bytes:
    """DuckDB orders VARCHAR by its UTF-8 bytes (so does str for ASCII; this is exact)."""
    return str(text).encode("utf-8", "surrogatepass")
