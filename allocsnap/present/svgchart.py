"""Charts as SVG text, with no charting library: time series (the treemap is in ``treemap``).

Pure functions from numbers to markup, no I/O. The same writer draws the HTML report's charts
and ``allocsnap history --plot out.svg``. The SVG is self-contained (no fonts, images or links
to fetch), so it renders offline, in any browser and in a mail client that shows SVG. Every
drawn thing carries a class (``series``, ``marker reboot``, ``band profiling-off``, ``cell``)
and a ``<title>`` that a browser shows on hover, so tests can count what was drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from allocsnap.present.render import clip
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
                f'<text x="{lx + 18:.1f}" y="{ly}">{escape(clip(s.label, 70))}</text>'
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
