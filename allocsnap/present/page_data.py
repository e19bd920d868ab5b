"""What ``allocsnap report`` shows, gathered once from a store window as a typed result.

``gather`` runs the analyses and returns a ``ReportData``: the window's snapshots and their
events (reboots, profiling-off stretches, module loads and unloads), the leak candidates with
their series, the top movers, the diff between the window's first and last snapshot, and the
directory → file → function tree at the end. ``htmlreport`` and ``textreport`` render it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import pyarrow as pa

from allocsnap import analysis
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.model import SnapshotMeta
from allocsnap.present import svgchart, treemap
from allocsnap.store.remote import Location
from allocsnap.units import format_size

SERIES_POINTS = 200
TOTAL_POINTS = 1200
TREE_CHILDREN = 40
"""Children drawn per tree node; the rest are summed into one ``N more`` cell."""


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, gathered from one store window."""

    store: Location
    host: str
    epochs: analysis.Epochs
    snapshots: tuple[SnapshotMeta, ...]  # the window's, oldest first, profiling off included
    bands: tuple[svgchart.Band, ...]  # profiling-off stretches
    markers: tuple[svgchart.Marker, ...]  # reboots, modules loaded or unloaded
    leaks: analysis.LeaksResult
    leak_series: dict[str, dict[str, tuple[svgchart.Point, ...]]]  # key -> epoch -> points
    top: analysis.WindowResult
    diff: analysis.DiffResult
    tree: treemap.Node  # bytes at the last snapshot, delta since tree_base
    tree_base: SnapshotMeta  # first snapshot of the newest epoch


def gather(
    store_dir: Location, window: analysis.Window | None = None, *, top_n: int = 10
) -> ReportData:
    """Return what a report of a store window shows; raise ``StoreNotFound`` when the window
    holds no snapshot and ``UsageError`` when it holds several hosts' snapshots.

    The store is listed once: every analysis of the page reads through one session.
    """
    with analysis.Session(store_dir) as opened:
        return _gather(opened, window or analysis.Window(), top_n)


def _gather(store_dir: analysis.Session, window: analysis.Window, top_n: int) -> ReportData:
    epochs = analysis.epochs(store_dir, window)
    metas = analysis.window_snapshots(store_dir, window)
    hosts = sorted({m.host for m in metas})
    if len(hosts) > 1:
        raise UsageError(
            f"the window holds snapshots of {len(hosts)} hosts ({', '.join(hosts)}): "
            "choose one with --host"
        )
    counting = [m for m in metas if m.profiling != 0]
    if not counting:
        raise StoreNotFound(f"no snapshots with profiling on in the window in {store_dir}")
    leaks = analysis.leaks(store_dir, window, top_n=top_n)
    epochs = replace(epochs, warnings=epochs.warnings + short_epochs(epochs, leaks.settings))
    series = {}
    for key in dict.fromkeys(leaks.rows["key"].to_pylist()):
        rows = analysis.history(store_dir, exact_glob(key), window, max_points=SERIES_POINTS).rows
        series[key] = _runs(rows)
    top = analysis.top(store_dir, window, top_n=top_n)
    first, last = counting[0], counting[-1]
    base = newest_epoch_start(metas)
    old, new, since = analysis.load_all(
        [first.snapshot_id, last.snapshot_id, base.snapshot_id], store_dir
    )
    diff = analysis.diff(old, new, top_n=top_n)
    bands, markers = events(metas)
    return ReportData(
        store=store_dir.location,
        host=hosts[0],
        epochs=epochs,
        snapshots=tuple(metas),
        bands=bands,
        markers=markers,
        leaks=leaks,
        leak_series=series,
        top=top,
        diff=diff,
        tree=tree(new.samples, since.samples),
        tree_base=base,
    )


def short_epochs(epochs: analysis.Epochs, settings: analysis.LeakSettings) -> tuple[str, ...]:
    """Return a warning for each epoch of the window that spans less than ``short_hours``:
    its growth may be a hump that the boot gives back later, which a leak verdict over so short
    a span cannot see (docs/analyses.md, "Humps")."""
    out = []
    for row in epochs.rows.to_pylist():
        if row["snapshots"] < 2:
            continue
        hours = (row["last_at"] - row["first_at"]).total_seconds() / 3600
        if hours < settings.short_hours:
            out.append(
                f"epoch {row['epoch']} spans only {hours:.1f} h (under {settings.short_hours:g} "
                "h): growth there may be a hump the boot gives back later, so its leak "
                "verdicts are tentative"
            )
    return tuple(out)


def newest_epoch_start(metas: list[SnapshotMeta]) -> SnapshotMeta:
    """Return the first counting snapshot of the newest epoch: after the last reboot and the
    last profiling-off stretch (the rule of the queries' ``window_snapshots``)."""
    start: SnapshotMeta | None = None
    for m in reversed(metas):
        if m.profiling == 0:
            if start is not None:
                break
            continue
        if start is not None and _epoch_key(m) != _epoch_key(start):
            break
        start = m
    if start is None:
        raise StoreNotFound("no snapshots with profiling on in the window")
    return start


