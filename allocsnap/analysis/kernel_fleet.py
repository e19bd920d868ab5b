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
from allocsnap.analysis import compare, kernels, query
from allocsnap.analysis.grouping import Grouping
from allocsnap.analysis.session import Session, Store
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.model import Snapshot, SnapshotMeta


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
    a_snaps = _load(store_dir, [newest[(kernel_a, h)] for h in sides["a"]])
    b_snaps = _load(store_dir, [newest[(kernel_b, h)] for h in sides["b"]])
    matching = kernels.match(
        {site for s in a_snaps for site in kernels.sites(s.samples)},
        {site for s in b_snaps for site in kernels.sites(s.samples)},
        lines.renames,
        lines.source_map,
    )
    by_site = grouping.by == "tag"
    status_a, status_b = (_statuses(matching, side, by_site) for side in ("a", "b"))
    table = pa.concat_tables(
        [_side_rows(s, "a", matching, status_a) for s in a_snaps]
        + [_side_rows(s, "b", matching, status_b) for s in b_snaps]
    )
    with query.connect() as con:
        query.register(con, "kernel_rows", table)
        rows = query.run(con, "compare_kernels", by=grouping.by, depth=grouping.depth)
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


def _load(store_dir: Store, metas: list[SnapshotMeta]) -> list[Snapshot]:
    if isinstance(store_dir, Session):
        return [compare.load_stored(store_dir, m) for m in metas]
    with Session(store_dir) as session:
        return [compare.load_stored(session, m) for m in metas]


def _statuses(matching: kernels.Matching, side: str, by_site: bool) -> dict[kernels.Site, str]:
    """Return each site of one side's status (none unless grouped by call site)."""
    if not by_site:
        return {}
    found = {}
    for p in matching.pairs:
        site = p.before if side == "a" else p.after
        if site is not None:
            found[site] = p.status.value
    return found


def _side_rows(
    snap: Snapshot, side: str, matching: kernels.Matching, status: dict[kernels.Site, str]
) -> pa.Table:
    """Return a snapshot's rows for compare_kernels.sql: kernel A's sites under B's keys."""
    rows = kernels.remap(snap.samples, matching) if side == "a" else snap.samples
    n = rows.num_rows
    before = kernels.row_sites(snap.samples)
    return pa.table(
        {
            "side": pa.array([side] * n, pa.string()),
            "host": pa.array([snap.meta.host] * n, pa.string()),
            "file": rows["file"],
            "line": rows["line"],
            "module": rows["module"],
            "function": rows["function"],
            "bytes": rows["bytes"],
            "status": pa.array([status.get(s) for s in before], pa.string()),
        }
    )


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
