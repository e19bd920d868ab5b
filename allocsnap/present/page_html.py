"""``allocsnap report``'s page: one self-contained HTML file, offline.

The page needs nothing from the network: charts are inline SVG (``svgchart``), the one script
and the styles are inline, and a Content-Security-Policy forbids any fetch.
"""

from __future__ import annotations

from html import escape

from allocsnap import analysis
from allocsnap.present import svgchart, tables, treemap
from allocsnap.present.page_data import (
    ReportData,
    signed,
    totals_chart,
)
from allocsnap.present.render import clip, plural
from allocsnap.units import format_size

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
        f"{plural(e.counting, 'epoch')}, store {escape(str(data.store))}</p>",
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
    parts.append(f"<script>{treemap.TREEMAP_SCRIPT}</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


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
                    signed(r["bytes_per_hour"]),
                    signed(r["growth_bytes"]),
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
            title=clip(key, 64),
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
                signed(r["delta_bytes"]),
                signed(r["bytes_per_hour"]),
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
        f'<p class="note">before: {escape(tables.describe(d.before))}<br>'
        f"after: {escape(tables.describe(d.after))}<br>"
        f"total: {format_size(d.before_totals.bytes)} → {format_size(d.after_totals.bytes)} "
        f"({signed(net)})</p>",
    ]
    if d.warnings:
        out.append('<ul class="warnings">')
        out += [f"<li>{escape(w)}</li>" for w in d.warnings]
        out.append("</ul>")
    out += _table(
        ["Δbytes", "before", "after", "Δcalls", "call site"],
        [
            [
                signed(r["delta_bytes"]),
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
        treemap.treemap(data.tree),
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
