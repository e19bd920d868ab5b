"""The report command: a store window's overview as one offline HTML page, Markdown or text."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from allocsnap.cli.core import DEFAULT_STORE, app
from allocsnap.cli.options import Hosts, Since, SkipDamaged, Store, Until


class ReportFormat(StrEnum):
    """What ``allocsnap report`` writes."""

    html = "html"
    markdown = "markdown"
    text = "text"


@app.command()
def report(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
    fmt: Annotated[
        ReportFormat,
        typer.Option(
            "--format", "-f", help="html (one offline page), or markdown or text (< 80 columns)."
        ),
    ] = ReportFormat.html,
    since: Since = None,
    until: Until = None,
    host: Hosts = None,
    top: Annotated[
        int, typer.Option("--top", "-n", min=0, help="Rows per table; 0 shows all.")
    ] = 10,
    store_dir: Store = DEFAULT_STORE,
    skip_damaged: SkipDamaged = False,
) -> None:
    """Write an overview of a store window: totals over time with reboots and profiling-off
    stretches marked, leak candidates with their series, top movers, the diff between the
    window's ends, and a zoomable directory → file → function map of the live bytes.

    The HTML page is one self-contained file: it fetches nothing when opened.

    Example: allocsnap report --since 6h -o report.html

    Example: allocsnap report --since 1d --format markdown > issue.md
    """
    from allocsnap import analysis
    from allocsnap.present import page_data, page_html, page_text

    data = page_data.gather(
        store_dir, analysis.Window(since, until, tuple(host) if host else None), top_n=top
    )
    if fmt is ReportFormat.html:
        page = page_html.html(data)
    else:
        page = page_text.text(data, markdown=fmt is ReportFormat.markdown)
    if output is None:
        sys.stdout.write(page)
        return
    output.write_text(page, encoding="utf-8")
    typer.echo(f"wrote {output} ({len(page.encode()):,} bytes)", err=True)
