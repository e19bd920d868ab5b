"""One snapshot as Prometheus / OpenMetrics text exposition, with a bounded number of series.

Pure: a ``Snapshot`` (and the one before it, and leak verdicts, when there are) in, text out;
no I/O. It sits below the recorder, which writes it after each snapshot (``record
--textfile``), and below the analyses that gather a store's newest snapshot for ``export`` and
``serve``. Every family, its labels and how the series are chosen and cut are in
docs/commands.md ("Metrics"); the families are ``FAMILIES`` here.

Cardinality: the top ``top_n`` call sites by bytes and by growth, every top directory and every
module, each with an ``(other)`` series holding the rest, so that a family's series sum to the
snapshot's total; ``max_series`` is a hard limit that folds more into ``(other)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap.errors import UsageError
from allocsnap.model import Snapshot

OTHER = "(other)"
"""The label value of the remainder series: no call site, module or directory is named so."""
BUILT_IN = "(built-in)"
"""The module label of code outside modules (as ``--by module`` names it)."""
NO_DIRECTORY = "(none)"
"""The directory label of a source file named without a directory."""
DEFAULT_TOP = 20
DEFAULT_MAX_SERIES = 500
MIN_SERIES = 15
"""The most series an exposition needs before any call site, module or directory is named."""
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_EOF = "# EOF\n"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

FAMILIES: dict[str, str] = {
    "allocsnap_snapshot_info": "The snapshot these values come from: host, kernel release, "
    "boot id and source (value 1).",
    "allocsnap_snapshot_timestamp_seconds": "When the snapshot was taken, Unix time.",
    "allocsnap_profiling_enabled": "vm.mem_profiling when the snapshot was taken (1 on, 0 off).",
    "allocsnap_call_sites": "Call sites in the snapshot (rows of the same key summed).",
    "allocsnap_live_bytes": "Live bytes allocated, summed over every call site.",
    "allocsnap_live_allocations": "Live allocations (the kernel's calls), summed over every "
    "call site.",
    "allocsnap_call_site_live_bytes": "Live bytes of the top call sites by bytes and by growth; "
    "call_site=(other) holds the rest.",
    "allocsnap_call_site_live_allocations": "Live allocations of the same call sites; "
    "call_site=(other) holds the rest.",
    "allocsnap_call_site_growth_bytes": "Change of live bytes of the same call sites since the "
    "previous snapshot of the same boot; call_site=(other) holds the rest.",
    "allocsnap_growth_interval_seconds": "Seconds between the previous snapshot of the same boot "
    "and this one.",
    "allocsnap_directory_live_bytes": "Live bytes per top directory of the source tree.",
    "allocsnap_directory_live_allocations": "Live allocations per top directory of the source "
    "tree.",
    "allocsnap_module_live_bytes": "Live bytes per module; module=(built-in) is code outside "
    "modules.",
    "allocsnap_module_live_allocations": "Live allocations per module.",
    "allocsnap_leaks": "Call sites judged leaking in the current boot (allocsnap leaks), before "
    "any cut.",
    "allocsnap_leak_rate_bytes_per_hour": "Theil-Sen slope of a call site's live bytes over the "
    "current boot, for the sites judged leaking and those that grew past the floors.",
    "allocsnap_leak_detected": "1 when allocsnap leaks judges the call site leaking, else 0.",
}
"""Every metric family, in the order it is written, with its HELP text (all gauges)."""


@dataclass(frozen=True)
class Limits:
    """How many series an exposition may have (docs/commands.md, "Metrics")."""

    top_n: int = DEFAULT_TOP  # call sites by bytes, and as many by growth; leak series
    max_series: int = DEFAULT_MAX_SERIES  # a hard limit on the lines with a value


@dataclass(frozen=True)
class LeakSeries:
    """One call site's leak verdict over the current boot."""

    call_site: str
    bytes_per_hour: float
    leak: bool


@dataclass(frozen=True)
class Leaks:
    """The verdicts of ``allocsnap leaks`` for the snapshot's boot: leaks first, steepest first."""

    found: int  # call sites judged leaking, before any cut
    series: tuple[LeakSeries, ...] = ()


