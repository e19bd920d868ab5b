"""``allocsnap report --format text|markdown``: the report for a mail or an issue.

Plain text, aligned, in lines under 80 columns; Markdown has headings, its tables in code
blocks and its other lines as list items, so that a renderer keeps them apart.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from allocsnap import analysis
from allocsnap.model import SnapshotMeta
from allocsnap.present import window_tables
from allocsnap.present.page_data import (
    ReportData,
    boot_of,
    signed,
    totals_chart,
)
from allocsnap.present.render import clip, plural
from allocsnap.units import format_size

WIDTH = 79
"""Lines stay shorter than 80 columns: a mail or an issue shows them whole."""


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
        f"{e.snapshots:,} snapshots in {plural(e.counting, 'epoch')}"
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
        name = f"{epoch.host} {(boot_of(epoch) or '')[:8]}" if epoch else ""
        lines.append(
            f"{format_size(values[0]):>10} {format_size(values[-1]):>10} "
            f"{format_size(min(values)):>10} {format_size(max(values)):>10}  {name}"
        )
        lines.append(f"  {window_tables.sparkline([round(v) for v in values], 60)}")
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
            f"{signed(r['bytes_per_hour']):>11} {signed(r['growth_bytes']):>11} "
            f"{format_size(r['last_bytes']):>10}  {window_tables.sparkline(ints, 40)}"
        )
        lines += _key_lines(f"{r['key']}  [{r['epoch']}]")
    if not data.leaks.rows.num_rows:
        lines = ["no call site grows persistently in this window"]
    block(lines)

    heading("Top movers")
    lines = [f"{'Δbytes':>11} {'Δ/hour':>11} {'first':>10} {'last':>10}  status"]
    for r in data.top.rows.to_pylist():
        lines.append(
            f"{signed(r['delta_bytes']):>11} {signed(r['bytes_per_hour']):>11} "
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
        f"({signed(d.after_totals.bytes - d.before_totals.bytes)})"
    )
    for w in d.warnings:
        para(f"warning: {w}")
    out.append("")
    lines = [f"{'Δbytes':>11} {'before':>10} {'after':>10} {'Δcalls':>10}"]
    for r in d.rows.to_pylist():
        lines.append(
            f"{signed(r['delta_bytes']):>11} {format_size(r['bytes_before']):>10} "
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
            f"{format_size(node.bytes):>10} {signed(node.delta):>11} "
            f"{100 * node.bytes / total:>5.1f}%  {clip(node.path, WIDTH - 32)}"
        )
    block(lines)
    return "\n".join(line.rstrip() for line in out) + "\n"


def _describe(meta: SnapshotMeta) -> str:
    """Return ``tables.describe`` with the folders of an imported dump's path left out."""
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
