"""Call sites across kernel builds: pair the sites of two kernels whose line numbers moved.

A call site is keyed by module, file, line and function, and between two kernel builds most
lines move. ``match`` pairs the sites of two kernels: same module, file and function (after the
user's renames), lines paired by order within the function and by distance (docs/kernels.md
says how, and how often it is right). A ``SourceMap`` pairs them exactly instead, from a
source diff (``kernel_files`` reads it and the renames). The matching is pure; ``remap`` and
``diff_moved`` apply it to a diff's rows.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pyarrow as pa

from allocsnap.analysis import query
from allocsnap.analysis.kernel_files import Renames, SourceMap, read_renames, read_source_map


class Status(StrEnum):
    """What became of a call site between two kernels."""

    MATCHED = "matched"  # the same line in both
    MOVED = "moved"  # paired, at another line (or in a renamed file or function)
    NEW = "new"  # only in the later kernel
    GONE = "gone"  # only in the earlier kernel


@dataclass(frozen=True)
class Site:
    """A call site as the kernel prints it (module None for built-in code)."""

    module: str | None
    file: str
    function: str
    line: int

    def text(self) -> str:
        """Return the site as ``call_site`` (queries/macro_call_site.sql) writes it."""
        module = f" [{self.module}]" if self.module is not None else ""
        return f"{self.file}:{self.line}{module} func:{self.function}"


@dataclass(frozen=True)
class Pair:
    """One site's fate: both sides when paired, one side when new or gone."""

    status: Status
    before: Site | None
    after: Site | None


@dataclass(frozen=True)
class Matching:
    """Every call site of two kernels, paired or not."""

    pairs: tuple[Pair, ...]

    def count(self, status: Status) -> int:
        """Return how many pairs have ``status``."""
        return sum(1 for p in self.pairs if p.status == status)

    def paired(self) -> dict[Site, Site]:
        """Return the later site of every paired earlier site."""
        return {
            p.before: p.after for p in self.pairs if p.before is not None and p.after is not None
        }

    def summary(self) -> str:
        """Return the counts as the diff header gives them."""
        counts = {s: self.count(s) for s in Status}
        return (
            f"{len(self.pairs):,} call sites: {counts[Status.MATCHED]:,} matched, "
            f"{counts[Status.MOVED]:,} moved, {counts[Status.NEW]:,} new, "
            f"{counts[Status.GONE]:,} gone"
        )


@dataclass(frozen=True)
class Agreement:
    """How a heuristic matching compares with an exact one (its truth)."""

    true_pairs: int  # pairs both made
    heuristic_pairs: int
    exact_pairs: int

    @property
    def precision(self) -> float:
        return self.true_pairs / self.heuristic_pairs if self.heuristic_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.true_pairs / self.exact_pairs if self.exact_pairs else 1.0


@dataclass(frozen=True)
class LineOptions:
    """How a diff pairs call sites across kernels: ``--match-lines``, ``--rename``,
    ``--source-map``."""

    match: bool | None = None  # None: when both kernels are known and differ
    renames: Renames | None = None
    source_map: SourceMap | None = None

    @classmethod
    def read(
        cls, match: bool | None, rename: Path | None = None, source_map: Path | None = None
    ) -> LineOptions:
        """Return the options, with the rename and source-map files read."""
        return cls(
            match=match,
            renames=read_renames(rename) if rename is not None else None,
            source_map=read_source_map(source_map) if source_map is not None else None,
        )

    def applies(self, before: str | None, after: str | None) -> bool:
        """Return True when two snapshots of these kernels (releases) are to be matched: as
        ``match`` says, else when a rename or source map is given or the kernels differ."""
        if self.match is not None:
            return self.match
        if self.renames is not None or self.source_map is not None:
            return True
        return before is not None and after is not None and before != after


