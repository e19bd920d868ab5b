"""``allocsnap report``: a store window's overview as one offline HTML page, Markdown or text.

``gather`` runs the analyses once and returns a typed ``ReportData``: the window's snapshots
and their events (reboots, profiling-off stretches, module loads and unloads), the leak
candidates with their series, the top movers, the diff between the window's first and last
snapshot, and the directory → file → function tree at the end. ``html`` and ``text`` only
render it. The page needs nothing from the network: charts are inline SVG (``svgchart``), the
one script and the styles are inline, and a Content-Security-Policy forbids any fetch.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap import analysis, reports, svgchart
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.model import SnapshotMeta
from allocsnap.units import format_size

WIDTH = 79
"""Text and Markdown lines stay shorter than 80 columns: a mail or an issue shows them whole."""
SERIES_POINTS = 200
TOTAL_POINTS = 1200
TREE_CHILDREN = 40
"""Children drawn per tree node; the rest are summed into one ``N more`` cell."""


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, gathered from one store window."""

    store: Path
    host: str
    epochs: analysis.Epochs
    snapshots: tuple[SnapshotMeta, ...]  # the window's, oldest first, profiling off included
    bands: tuple[svgchart.Band, ...]  # profiling-off stretches
    markers: tuple[svgchart.Marker, ...]  # reboots, modules loaded or unloaded
    leaks: analysis.LeaksResult
    leak_series: dict[str, dict[str, tuple[svgchart.Point, ...]]]  # key -> epoch -> points
    top: analysis.WindowResult
    diff: analysis.DiffResult
    tree: svgchart.Node  # bytes at the last snapshot, delta since tree_base
    tree_base: SnapshotMeta  # first snapshot of the newest epoch


def gather(
    store_dir: Path, window: analysis.Window | None = None, *, top_n: int = 10
) -> ReportData:
    """Return what a report of a store window shows; raise ``StoreNotFound`` when the window
    holds no snapshot and ``UsageError`` when it holds several hosts' snapshots."""
    window = window or analysis.Window()
    epochs = analysis.epochs(store_dir, window)
    metas = window_snapshots(analysis.snapshots(store_dir), window)
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
        store=store_dir,
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


def window_snapshots(metas: list[SnapshotMeta], window: analysis.Window) -> list[SnapshotMeta]:
    """Return the snapshots inside a window, oldest first, by the rules of the queries'
    ``window_snapshots`` macro: a duration bound counts back from the newest snapshot of the
    window's hosts."""
    params = window.params()
    mine = [m for m in metas if window.host is None or m.host == window.host]
    if not mine:
        return []
    newest = max(m.taken_at for m in mine)

    def bound(at: object, back: object) -> datetime | None:
        if isinstance(at, datetime):
            return at
        if isinstance(back, float):
            return newest - timedelta(seconds=back)
        return None

    low = bound(params["since_at"], params["since_back"])
    high = bound(params["until_at"], params["until_back"])
    return [
        m
        for m in mine
        if (low is None or m.taken_at >= low) and (high is None or m.taken_at <= high)
    ]