def events(
    metas: list[SnapshotMeta],
) -> tuple[tuple[svgchart.Band, ...], tuple[svgchart.Marker, ...]]:
    """Return the profiling-off stretches and the reboots and module changes among snapshots."""
    bands: list[svgchart.Band] = []
    markers: list[svgchart.Marker] = []
    off_start: SnapshotMeta | None = None
    off_count = 0
    for prev, cur in zip(metas, metas[1:], strict=False):
        if boot_of(prev) != boot_of(cur):
            markers.append(
                svgchart.Marker(cur.taken_at, f"reboot: boot {(boot_of(cur) or '?')[:8]}", "reboot")
            )
        elif prev.modules is not None and cur.modules is not None:
            loaded = sorted(set(cur.modules) - set(prev.modules))
            unloaded = sorted(set(prev.modules) - set(cur.modules))
            if loaded or unloaded:
                text = "; ".join(
                    f"modules {verb}: {', '.join(names)}"
                    for verb, names in (("loaded", loaded), ("unloaded", unloaded))
                    if names
                )
                markers.append(svgchart.Marker(cur.taken_at, text, "modules"))
    for m in metas:
        if m.profiling == 0:
            off_start = off_start or m
            off_count += 1
        elif off_start is not None:
            bands.append(_off_band(off_start, m.taken_at, off_count))
            off_start, off_count = None, 0
    if off_start is not None:
        bands.append(_off_band(off_start, metas[-1].taken_at, off_count))
    return tuple(bands), tuple(markers)


def tree(now: pa.Table, base: pa.Table) -> treemap.Node:
    """Return the directory → file → function tree of a snapshot's live bytes, each node with
    its change since ``base``; a directory with one subdirectory only is merged with it."""
    root = treemap.Node("all", "")
    index: dict[str, treemap.Node] = {"": root}
    for table, sign in ((now, 1), (base, -1)):
        grouped = table.group_by(["file", "function"]).aggregate([("bytes", "sum")])
        for file, function, value in zip(
            grouped["file"].to_pylist(),
            grouped["function"].to_pylist(),
            grouped["bytes_sum"].to_pylist(),
            strict=True,
        ):
            parts = [p for p in file.split("/") if p not in ("", ".")] + [f"{function}()"]
            if sign > 0:
                root.bytes += value
            root.delta += sign * value
            path = ""
            for part in parts:
                parent = index[path]
                path = f"{path}/{part}" if path else part
                node = index.get(path)
                if node is None:
                    node = index[path] = treemap.Node(part, path)
                    parent.children.append(node)
                if sign > 0:
                    node.bytes += value
                node.delta += sign * value
    _finish(root)
    return root


def exact_glob(key: str) -> str:
    """Return a glob that matches ``key`` exactly (``[ice]`` is a character class in a glob)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in key)


def totals_chart(data: ReportData) -> svgchart.TimeChart:
    """Return the chart of the window's total live bytes, one line per epoch, events marked."""
    runs: list[list[svgchart.Point]] = []
    previous: SnapshotMeta | None = None
    for m in data.snapshots:
        if m.profiling == 0:
            previous = None
            continue
        if previous is None or _epoch_key(previous) != _epoch_key(m):
            runs.append([])
        runs[-1].append((m.taken_at, float(m.total_bytes)))
        previous = m
    segments = tuple(svgchart.thin(r, TOTAL_POINTS) for r in runs)
    return svgchart.TimeChart(
        series=(svgchart.Series(f"{data.host}: total live bytes", segments),),
        name="totals",
        bands=data.bands,
        markers=data.markers,
        legend=False,
    )


def _runs(rows: pa.Table) -> dict[str, tuple[svgchart.Point, ...]]:
    """Return a history's points per epoch, oldest epoch first, each in time order."""
    out: dict[str, list[svgchart.Point]] = {}
    for epoch, at, value in zip(
        rows["epoch"].to_pylist(),
        rows["taken_at"].to_pylist(),
        rows["bytes"].to_pylist(),
        strict=True,
    ):
        out.setdefault(epoch, []).append((at, float(value)))
    runs = sorted(((epoch, sorted(run)) for epoch, run in out.items()), key=lambda r: r[1][0])
    return {epoch: tuple(run) for epoch, run in runs}


def _finish(node: treemap.Node) -> None:
    """Sort children by bytes, merge single-subdirectory chains, sum the smallest into one."""
    while (
        len(node.children) == 1
        and node.children[0].children
        and not node.children[0].name.endswith((".c", ".h", ")"))
        and node.path
    ):
        only = node.children[0]
        node.name, node.path, node.children = f"{node.name}/{only.name}", only.path, only.children
    node.children.sort(key=lambda c: (-c.bytes, c.name))
    if len(node.children) > TREE_CHILDREN:
        rest = node.children[TREE_CHILDREN - 1 :]
        more = treemap.Node(
            f"{len(rest)} more",
            f"{node.path}/…",
            bytes=sum(c.bytes for c in rest),
            delta=sum(c.delta for c in rest),
        )
        node.children = node.children[: TREE_CHILDREN - 1] + [more]
    for child in node.children:
        _finish(child)


def _off_band(start: SnapshotMeta, end: datetime, count: int) -> svgchart.Band:
    return svgchart.Band(
        start.taken_at, end, f"profiling off (vm.mem_profiling=0): {count} snapshots"
    )


def boot_of(m: SnapshotMeta) -> str | None:
    """Return what tells a snapshot's boot: its boot id, or else its kernel release."""
    return m.boot_id or (f"kernel {m.kernel}" if m.kernel else None)


def _epoch_key(m: SnapshotMeta) -> tuple[str, str | None]:
    return m.host, boot_of(m)


def signed(value: int | float | None) -> str:
    """Return a change in bytes for people, with its sign: ``+4.0 MiB``."""
    if value is None:
        return ""
    return ("+" if value > 0 else "") + format_size(value)