@dataclass(frozen=True)
class Crossing:
    """Two kernels' call sites paired for a diff; with a source map, also how the heuristic
    alone did against it."""

    before: str | None  # kernel releases, None when unknown
    after: str | None
    matching: Matching
    heuristic: Agreement | None = None

    def header(self) -> list[str]:
        """Return the lines the diff header gives."""
        how = "source map" if self.heuristic is not None else "matched by line order"
        lines = [
            f"kernels: {self.before or 'unknown'} -> {self.after or 'unknown'}  "
            f"({self.matching.summary()}; {how})"
        ]
        if self.heuristic is not None:
            h = self.heuristic
            lines.append(
                f"heuristic: {h.true_pairs:,} of its {h.heuristic_pairs:,} pairs agree with "
                f"the map's {h.exact_pairs:,} (precision {h.precision:.1%}, "
                f"recall {h.recall:.1%})"
            )
        return lines


def cross(
    before: str | None,
    after: str | None,
    before_rows: pa.Table,
    after_rows: pa.Table,
    options: LineOptions,
) -> Crossing:
    """Return the pairing of two snapshots' call sites (rows of ``SAMPLE_SCHEMA``)."""
    old, new = sites(before_rows), sites(after_rows)
    matching = match(old, new, options.renames, options.source_map)
    heuristic = None
    if options.source_map is not None:
        alone = match(old, new, options.renames)
        heuristic = agreement(alone, matching, options.source_map.files)
    return Crossing(before, after, matching, heuristic)


def diff_moved(rows: pa.Table, matching: Matching) -> pa.Table:
    """Return a diff's rows (by call site) with the moved sites marked and ``moved_from``."""
    with query.connect() as con:
        query.register(con, "diff_rows", rows)
        query.register(con, "moved_sites", moved_table(matching))
        return query.run(con, "diff_moved")


_Group = tuple[str | None, str, str]  # module, file, function


def match(
    before: Iterable[Site],
    after: Iterable[Site],
    renames: Renames | None = None,
    source_map: SourceMap | None = None,
) -> Matching:
    """Return the pairing of two kernels' call sites.

    Sites pair only within one group: the same module, file and function, the earlier side's
    names renamed first. Files the ``source_map`` covers pair exactly through it; elsewhere a
    group with as many sites on each side pairs them in order, and other groups pair the
    fewer side's sites with the later side's in order, nearest to where the file's in-order
    pairs say the earlier lines went.
    """
    renames = renames or Renames()
    old: dict[_Group, list[Site]] = defaultdict(list)
    new: dict[_Group, list[Site]] = defaultdict(list)
    for site in set(before):
        file = renames.files.get(site.file, site.file)
        old[(site.module, file, renames.functions.get(site.function, site.function))].append(site)
    for site in set(after):
        new[(site.module, site.file, site.function)].append(site)
    paired: dict[Site, Site] = {}
    later: list[_Group] = []
    for group, olds in old.items():
        news = new.get(group, [])
        olds.sort(key=lambda s: s.line)
        news.sort(key=lambda s: s.line)
        if source_map is not None and group[1] in source_map.files:
            paired.update(_exact(olds, news, source_map))
        elif len(olds) == len(news):
            paired.update(zip(olds, news, strict=True))
        elif news:
            later.append(group)
    anchors = _anchors(paired)
    for group in later:
        shifts = anchors.get(group[1], ([], []))
        paired.update(_aligned(old[group], new[group], shifts))
    taken = set(paired.values())
    pairs = [Pair(Status.MATCHED if a == b else Status.MOVED, a, b) for a, b in paired.items()]
    pairs += [Pair(Status.GONE, s, None) for olds in old.values() for s in olds if s not in paired]
    pairs += [Pair(Status.NEW, None, s) for news in new.values() for s in news if s not in taken]
    return Matching(tuple(sorted(pairs, key=_pair_key)))


def _pair_key(p: Pair) -> tuple[str, str, int, int]:
    site = p.after or p.before
    assert site is not None
    return (
        site.module or "",
        site.file + "\0" + site.function,
        p.before.line if p.before else -1,
        p.after.line if p.after else -1,
    )


def _exact(olds: list[Site], news: list[Site], source_map: SourceMap) -> dict[Site, Site]:
    at = {s.line: s for s in news}
    found = {}
    for s in olds:
        line = source_map.lines.get((s.file, s.line))
        if line is not None and line in at:
            found[s] = at[line]
    return found


def _anchors(paired: dict[Site, Site]) -> dict[str, tuple[list[int], list[int]]]:
    """Return, per (later) file, the earlier lines of its in-order pairs and how far each moved."""
    points: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for a, b in paired.items():
        points[b.file].append((a.line, b.line - a.line))
    return {
        file: ([line for line, _ in sorted(p)], [shift for _, shift in sorted(p)])
        for file, p in points.items()
    }