def events(
    metas: list[SnapshotMeta],
) -> tuple[tuple[svgchart.Band, ...], tuple[svgchart.Marker, ...]]:
    """Return the profiling-off stretches and the reboots and module changes among snapshots."""
    bands: list[svgchart.Band] = []
    markers: list[svgchart.Marker] = []
    off_start: SnapshotMeta | None = None
    off_count = 0
    for prev, cur in zip(metas, metas[1:], strict=False):
        if _boot(prev) != _boot(cur):
            markers.append(
                svgchart.Marker(cur.taken_at, f"reboot: boot {(_boot(cur) or '?')[:8]}", "reboot")
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


def tree(now: pa.Table, base: pa.Table) -> svgchart.Node:
    """Return the directory → file → function tree of a snapshot's live bytes, each node with
    its change since ``base``; a directory with one subdirectory only is merged with it."""
    root = svgchart.Node("all", "")
    index: dict[str, svgchart.Node] = {"": root}
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
                    node = index[path] = svgchart.Node(part, path)
                    parent.children.append(node)
                if sign > 0:
                    node.bytes += value
                node.delta += sign * value
    _finish(root)
    return root


def exact_glob(key: str) -> str:
    """Return a glob that matches ``key`` exactly (``[ice]`` is a character class in a glob)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in key)


# -- HTML --------------------------------------------------------------------------------------

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
STYLE = """
body { font: 14px/1.45 sans-serif; color: #222; margin: 24px auto; max-width: 1000px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; }
.summary { color: #555; margin-top: 0; }
.warnings li { color: #8a4b00; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { padding: 2px 8px; border-bottom: 1px solid #e6e6e6; text-align: right;
  white-space: nowrap; }
th { background: #f4f4f4; } td.key, th.key { text-align: left; font-family: monospace; }
td.key { white-space: normal; overflow-wrap: anywhere; }
.note { color: #555; font-size: 13px; }
.leaks { display: flex; flex-wrap: wrap; gap: 8px 16px; margin: 14px 0; }
#tree-path button { font: inherit; border: 1px solid #ccc; background: #f8f8f8;
  border-radius: 3px; cursor: pointer; padding: 1px 6px; }
svg.treemap g.cell[data-zoom] { cursor: zoom-in; }
svg.treemap g.cell:hover > rect:not(.inner) { stroke: #000; }
.legend span { display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 12px; }
"""


def html(data: ReportData) -> str:
    """Return the report as one self-contained HTML page."""
    e = data.epochs
    title = f"allocsnap report: {data.host}"
    span = f"{analysis.taken_at_text(e.first_at)} → {analysis.taken_at_text(e.last_at)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="summary">{escape(span)}: {e.snapshots:,} snapshots in '
        f"{_plural(_counting(e), 'epoch')}, store {escape(str(data.store))}</p>",
    ]
    if e.warnings:
        parts.append('<ul class="warnings">')
        parts += [f"<li>{escape(w)}</li>" for w in e.warnings]
        parts.append("</ul>")
    parts += _totals_html(data)
    parts += _leaks_html(data)
    parts += _top_html(data)
    parts += _diff_html(data)
    parts += _tree_html(data)
    parts.append(f"<script>{svgchart.TREEMAP_SCRIPT}</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


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


def _totals_html(data: ReportData) -> list[str]:
    out = [
        "<section id='totals'><h2>Total live bytes</h2>",
        svgchart.time_chart(totals_chart(data)),
    ]
    notes = [
        f"{len([m for m in data.markers if m.kind == 'reboot'])} reboot(s) (red dashed line: "
        "counters restart from zero)",
        f"{len(data.bands)} profiling-off stretch(es) (grey: vm.mem_profiling=0, counters "
        "frozen, left out of the line)",
        f"{len([m for m in data.markers if m.kind == 'modules'])} module load/unload(s) "
        "(amber dashed line; hover for names)",
    ]
    out.append(f'<p class="note">{escape("; ".join(notes))}.</p></section>')
    return out


def _leaks_html(data: ReportData) -> list[str]:
    leaks = data.leaks
    out = [
        "<section id='leaks'>",
        f"<h2>Leak candidates ({leaks.found} found, steepest first)</h2>",
    ]
    if not leaks.rows.num_rows:
        out.append('<p class="note">No call site grows persistently in this window.</p>')
    else:
        out += _table(
            ["rate/hour", "growth", "first", "last", "confidence", "epoch", "call site"],
            [
                [
                    _signed(r["bytes_per_hour"]),
                    _signed(r["growth_bytes"]),
                    format_size(r["first_bytes"]),
                    format_size(r["last_bytes"]),
                    f"{100 * r['confidence']:.1f}%",
                    r["epoch"],
                    r["key"],
                ]
                for r in leaks.rows.to_pylist()
            ],
            keys=2,
        )
    charts = []
    for key, runs in data.leak_series.items():
        chart = svgchart.TimeChart(
            series=(svgchart.Series(key, tuple(runs.values())),),
            name="leak",
            markers=tuple(m for m in data.markers if m.kind == "reboot"),
            bands=data.bands,
            width=480,
            height=180,
            legend=False,
            title=_clip(key, 64),
        )
        charts.append(svgchart.time_chart(chart))
    out += ['<div class="leaks">', *charts, "</div></section>"]
    return out


def _top_html(data: ReportData) -> list[str]:
    out = ["<section id='top'><h2>Top movers (first against last snapshot of each epoch)</h2>"]
    rows = data.top.rows.to_pylist()
    if not rows:
        out.append('<p class="note">Nothing changed.</p>')
    out += _table(
        ["Δbytes", "Δ/hour", "first", "last", "status", "epoch", "call site"],
        [
            [
                _signed(r["delta_bytes"]),
                _signed(r["bytes_per_hour"]),
                format_size(r["first_bytes"]),
                format_size(r["last_bytes"]),
                r["status"],
                r["epoch"],
                r["key"],
            ]
            for r in rows
        ],
        keys=2,
    )
    out.append("</section>")
    return out


def _diff_html(data: ReportData) -> list[str]:
    d = data.diff
    net = d.after_totals.bytes - d.before_totals.bytes
    out = [
        "<section id='diff'><h2>Diff between the window's ends</h2>",
        f'<p class="note">before: {escape(reports.describe(d.before))}<br>'
        f"after: {escape(reports.describe(d.after))}<br>"
        f"total: {format_size(d.before_totals.bytes)} → {format_size(d.after_totals.bytes)} "
        f"({_signed(net)})</p>",
    ]
    if d.warnings:
        out.append('<ul class="warnings">')
        out += [f"<li>{escape(w)}</li>" for w in d.warnings]
        out.append("</ul>")
    out += _table(
        ["Δbytes", "before", "after", "Δcalls", "call site"],
        [
            [
                _signed(r["delta_bytes"]),
                format_size(r["bytes_before"]),
                format_size(r["bytes_after"]),
                f"{r['delta_calls']:+,}",
                r["key"],
            ]
            for r in d.rows.to_pylist()
        ],
        keys=1,
    )
    if d.changed > d.rows.num_rows:
        out.append(f'<p class="note">{d.changed - d.rows.num_rows} more changed.</p>')
    if not d.changed:
        out.append('<p class="note">No changes.</p>')
    out.append("</section>")
    return out


def _tree_html(data: ReportData) -> list[str]:
    base = analysis.taken_at_text(data.tree_base.taken_at)
    return [
        "<section id='tree'><h2>Where the memory is: directory → file → function</h2>",
        f'<p class="note">Area: live bytes at the last snapshot ({format_size(data.tree.bytes)}). '
        f"Colour: change since the newest epoch began ({escape(base)})"
        '<span class="legend"><span style="background:#d62728"></span>grew'
        '<span style="background:#e0e0e0"></span>flat'
        '<span style="background:#3168b4"></span>shrank</span>. '
        "Click a cell to zoom in; the path buttons (or Backspace) zoom out.</p>",
        '<div id="tree-path"></div>',
        svgchart.treemap(data.tree),
        "</section>",
    ]


def _table(headers: list[str], rows: list[list[object]], *, keys: int) -> list[str]:
    """Return an HTML table; the last ``keys`` columns are text, the others numbers."""
    n = len(headers)
    cls = ["" if i < n - keys else ' class="key"' for i in range(n)]
    out = [
        "<table><tr>"
        + "".join(f"<th{c}>{escape(h)}</th>" for h, c in zip(headers, cls, strict=True))
        + "</tr>"
    ]
    for row in rows:
        cells = "".join(
            f"<td{c}>{escape('' if v is None else str(v))}</td>"
            for v, c in zip(row, cls, strict=True)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return out


# -- text and Markdown -------------------------------------------------------------------------


def text(data: ReportData, *, markdown: bool = False) -> str:
    """Return the report as plain text (or Markdown) in lines under 80 columns."""
    e = data.epochs
    out: list[str] = []

    def heading(title: str) -> None:
        out.extend(["", f"## {title}" if markdown else title])
        if not markdown:
            out.append("-" * len(title))
        out.append("")

    def block(lines: list[str]) -> None:
        out.extend(["```", *lines, "```"] if markdown else lines)

    def para(line: str) -> None:
        # a Markdown list item each, so that a renderer keeps the lines apart
        first = "- " if markdown else ""
        out.extend(
            textwrap.wrap(
                line,
                WIDTH,
                initial_indent=first,
                subsequent_indent="  ",
                break_on_hyphens=False,
                break_long_words=True,  # only a name longer than a line is cut
            )
        )

    out.append(f"# allocsnap report: {data.host}" if markdown else f"allocsnap report: {data.host}")
    out.append("")
    para(
        f"window: {analysis.taken_at_text(e.first_at)} -> {analysis.taken_at_text(e.last_at)}, "
        f"{e.snapshots:,} snapshots in {_plural(_counting(e), 'epoch')}"
    )
    for w in e.warnings:
        para(f"warning: {w}")

    heading("Total live bytes")
    lines = [f"{'first':>10} {'last':>10} {'min':>10} {'max':>10}  epoch"]
    for run in totals_chart(data).series[0].segments:
        values = [v for _, v in run]
        epoch = next(
            (m for m in data.snapshots if m.taken_at == run[0][0] and m.profiling != 0), None
        )
        name = f"{epoch.host} {(_boot(epoch) or '')[:8]}" if epoch else ""
        lines.append(
            f"{format_size(values[0]):>10} {format_size(values[-1]):>10} "
            f"{format_size(min(values)):>10} {format_size(max(values)):>10}  {name}"
        )
        lines.append(f"  {reports.sparkline([round(v) for v in values], 60)}")
    block(lines)
    happenings = [(m.at, m.label) for m in data.markers]
    happenings += [(b.start, b.label) for b in data.bands]
    if happenings:
        out.append("")
        for at, label in sorted(happenings):
            para(f"{analysis.taken_at_text(at)}  {label}")

    heading(f"Leak candidates ({data.leaks.found} found)")
    lines = [f"{'rate/hour':>11} {'growth':>11} {'last':>10}  series"]
    for r in data.leaks.rows.to_pylist():
        points = data.leak_series.get(r["key"], {}).get(r["epoch"], ())
        ints = [int(v) for _, v in points]
        lines.append(
            f"{_signed(r['bytes_per_hour']):>11} {_signed(r['growth_bytes']):>11} "
            f"{format_size(r['last_bytes']):>10}  {reports.sparkline(ints, 40)}"
        )
        lines += _key_lines(f"{r['key']}  [{r['epoch']}]")
    if not data.leaks.rows.num_rows:
        lines = ["no call site grows persistently in this window"]
    block(lines)

    heading("Top movers")
    lines = [f"{'Δbytes':>11} {'Δ/hour':>11} {'first':>10} {'last':>10}  status"]
    for r in data.top.rows.to_pylist():
        lines.append(
            f"{_signed(r['delta_bytes']):>11} {_signed(r['bytes_per_hour']):>11} "
            f"{format_size(r['first_bytes']):>10} {format_size(r['last_bytes']):>10}  "
            f"{r['status']}"
        )
        lines += _key_lines(f"{r['key']}  [{r['epoch']}]")
    block(lines if data.top.rows.num_rows else ["nothing changed in this window"])

    d = data.diff
    heading("Diff between the window's ends")
    para(f"before: {_describe(d.before)}")
    para(f"after: {_describe(d.after)}")
    para(
        f"total: {format_size(d.before_totals.bytes)} -> {format_size(d.after_totals.bytes)} "
        f"({_signed(d.after_totals.bytes - d.before_totals.bytes)})"
    )
    for w in d.warnings:
        para(f"warning: {w}")
    out.append("")
    lines = [f"{'Δbytes':>11} {'before':>10} {'after':>10} {'Δcalls':>10}"]
    for r in d.rows.to_pylist():
        lines.append(
            f"{_signed(r['delta_bytes']):>11} {format_size(r['bytes_before']):>10} "
            f"{format_size(r['bytes_after']):>10} {r['delta_calls']:>+10,}"
        )
        lines += _key_lines(r["key"])
    if d.changed > d.rows.num_rows:
        lines.append(f"{d.changed - d.rows.num_rows} more changed")
    block(lines if d.rows.num_rows else ["no changes"])

    heading("Where the memory is")
    para(
        f"largest directories at the last snapshot, and their change since the newest "
        f"epoch began ({analysis.taken_at_text(data.tree_base.taken_at)})"
    )
    out.append("")
    lines = [f"{'bytes':>10} {'change':>11} {'share':>6}  directory"]
    total = max(data.tree.bytes, 1)
    for node in data.tree.children[:15]:
        lines.append(
            f"{format_size(node.bytes):>10} {_signed(node.delta):>11} "
            f"{100 * node.bytes / total:>5.1f}%  {_clip(node.path, WIDTH - 32)}"
        )
    block(lines)
    return "\n".join(line.rstrip() for line in out) + "\n"


def _describe(meta: SnapshotMeta) -> str:
    """Return ``reports.describe`` with the folders of an imported dump's path left out."""
    name = f" '{meta.name}'" if meta.name else ""
    where = Path(meta.origin).name if meta.origin else meta.source
    return (
        f"{meta.snapshot_id}{name}  {analysis.taken_at_text(meta.taken_at)}  {meta.host}  "
        f"{meta.kernel or 'kernel unknown'}  ({where})"
    )


def _key_lines(key: str) -> list[str]:
    return textwrap.wrap(
        key, WIDTH, initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False
    )


# -- helpers -----------------------------------------------------------------------------------


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


def _finish(node: svgchart.Node) -> None:
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
        more = svgchart.Node(
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


def _boot(m: SnapshotMeta) -> str | None:
    return m.boot_id or (f"kernel {m.kernel}" if m.kernel else None)


def _epoch_key(m: SnapshotMeta) -> tuple[str, str | None]:
    return m.host, _boot(m)


def _counting(epochs: analysis.Epochs) -> int:
    return int(pc.sum(pc.greater(epochs.rows["snapshots"], 0)).as_py() or 0)


def _signed(value: int | float | None) -> str:
    if value is None:
        return ""
    return ("+" if value > 0 else "") + format_size(value)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
