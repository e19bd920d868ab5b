"""A squarified treemap as SVG text (directory -> file -> function, sized by bytes, coloured by
growth), with the small script that zooms it; pure functions, no I/O, like ``svgchart``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from allocsnap.present.render import clip
from allocsnap.present.svgchart import FONT
from allocsnap.units import format_size


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
                label = clip(kid.name, int(r.w / 6.5))
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