def _shift(line: int, anchors: tuple[list[int], list[int]]) -> int:
    """Return how far the nearest anchor (by earlier line) moved: 0 without anchors."""
    lines, shifts = anchors
    if not lines:
        return 0
    i = bisect.bisect_left(lines, line)
    near = [j for j in (i - 1, i) if 0 <= j < len(lines)]
    best = min(near, key=lambda j: (abs(lines[j] - line), j))
    return shifts[best]


def _aligned(
    olds: list[Site], news: list[Site], anchors: tuple[list[int], list[int]]
) -> dict[Site, Site]:
    """Return the order-keeping pairing of min(len) sites with the least total distance
    between each later line and where its earlier line is expected to have gone."""
    expected = [s.line + _shift(s.line, anchors) for s in olds]
    flip = len(olds) > len(news)
    short = [float(n.line) for n in news] if flip else [float(e) for e in expected]
    long = [float(e) for e in expected] if flip else [float(n.line) for n in news]
    m, n = len(short), len(long)
    inf = float("inf")
    # cost[i][j]: the first i of ``short`` all paired within the first j of ``long``
    cost = [[0.0] * (n + 1)] + [[inf] * (n + 1) for _ in range(m)]
    for i in range(1, m + 1):
        for j in range(i, n + 1):
            cost[i][j] = min(cost[i][j - 1], cost[i - 1][j - 1] + abs(short[i - 1] - long[j - 1]))
    chosen: list[tuple[int, int]] = []
    i, j = m, n
    while i > 0:
        if j > i and cost[i][j] == cost[i][j - 1]:
            j -= 1
        else:
            chosen.append((i - 1, j - 1))
            i, j = i - 1, j - 1
    if flip:
        return {olds[jj]: news[ii] for ii, jj in chosen}
    return {olds[ii]: news[jj] for ii, jj in chosen}


def agreement(heuristic: Matching, exact: Matching, files: Iterable[str]) -> Agreement:
    """Return how many of the heuristic's pairs in ``files`` (the source map's) the exact
    matching also made, out of each side's pairs there."""
    covered = set(files)
    mine = {(a, b) for a, b in heuristic.paired().items() if a.file in covered}
    truth = {(a, b) for a, b in exact.paired().items() if a.file in covered}
    return Agreement(len(mine & truth), len(mine), len(truth))


def row_sites(rows: pa.Table) -> list[Site]:
    """Return the call site of each row of a samples table, in its order."""
    columns = [rows[c].to_pylist() for c in ("module", "file", "function", "line")]
    return [Site(m, f, fn, ln) for m, f, fn, ln in zip(*columns, strict=True)]


def sites(rows: pa.Table) -> list[Site]:
    """Return the distinct call sites of a samples table."""
    return sorted(set(row_sites(rows)), key=lambda s: (s.module or "", s.file, s.function, s.line))


def remap(rows: pa.Table, matching: Matching) -> pa.Table:
    """Return the samples with every paired earlier site written as its later site, so that
    a diff by call site, function or file meets the two sides under one key."""
    paired = matching.paired()
    files, functions, lines = [], [], []
    for old in row_sites(rows):
        site = paired.get(old, old)
        files.append(site.file)
        functions.append(site.function)
        lines.append(site.line)
    for name, values in (("file", files), ("function", functions), ("line", lines)):
        i = rows.schema.get_field_index(name)
        rows = rows.set_column(i, rows.schema.field(i), pa.array(values, rows.schema.field(i).type))
    return rows


def moved_table(matching: Matching) -> pa.Table:
    """Return the moved sites: their later call site (``key``) and what it was before."""
    keys, was = [], []
    for p in matching.pairs:
        if p.status == Status.MOVED and p.before is not None and p.after is not None:
            keys.append(p.after.text())
            same_place = (p.before.file, p.before.function) == (p.after.file, p.after.function)
            was.append(f":{p.before.line}" if same_place else p.before.text())
    return pa.table({"key": pa.array(keys, pa.string()), "moved_from": pa.array(was, pa.string())})
