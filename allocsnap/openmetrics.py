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
from collections.abc import Callable, Iterable, Sequence
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
    """A call site, or a group of them: its key, live bytes and signed calls."""

    key: str
    bytes: int
    calls: int
    file: str = ""
    module: str | None = None


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
    sites = call_sites(snapshot.samples)
    before = {g.key: g.bytes for g in call_sites(previous.samples)} if previous else None
    total = _Group("", sum(g.bytes for g in sites), sum(g.calls for g in sites))

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
    out.family("allocsnap_call_sites", [({}, len(sites))])
    out.family("allocsnap_live_bytes", [({}, total.bytes)])
    out.family("allocsnap_live_allocations", [({}, total.calls)])

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
    growth = {g.key: g.bytes - (before or {}).get(g.key, 0) for g in sites}
    if before is not None:
        for key, was in before.items():
            growth.setdefault(key, -was)
    chosen = _top_sites(sites, growth if before is not None else None, limits.top_n)
    fits = budget // per_site
    if len(chosen) > fits:
        folded["allocsnap_call_site_live_bytes"] = len(chosen) - fits
        chosen = chosen[:fits]
    budget -= per_site * len(chosen)
    by_key = {g.key: g for g in sites}  # chosen sites are all here: growth > 0 only
    shown = sorted(chosen, key=lambda k: (-by_key[k].bytes, k))
    rest_bytes = total.bytes - sum(by_key[k].bytes for k in shown)
    rest_calls = total.calls - sum(by_key[k].calls for k in shown)
    out.family(
        "allocsnap_call_site_live_bytes",
        [({"call_site": k}, by_key[k].bytes) for k in shown] + [({"call_site": OTHER}, rest_bytes)],
    )
    out.family(
        "allocsnap_call_site_live_allocations",
        [({"call_site": k}, by_key[k].calls) for k in shown] + [({"call_site": OTHER}, rest_calls)],
    )
    if before is not None and previous is not None:
        total_growth = total.bytes - sum(before.values())
        out.family(
            "allocsnap_call_site_growth_bytes",
            [({"call_site": k}, growth[k]) for k in shown]
            + [({"call_site": OTHER}, total_growth - sum(growth[k] for k in shown))],
        )
        interval = (meta.taken_at - previous.meta.taken_at).total_seconds()
        out.family("allocsnap_growth_interval_seconds", [({}, interval)])

    # then every top directory and every module, the smallest folded when they do not fit
    for family, label, groups in (
        ("allocsnap_directory", "directory", _grouped(sites, _directory)),
        ("allocsnap_module", "module", _grouped(sites, _module)),
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


def call_sites(samples: pa.Table) -> list[_Group]:
    """Return every call site's live bytes and signed calls, duplicates of a key summed."""
    calls = pc.cast(samples["calls"], pa.int64(), safe=False)  # an underflowed u64 is negative
    table = pa.table(
        {
            "file": samples["file"],
            "line": samples["line"],
            "module": samples["module"],
            "function": samples["function"],
            "bytes": samples["bytes"],
            "calls": calls,
        }
    )
    summed = table.group_by(["file", "line", "module", "function"], use_threads=False).aggregate(
        [("bytes", "sum"), ("calls", "sum")]
    )
    return [
        _Group(
            key=call_site(r["file"], r["line"], r["module"], r["function"]),
            bytes=r["bytes_sum"],
            calls=r["calls_sum"],
            file=r["file"],
            module=r["module"],
        )
        for r in summed.to_pylist()
    ]


def call_site(file: str, line: int, module: str | None, function: str) -> str:
    """Return a call site as the kernel prints it (and ``allocsnap show`` keys it)."""
    shown = f" [{module}]" if module is not None else ""
    return f"{file}:{line}{shown} func:{function}"


def _directory(site: _Group) -> str:
    """Return the top directory of a call site's source file (``./`` prefixes dropped)."""
    file = site.file
    while file.startswith("./"):
        file = file[2:]
    head, slash, _ = file.partition("/")
    return head if slash and head else NO_DIRECTORY


def _module(site: _Group) -> str:
    return site.module if site.module is not None else BUILT_IN


def _grouped(sites: Iterable[_Group], key_of: Callable[[_Group], str]) -> list[_Group]:
    """Return the sites summed per ``key_of``, largest bytes first, ties by key."""
    sums: dict[str, list[int]] = {}
    for g in sites:
        s = sums.setdefault(key_of(g), [0, 0])
        s[0] += g.bytes
        s[1] += g.calls
    return sorted((_Group(k, b, c) for k, (b, c) in sums.items()), key=lambda g: (-g.bytes, g.key))


def _fold(groups: list[_Group], room: int) -> tuple[list[_Group], _Group | None]:
    """Return the groups that fit in ``room`` series pairs, largest first, and the rest summed
    as ``(other)`` (None when all fit); ``(other)`` takes one pair of the room."""
    if len(groups) <= room:
        return groups, None
    kept = groups[: max(0, room - 1)]
    rest = groups[len(kept) :]
    return kept, _Group(OTHER, sum(g.bytes for g in rest), sum(g.calls for g in rest))


def _top_sites(sites: list[_Group], growth: dict[str, int] | None, top_n: int) -> list[str]:
    """Return the keys of the top call sites by bytes and by growth, one of each in turn."""
    by_bytes = [g.key for g in sorted(sites, key=lambda g: (-g.bytes, g.key))[:top_n]]
    by_growth: list[str] = []
    if growth is not None:
        rising = sorted((k for k, d in growth.items() if d > 0), key=lambda k: (-growth[k], k))
        by_growth = rising[:top_n]
    chosen: dict[str, None] = {}
    for i in range(max(len(by_bytes), len(by_growth))):
        for ranked in (by_bytes, by_growth):
            if i < len(ranked):
                chosen.setdefault(ranked[i], None)
    return list(chosen)


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
