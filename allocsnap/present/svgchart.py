"""Charts as SVG text, with no charting library: time series and a squarified treemap.

Pure functions from numbers to markup, no I/O. The same writer draws the HTML report's charts
and ``allocsnap history --plot out.svg``. The SVG is self-contained (no fonts, images or links
to fetch), so it renders offline, in any browser and in a mail client that shows SVG. Every
drawn thing carries a class (``series``, ``marker reboot``, ``band profiling-off``, ``cell``)
and a ``<title>`` that a browser shows on hover, so tests can count what was drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape

from allocsnap.units import format_size

PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
    "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
)  # fmt: skip
"""Series colours (matplotlib's tab10, reordered so the first two differ for colour-blind eyes)."""

Point = tuple[datetime, float]


@dataclass(frozen=True)
class Series:
    """One line: its label and its segments, drawn unconnected (an epoch each)."""

    label: str
    segments: tuple[tuple[Point, ...], ...]


@dataclass(frozen=True)
class Band:
    """A shaded stretch of time, e.g. profiling off."""

    start: datetime
    end: datetime
    label: str
    kind: str = "profiling-off"


@dataclass(frozen=True)
class Marker:
    """A vertical line at a moment, e.g. a reboot or a module loaded."""

    at: datetime
    label: str
    kind: str = "reboot"


@dataclass(frozen=True)
class TimeChart:
    """What a time-series chart shows."""

    series: tuple[Series, ...]
    title: str = ""
    name: str = "chart"  # data-chart attribute, for tests and styles
    bands: tuple[Band, ...] = ()
    markers: tuple[Marker, ...] = ()
    width: int = 960
    height: int = 320
    y_format: Callable[[float], str] = format_size
    legend: bool = True


MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 78, 16, 28, 40
MARKER_COLOURS = {"reboot": "#c00000", "modules": "#8a6d00"}
FONT = "font-family:sans-serif;font-size:11px"


def time_chart(chart: TimeChart) -> str:
    """Return the SVG of a time-series chart: axes, ticks, bands, markers and the lines."""
    points = [p for s in chart.series for seg in s.segments for p in seg]
    times = [p[0] for p in points] + [b.start for b in chart.bands] + [b.end for b in chart.bands]
    times += [m.at for m in chart.markers]
    legend_rows = math.ceil(len(chart.series) / 2) if chart.legend and chart.series else 0
    bottom = MARGIN_BOTTOM + 16 * legend_rows  # the legend adds height, the plot keeps its own
    w, h = chart.width, chart.height + 16 * legend_rows
    plot_w, plot_h = w - MARGIN_LEFT - MARGIN_RIGHT, h - MARGIN_TOP - bottom
    out = [
        f'<svg class="chart" data-chart="{escape(chart.name)}" '
        f'width="{w}" height="{h}" viewBox="0 0 {w} {h}" style="{FONT}">',
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>',
    ]
    if chart.title:
        out.append(
            f'<text x="{MARGIN_LEFT}" y="18" font-weight="bold">{escape(chart.title)}</text>'
        )
    if not points:
        out.append(f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(out)
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 1.0)
    values = [p[1] for p in points]
    y_lo, y_hi, y_step = nice_range(min(0.0, min(values)), max(values), binary=True)

    def x_of(t: datetime) -> float:
        return MARGIN_LEFT + (t - t0).total_seconds() / span * plot_w

    def y_of(v: float) -> float:
        return MARGIN_TOP + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h

    for band in chart.bands:
        x0, x1 = x_of(band.start), x_of(band.end)
        out.append(
            f'<rect class="band {escape(band.kind)}" x="{x0:.1f}" y="{MARGIN_TOP}" '
            f'width="{max(x1 - x0, 2):.1f}" height="{plot_h}" fill="#bbbbbb" fill-opacity="0.45">'
            f"<title>{escape(band.label)}</title></rect>"
        )
    y = y_lo
    while y <= y_hi + y_step / 2:
        yy = y_of(y)
        out.append(
            f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" '
            'stroke="#e4e4e4"/>'
        )
        out.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">'
            f"{escape(chart.y_format(y))}</text>"
        )
        y += y_step
    for at, text in time_ticks(t0, t1):
        xx = x_of(at)
        out.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{MARGIN_TOP + plot_h}" '
            f'y2="{MARGIN_TOP + plot_h + 4}" stroke="#444"/>'
        )
        out.append(
            f'<text x="{xx:.1f}" y="{MARGIN_TOP + plot_h + 16}" text-anchor="middle">{text}</text>'
        )
    out.append(
        f'<path d="M{MARGIN_LEFT},{MARGIN_TOP}V{MARGIN_TOP + plot_h}H{MARGIN_LEFT + plot_w}" '
        'fill="none" stroke="#444"/>'
    )
    for marker in chart.markers:
        xx = x_of(marker.at)
        colour = MARKER_COLOURS.get(marker.kind, "#444")
        out.append(
            f'<line class="marker {escape(marker.kind)}" x1="{xx:.1f}" x2="{xx:.1f}" '
            f'y1="{MARGIN_TOP}" y2="{MARGIN_TOP + plot_h}" stroke="{colour}" stroke-width="1.5" '
            f'stroke-dasharray="5,3"><title>{escape(marker.label)}</title></line>'
        )
        if marker.kind == "reboot":
            out.append(
                f'<text x="{xx + 3:.1f}" y="{MARGIN_TOP + 10}" fill="{colour}">reboot</text>'
            )
    for i, s in enumerate(chart.series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<g class="series" data-series="{escape(s.label)}" stroke="{colour}">')
        out.append(f"<title>{escape(s.label)}</title>")
        for seg in s.segments:
            coords = " ".join(f"{x_of(t):.1f},{y_of(v):.1f}" for t, v in seg)
            if len(seg) == 1:
                (t, v) = seg[0]
                out.append(f'<circle cx="{x_of(t):.1f}" cy="{y_of(v):.1f}" r="2" fill="{colour}"/>')
            else:
                out.append(
                    f'<polyline points="{coords}" fill="none" stroke-width="1.5" '
                    'stroke-linejoin="round"/>'
                )
        out.append("</g>")
        if chart.legend:
            lx = MARGIN_LEFT + (i % 2) * plot_w / 2
            ly = h - bottom + MARGIN_BOTTOM + 4 + 16 * (i // 2)
            out.append(
                f'<rect x="{lx:.1f}" y="{ly - 8}" width="14" height="4" fill="{colour}"/>'
                f'<text x="{lx + 18:.1f}" y="{ly}">{escape(_clip(s.label, 70))}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def standalone(svg: str) -> str:
    """Return an inline ``<svg>`` as a file of its own: XML declaration and namespace added
    (inline SVG in HTML needs neither, and the report keeps no URL in its text)."""
    namespace = "http://www.w3.org/2000/svg"
    body = svg.replace("<svg ", f'<svg xmlns="{namespace}" ', 1)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def nice_range(lo: float, hi: float, *, binary: bool, ticks: int = 5) -> tuple[float, float, float]:
    """Return a round (low, high, step) that covers [lo, hi] in about ``ticks`` steps.

    With ``binary`` the steps are 1, 2 or 5 times a power of 1024 times a power of ten, so
    that size labels read ``200.0 MiB`` rather than ``190.7 MiB``.
    """
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / ticks
    unit = 1.0
    if binary:
        while raw / unit >= 1024:
            unit *= 1024
    scaled = raw / unit
    power = 10 ** math.floor(math.log10(scaled)) if scaled > 0 else 1
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= scaled) * unit
    if binary and unit == 1 and step < 1:
        step = 1
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


TIME_STEPS = (
    60, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
    7 * 86400,
)  # fmt: skip


def time_ticks(t0: datetime, t1: datetime, ticks: int = 8) -> list[tuple[datetime, str]]:
    """Return round times between t0 and t1 (UTC), about ``ticks`` of them, with labels."""
    span = (t1 - t0).total_seconds()
    step = next((s for s in TIME_STEPS if span / s <= ticks), TIME_STEPS[-1])
    start = t0.astimezone(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = epoch + timedelta(seconds=math.ceil((start - epoch).total_seconds() / step) * step)
    out = []
    at = first
    while at <= t1:
        daily = step >= 86400 or (at.hour == 0 and at.minute == 0)
        out.append((at, at.strftime("%m-%d" if daily else "%H:%M")))
        at += timedelta(seconds=step)
    return out


def thin(points: Sequence[Point], limit: int) -> tuple[Point, ...]:
    """Return at most about ``limit`` points keeping each bucket's minimum and maximum, so a
    long series keeps its spikes when drawn on a few hundred pixels."""
    if len(points) <= limit:
        return tuple(points)
    buckets = max(1, limit // 2)
    out: list[Point] = []
    for b in range(buckets):
        part = points[b * len(points) // buckets : (b + 1) * len(points) // buckets]
        if not part:
            continue
        low = min(part, key=lambda p: p[1])
        high = max(part, key=lambda p: p[1])
        out.extend(sorted({low, high}))
    return tuple(out)


# -- treemap -----------------------------------------------------------------------------------


@dataclass
class Node:
    """A treemap node: a directory, a file or a function; bytes now and their change."""

    name: str
    path: str
    bytes: int = 0
    delta: int = 0
    children: list[Node] = field(default_factory=list)


@dataclass(frozen=True)
class Rect:
    """A laid-out rectangle."""

    x: float
    y: float
    w: float
    h: float


def squarify(sizes: Sequence[float], box: Rect) -> list[Rect]:
    """Return one rectangle per size (sizes descending, positive) tiling ``box``, areas in
    proportion to the sizes, as square as the squarified algorithm (Bruls et al.) gets them."""
    total = sum(sizes)
    if not sizes or total <= 0:
        return []
    scale = box.w * box.h / total
    areas = [s * scale for s in sizes]
    out: list[Rect] = []
    x, y, w, h = box.x, box.y, box.w, box.h
    i = 0
    while i < len(areas):
        side = min(w, h)
        row = [areas[i]]
        i += 1
        while i < len(areas) and _worst(row + [areas[i]], side) <= _worst(row, side):
            row.append(areas[i])
            i += 1
        thick = sum(row) / side if side > 0 else 0
        along = 0.0
        for a in row:
            length = a / thick if thick > 0 else 0
            if w >= h:  # lay the row down the left side
                out.append(Rect(x, y + along, thick, length))
            else:  # across the top
                out.append(Rect(x + along, y, length, thick))
            along += length
        if w >= h:
            x, w = x + thick, w - thick
        else:
            y, h = y + thick, h - thick
    return out


def _worst(row: list[float], side: float) -> float:
    s = sum(row)
    if s <= 0 or side <= 0:
        return math.inf
    return max(max(side * side * r / (s * s), s * s / (side * side * r)) for r in row)


def growth_colour(node: Node) -> str:
    """Return a node's fill: red as it grew, blue as it shrank, grey when flat; full colour at
    a change of a quarter of its larger size."""
    base = node.bytes - node.delta
    ratio = node.delta / max(node.bytes, base, 1)
    t = min(abs(ratio) / 0.25, 1.0)
    grey, red, blue = (224, 224, 224), (214, 39, 40), (49, 104, 180)
    end = red if ratio > 0 else blue
    r, g, b = (round(c0 + (c1 - c0) * t) for c0, c1 in zip(grey, end, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def treemap(root: Node, width: int = 960, height: int = 540) -> str:
    """Return the SVG of a zoomable treemap: one ``<g class="level">`` per node with children,
    holding its children laid out over the whole area; only the root's level is shown. A
    script (see ``TREEMAP_SCRIPT``) shows another level when a cell is clicked."""
    out = [
        f'<svg class="chart treemap" data-chart="tree" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" style="{FONT}">'
    ]
    stack = [root]
    while stack:
        node = stack.pop()
        kids = [c for c in node.children if c.bytes > 0]
        if not kids:
            continue
        shown = "" if node is root else ' style="display:none"'
        out.append(
            f'<g class="level" data-node="{escape(node.path)}" '
            f'data-label="{escape(node.name)}"{shown}>'
        )
        rects = squarify([k.bytes for k in kids], Rect(0, 0, width, height))
        for kid, r in zip(kids, rects, strict=True):
            zoom = (
                f' data-zoom="{escape(kid.path)}"' if any(c.bytes > 0 for c in kid.children) else ""
            )
            sign = "+" if kid.delta > 0 else ""
            tip = f"{kid.path}\n{format_size(kid.bytes)} ({sign}{format_size(kid.delta)})"
            out.append(f'<g class="cell"{zoom}><title>{escape(tip)}</title>')
            out.append(
                f'<rect x="{r.x:.1f}" y="{r.y:.1f}" width="{r.w:.1f}" height="{r.h:.1f}" '
                f'fill="{growth_colour(kid)}" stroke="#ffffff" stroke-width="2"/>'
            )
            out += _inner(kid, r)
            if r.w > 40 and r.h > 14:
                label = _clip(kid.name, int(r.w / 6.5))
                out.append(f'<text x="{r.x + 3:.1f}" y="{r.y + 12:.1f}">{escape(label)}</text>')
                if r.h > 28:
                    out.append(
                        f'<text x="{r.x + 3:.1f}" y="{r.y + 25:.1f}" fill="#333">'
                        f"{format_size(kid.bytes)}</text>"
                    )
            out.append("</g>")
        out.append("</g>")
        stack.extend(reversed(kids))
    out.append("</svg>")
    return "\n".join(out)


def _inner(node: Node, r: Rect) -> list[str]:
    """Return the cells of a node's children drawn inside its own cell, below its label, so
    that each level shows the next one's shape (they zoom with their parent's cell)."""
    kids = [c for c in node.children if c.bytes > 0]
    inner = Rect(r.x + 2, r.y + 30, r.w - 4, r.h - 32)
    if len(kids) < 2 or inner.w < 20 or inner.h < 20:
        return []
    out = []
    for kid, k in zip(kids, squarify([c.bytes for c in kids], inner), strict=True):
        if k.w * k.h < 4:
            continue
        out.append(
            f'<rect class="inner" x="{k.x:.1f}" y="{k.y:.1f}" width="{k.w:.1f}" '
            f'height="{k.h:.1f}" fill="{growth_colour(kid)}" stroke="#ffffff" stroke-width="0.5">'
            f"<title>{escape(kid.path)}: {format_size(kid.bytes)}</title></rect>"
        )
    return out


TREEMAP_SCRIPT = """
(function () {
  var svg = document.querySelector('svg.treemap');
  var crumbs = document.getElementById('tree-path');
  if (!svg || !crumbs) return;
  var levels = {};
  svg.querySelectorAll('g.level').forEach(function (g) { levels[g.dataset.node] = g; });
  var trail = [''];
  var start = decodeURIComponent((location.hash.match(/^#tree=(.*)$/) || [])[1] || '');
  start.split('/').forEach(function (part, i, parts) {
    var path = parts.slice(0, i + 1).join('/');
    if (part && levels[path]) trail.push(path);
  });
  function show() {
    var current = trail[trail.length - 1];
    Object.keys(levels).forEach(function (k) {
      levels[k].style.display = k === current ? '' : 'none';
    });
    crumbs.textContent = '';
    trail.forEach(function (path, i) {
      var a = document.createElement('button');
      a.textContent = i === 0 ? 'all' : levels[path].dataset.label;
      a.onclick = function () { trail = trail.slice(0, i + 1); show(); };
      if (i) crumbs.appendChild(document.createTextNode(' / '));
      crumbs.appendChild(a);
    });
  }
  svg.addEventListener('click', function (e) {
    var cell = e.target.closest('g.cell');
    if (cell && cell.dataset.zoom && levels[cell.dataset.zoom]) {
      trail.push(cell.dataset.zoom); show();
    }
  });
  document.addEventListener('keydown', function (e) {
    if ((e.key === 'Backspace' || e.key === 'Escape') && trail.length > 1) {
      trail.pop(); show();
    }
  });
  show();
})();
"""
"""Zoom in on a click, out with the path buttons, Backspace or Escape."""


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(n - 1, 1)] + "…"