@dataclass(frozen=True)
class Exposition:
    """The text, and how many series it has and how many groups were folded into ``(other)``."""

    text: str
    series: int
    # family -> groups that max_series left out (folded into its (other) series, if it has one)
    folded: dict[str, int] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        """Return the HTTP Content-Type of the text."""
        return OPENMETRICS_TYPE if self.text.endswith(_EOF) else PROMETHEUS_TYPE

    def prometheus(self) -> Exposition:
        """Return the same exposition as Prometheus text 0.0.4: without the end marker."""
        text = self.text.removesuffix(_EOF)
        return Exposition(text=text, series=self.series, folded=self.folded)


@dataclass(frozen=True)
class _Group:
    """A group of call sites: its key, live bytes and signed calls."""

    key: str
    bytes: int
    calls: int


def exposition(
    snapshot: Snapshot,
    previous: Snapshot | None = None,
    leaks: Leaks | None = None,
    limits: Limits | None = None,
    *,
    openmetrics: bool = True,
) -> Exposition:
    """Return a snapshot's metrics as OpenMetrics text (``# EOF`` last), or as Prometheus text
    0.0.4 (``openmetrics=False``: node_exporter's textfile collector).

    ``previous`` (the snapshot before, of the same host and boot) adds growth; ``leaks`` adds
    the leak verdicts. Raise ``UsageError`` when ``max_series`` cannot hold the fixed series.
    """
    limits = limits or Limits()
    if limits.top_n < 0:
        raise UsageError("--top must be 0 or more")
    meta = snapshot.meta
    if previous is not None and (
        previous.meta.host != meta.host
        or previous.meta.boot_id != meta.boot_id
        or previous.meta.taken_at >= meta.taken_at
    ):
        previous = None
    sites = _Sites(snapshot.samples)
    before = _Sites(previous.samples) if previous is not None else None

    out = _Writer()
    info = {
        "host": meta.host,
        "kernel": meta.kernel or "",
        "boot_id": meta.boot_id or "",
        "source": meta.source,
    }
    out.family("allocsnap_snapshot_info", [(info, 1)])
    out.family("allocsnap_snapshot_timestamp_seconds", [({}, meta.taken_at.timestamp())])
    if meta.profiling is not None:
        out.family("allocsnap_profiling_enabled", [({}, meta.profiling)])
    out.family("allocsnap_call_sites", [({}, sites.table.num_rows)])
    out.family("allocsnap_live_bytes", [({}, sites.bytes)])
    out.family("allocsnap_live_allocations", [({}, sites.calls)])

    per_site = 3 if before is not None else 2
    # the fixed series: those above, the growth interval, the leak count, and an (other)
    # series in the call site, directory and module families
    fixed = out.series + (before is not None) + (leaks is not None) + per_site + 2 + 2
    budget = limits.max_series - fixed
    if budget < 0:
        raise UsageError(
            f"--max-series {limits.max_series} is too few: this exposition needs at least "
            f"{fixed} series (totals, and an (other) series per family)"
        )
    folded: dict[str, int] = {}

    # leak verdicts first: what alerts read
    shown_leaks: Sequence[LeakSeries] = ()
    if leaks is not None:
        wanted = leaks.series[: limits.top_n]
        shown_leaks = wanted[: budget // 2]
        budget -= 2 * len(shown_leaks)
        if len(shown_leaks) < len(wanted):
            folded["allocsnap_leak_rate_bytes_per_hour"] = len(wanted) - len(shown_leaks)

    # then the call sites: by bytes and by growth, one of each in turn
    growth = sites.growth(before) if before is not None else None
    by_growth = (
        _top(growth.filter(pc.greater(growth["growth"], 0)), "growth", limits.top_n)
        if growth is not None
        else []
    )
    chosen = _alternate(_top(sites.table, "bytes", limits.top_n), by_growth)
    fits = budget // per_site
    if len(chosen) > fits:
        folded["allocsnap_call_site_live_bytes"] = len(chosen) - fits
        chosen = chosen[:fits]
    budget -= per_site * len(chosen)
    named = _values(sites.table, chosen, ("bytes", "calls"))
    shown = sorted(chosen, key=lambda k: (-named[k][0], k))
    rest_bytes = sites.bytes - sum(named[k][0] for k in shown)
    rest_calls = sites.calls - sum(named[k][1] for k in shown)
    out.family(
        "allocsnap_call_site_live_bytes",
        [({"call_site": k}, named[k][0]) for k in shown] + [({"call_site": OTHER}, rest_bytes)],
    )
    out.family(
        "allocsnap_call_site_live_allocations",
        [({"call_site": k}, named[k][1]) for k in shown] + [({"call_site": OTHER}, rest_calls)],
    )
    if growth is not None and before is not None and previous is not None:
        grew = {k: v[0] for k, v in _values(growth, shown, ("growth",)).items()}
        rest_growth = sites.bytes - before.bytes - sum(grew[k] for k in shown)
        out.family(
            "allocsnap_call_site_growth_bytes",
            [({"call_site": k}, grew[k]) for k in shown] + [({"call_site": OTHER}, rest_growth)],
        )
        interval = (meta.taken_at - previous.meta.taken_at).total_seconds()
        out.family("allocsnap_growth_interval_seconds", [({}, interval)])

    # then every top directory and every module, the smallest folded when they do not fit
    for family, label, groups in (
        ("allocsnap_directory", "directory", sites.grouped(sites.directories())),
        (
            "allocsnap_module",
            "module",
            sites.grouped(pc.fill_null(sites.table["module"], BUILT_IN)),
        ),
    ):
        kept, rest = _fold(groups, budget // 2)
        budget -= 2 * len(kept)
        if rest is not None:
            folded[f"{family}_live_bytes"] = len(groups) - len(kept)
            kept = [*kept, rest]
        out.family(f"{family}_live_bytes", [({label: g.key}, g.bytes) for g in kept])
        out.family(f"{family}_live_allocations", [({label: g.key}, g.calls) for g in kept])

    if leaks is not None:
        out.family("allocsnap_leaks", [({}, leaks.found)])
        out.family(
            "allocsnap_leak_rate_bytes_per_hour",
            [({"call_site": s.call_site}, s.bytes_per_hour) for s in shown_leaks],
        )
        out.family(
            "allocsnap_leak_detected",
            [({"call_site": s.call_site}, 1 if s.leak else 0) for s in shown_leaks],
        )
    if openmetrics:
        out.lines.append("# EOF")
    assert out.series <= limits.max_series, (out.series, limits.max_series)
    return Exposition(text="\n".join(out.lines) + "\n", series=out.series, folded=folded)


class _Sites:
    """Every call site of a snapshot, the rows of a key summed, as Arrow columns (key, file,
    module, bytes, calls): a few group-bys however many sites, and only the rows chosen
    become Python values."""

    def __init__(self, samples: pa.Table) -> None:
        calls = pc.cast(samples["calls"], pa.int64(), safe=False)  # an underflowed u64: < 0
        rows = pa.table(
            {
                "file": samples["file"],
                "line": samples["line"],
                "module": samples["module"],
                "function": samples["function"],
                "bytes": samples["bytes"],
                "calls": calls,
            }
        )
        t = rows.group_by(["file", "line", "module", "function"], use_threads=False).aggregate(
            [("bytes", "sum"), ("calls", "sum")]
        )
        # the key as the kernel prints the call site (and allocsnap show keys it)
        bracketed = pc.binary_join_element_wise(" [", t["module"], "]", "")
        module = pc.if_else(pc.is_null(t["module"]), "", bracketed)
        line = pc.cast(t["line"], pa.string())
        key = pc.binary_join_element_wise(t["file"], ":", line, module, " func:", t["function"], "")
        self.table = pa.table(
            {
                "key": key,
                "file": t["file"],
                "module": t["module"],
                "bytes": t["bytes_sum"],
                "calls": t["calls_sum"],
            }
        )
        self.bytes: int = pc.sum(self.table["bytes"]).as_py() or 0
        self.calls: int = pc.sum(self.table["calls"]).as_py() or 0

    def growth(self, before: _Sites) -> pa.Table:
        """Return each site's key and its change of bytes since ``before`` (0 there if new)."""
        was = before.table.select(["key", "bytes"]).rename_columns(["key", "before"])
        joined = self.table.select(["key", "bytes"]).join(
            was, keys="key", join_type="left outer", use_threads=False
        )
        change = pc.subtract(joined["bytes"], pc.fill_null(joined["before"], 0))
        return pa.table({"key": joined["key"], "growth": change})

    def directories(self) -> pa.Array:
        """Return each site's top directory (``./`` prefixes dropped), or ``(none)``."""
        file = pc.replace_substring_regex(self.table["file"], r"^(\./)+", "")
        head = pc.struct_field(pc.extract_regex(file, r"^(?P<head>[^/]+)/"), [0])
        return pc.fill_null(head, NO_DIRECTORY)

    def grouped(self, keys: pa.Array | pa.ChunkedArray) -> list[_Group]:
        """Return the sites summed per ``keys`` (one per site), largest bytes first."""
        table = pa.table({"key": keys, "bytes": self.table["bytes"], "calls": self.table["calls"]})
        summed = table.group_by("key", use_threads=False).aggregate(
            [("bytes", "sum"), ("calls", "sum")]
        )
        groups = [
            _Group(k, b, c)
            for k, b, c in zip(
                summed["key"].to_pylist(),
                summed["bytes_sum"].to_pylist(),
                summed["calls_sum"].to_pylist(),
                strict=True,
            )
        ]
        return sorted(groups, key=lambda g: (-g.bytes, g.key))


def _top(table: pa.Table, column: str, n: int) -> list[str]:
    """Return the keys of the ``n`` rows largest in ``column``, ties by key."""
    if n == 0 or table.num_rows == 0:
        return []
    order = pc.sort_indices(table, sort_keys=[(column, "descending"), ("key", "ascending")])
    keys: list[str] = table.take(order[:n])["key"].to_pylist()
    return keys


def _values(table: pa.Table, keys: list[str], columns: tuple[str, ...]) -> dict[str, list[int]]:
    """Return the values in ``columns`` of the rows of ``keys``."""
    rows = table.filter(pc.is_in(table["key"], pa.array(keys, pa.string())))
    values = [rows[c].to_pylist() for c in columns]
    return {k: [v[i] for v in values] for i, k in enumerate(rows["key"].to_pylist())}


def _alternate(*ranked: list[str]) -> list[str]:
    """Return the keys of several rankings, one of each in turn, each key once."""
    chosen: dict[str, None] = {}
    for i in range(max((len(r) for r in ranked), default=0)):
        for keys in ranked:
            if i < len(keys):
                chosen.setdefault(keys[i], None)
    return list(chosen)


def _fold(groups: list[_Group], room: int) -> tuple[list[_Group], _Group | None]:
    """Return the groups that fit in ``room`` series pairs, largest first, and the rest summed
    as ``(other)`` (None when all fit); ``(other)`` takes one pair of the room."""
    if len(groups) <= room:
        return groups, None
    kept = groups[: max(0, room - 1)]
    rest = groups[len(kept) :]
    return kept, _Group(OTHER, sum(g.bytes for g in rest), sum(g.calls for g in rest))


class _Writer:
    """Lines of text exposition, and the count of series written."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.series = 0

    def family(self, name: str, samples: Sequence[tuple[dict[str, str], float | int]]) -> None:
        check_name(name)
        self.lines.append(f"# HELP {name} {escape_help(FAMILIES[name])}")
        self.lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            self.lines.append(f"{name}{format_labels(labels)} {format_value(value)}")
        self.series += len(samples)


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid metric name; else raise ``ValueError``."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a metric name: {name!r}")
    return name


def format_labels(labels: dict[str, str]) -> str:
    """Return ``{name="value",...}`` with the values escaped, or '' without labels."""
    if not labels:
        return ""
    for name in labels:
        if not _LABEL.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"not a label name: {name!r}")
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def escape_label(value: str) -> str:
    """Return a label value escaped for the text formats: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Return HELP text escaped for both text formats: backslash and newline (a double quote
    is escaped only in OpenMetrics, so HELP texts have none)."""
    if '"' in text:
        raise ValueError(f"HELP text with a double quote: {text!r}")
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float | int) -> str:
    """Return a sample value as both text formats write it."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
