"""Two kernels over a fleet: per call site (or group), the bytes on hosts running kernel A
against those running kernel B, and whether the difference stands out from host-to-host
variation (``allocsnap compare-kernels``).

Each host contributes its newest snapshot on each kernel. Call sites are paired across the two
kernels as ``diff`` pairs them (``analysis.kernels``); ``queries/compare_kernels.sql`` ranks
the hosts and gives a Mann–Whitney z per group; here z becomes a p-value, the p-values of the
groups both kernels have a Benjamini–Hochberg q-value, and a small q a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa

from allocsnap import units
from allocsnap.analysis import across, compare, kernels, query, reading
from allocsnap.analysis.grouping import Grouping
from allocsnap.analysis.session import Store
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.model import SnapshotMeta


@dataclass(frozen=True)
class KernelsResult:
    """Two kernels compared over the hosts that ran them."""

    kernel_a: str
    kernel_b: str
    hosts_a: tuple[str, ...]
    hosts_b: tuple[str, ...]
    matching: kernels.Matching | None  # the call sites paired (every grouping uses it)
    rows: pa.Table  # compare_kernels.sql columns, then p_value, q_value, verdict
    groups: int  # before --top cut the list
    alpha: float

    def flagged(self, verdict: str = "more") -> int:
        """Return how many groups have ``verdict`` (``more``: a regression on kernel B)."""
        return sum(1 for v in self.rows["verdict"].to_pylist() if v == verdict)


def compare_kernels(
    store_dir: Store,
    kernel_a: str | None = None,
    kernel_b: str | None = None,
    *,
    grouping: Grouping | None = None,
    lines: kernels.LineOptions | None = None,
    host: compare.Hosts = None,
    alpha: float = 0.05,
    top_n: int | None = 20,
) -> KernelsResult:
    """Return, per group, kernel A's hosts against kernel B's: medians, Mann–Whitney test.

    Without kernels named, the store must hold exactly two, taken in version order.
    """
    grouping = grouping or Grouping()
    lines = lines or kernels.LineOptions()
    metas = compare.snapshots(store_dir, host)
    kernel_a, kernel_b = _kernels(metas, kernel_a, kernel_b, store_dir)
    newest: dict[tuple[str, str], SnapshotMeta] = {}
    for meta in metas:  # oldest first: the last one kept is the newest
        if meta.kernel in (kernel_a, kernel_b):
            newest[(meta.kernel, meta.host)] = meta
    sides = {
        side: sorted(h for k, h in newest if k == kernel)
        for side, kernel in (("a", kernel_a), ("b", kernel_b))
    }
    chosen = pa.table(
        {
            "snapshot_id": [m.snapshot_id for m in newest.values()],
            "host": [m.host for m in newest.values()],
            "side": ["a" if m.kernel == kernel_a else "b" for m in newest.values()],
        }
    )
    found: dict[str, kernels.Matching] = {}

    def read(con: query.Connection) -> pa.Table:
        sites = across.kernel_sites(con, host)
        ids = {"a": sites.get(kernel_a, {}), "b": sites.get(kernel_b, {})}
        found["matching"] = kernels.match(ids["a"], ids["b"], lines.renames, lines.source_map)
        query.register(con, "kernel_snapshots", chosen)
        query.register(con, "site_map", _site_map(found["matching"], grouping.by == "tag", ids))
        return query.run(con, "compare_kernels", by=grouping.by, depth=grouping.depth)

    rows = reading.read_store(store_dir, read)
    matching = found["matching"]
    rows = _tested(rows, alpha)
    groups = rows.num_rows
    if top_n:
        rows = rows.slice(0, top_n)
    return KernelsResult(
        kernel_a=kernel_a,
        kernel_b=kernel_b,
        hosts_a=tuple(sides["a"]),
        hosts_b=tuple(sides["b"]),
        matching=matching,
        rows=rows,
        groups=groups,
        alpha=alpha,
    )


def _kernels(
    metas: list[SnapshotMeta], a: str | None, b: str | None, store_dir: Store
) -> tuple[str, str]:
    found = sorted({m.kernel for m in metas if m.kernel}, key=units.natural_key)
    if not metas:
        raise StoreNotFound(f"no snapshots in {store_dir}")
    if a is None and b is None:
        if len(found) != 2:
            listed = ", ".join(found) or "none recorded"
            raise UsageError(
                f"the store holds {len(found)} kernels ({listed}): name the two to compare"
            )
        a, b = found
    if a is None or b is None or a == b:
        raise UsageError("name two different kernels: KERNEL_A KERNEL_B")
    for kernel in (a, b):
        if kernel not in found:
            raise StoreNotFound(
                f"no snapshot of kernel {kernel!r} in {store_dir} (kernels: {', '.join(found)})"
            )
    return a, b


def _site_map(
    matching: kernels.Matching, by_site: bool, ids: dict[str, dict[kernels.Site, int]]
) -> pa.Table:
    """Return, per side and tag, the call site its rows are counted as: A's paired sites as
    B's, every other site as itself; with its status when grouped by call site."""
    rows: dict[str, list[object]] = {c: [] for c in ("side", "tag_id", *_SITE, "status")}
    for p in matching.pairs:
        for side, site in (("a", p.before), ("b", p.after)):
            if site is None:
                continue
            counted = p.after or site
            rows["side"].append(side)
            rows["tag_id"].append(ids[side][site])
            for column in _SITE:
                rows[column].append(getattr(counted, column))
            rows["status"].append(p.status.value if by_site else None)
    types = {"side": pa.string(), "tag_id": pa.int64(), "line": pa.uint32()}
    return pa.table({c: pa.array(v, types.get(c, pa.string())) for c, v in rows.items()})


_SITE = ("file", "line", "module", "function")


def _tested(rows: pa.Table, alpha: float) -> pa.Table:
    """Return the rows with p_value, q_value (Benjamini–Hochberg over the groups both kernels
    have) and verdict, smallest q first, then p, then largest |Δ|, ties by key."""
    z = rows["z"].to_pylist()
    p = [math.erfc(abs(v) / math.sqrt(2)) if v is not None else None for v in z]
    status = rows["status"].to_pylist()
    tested = sorted(
        (i for i, v in enumerate(p) if v is not None and status[i] not in ("new", "gone")),
        key=lambda i: (p[i], rows["key"][i].as_py()),
    )
    q: list[float | None] = [None] * len(p)
    running = 1.0
    for rank in range(len(tested), 0, -1):  # the step-up: q is the least p*m/k from here up
        i = tested[rank - 1]
        running = min(running, (p[i] or 0.0) * len(tested) / rank)
        q[i] = running
    delta = rows["delta_bytes"].to_pylist()
    verdict = [_verdict(q[i], delta[i], alpha) for i in range(len(p))]
    keys = rows["key"].to_pylist()
    order = sorted(
        range(len(p)),
        key=lambda i: (
            q[i] is None,
            q[i] or 0.0,
            p[i] is None,
            p[i] or 0.0,
            -abs(delta[i] or 0),
            keys[i],
        ),
    )
    rows = rows.append_column("p_value", pa.array(p, pa.float64()))
    rows = rows.append_column("q_value", pa.array(q, pa.float64()))
    rows = rows.append_column("verdict", pa.array(verdict, pa.string()))
    return rows.take(pa.array(order, pa.int64()))


def _verdict(q: float | None, delta: float | None, alpha: float) -> str:
    if q is None or q > alpha or not delta:
        return ""
    return "more" if delta > 0 else "less"
