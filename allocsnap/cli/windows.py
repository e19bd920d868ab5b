"""Commands over a window of a store: leaks, growth, top, history, outliers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from allocsnap.cli import line_options
from allocsnap.cli.core import DEFAULT_STORE, app
from allocsnap.cli.options import (
    By,
    Hosts,
    OutputFormat,
    Since,
    SkipDamaged,
    Store,
    Top,
    Until,
    filter_options,
)
from allocsnap.present import Format

if TYPE_CHECKING:
    from allocsnap import analysis
    from allocsnap.model import Filter
    from allocsnap.store.remote import Location

# -- analyses over a store window --------------------------------------------------------------

WindowBy = Annotated[
    str,
    typer.Option(
        "--by", help="Group by tag, function, file, module, dir[:N] or host (sums first)."
    ),
]
MaxPoints = Annotated[
    int,
    typer.Option(
        "--max-points", help="Snapshots read per epoch (evenly spaced in time); 0: all of them."
    ),
]


def points(value: int, option: str = "--max-points") -> int | None:
    """Return a --max-points value for the library: None (all) for 0; refuse 1 and negatives."""
    from allocsnap.errors import UsageError

    if value == 0:
        return None
    if value < 2:
        raise UsageError(f"{option} must be 0 (every snapshot) or at least 2, not {value}")
    return value


@app.command()
@filter_options()
def leaks(
    since: Since = None,
    until: Until = None,
    host: Hosts = None,
    by: WindowBy = "tag",
    top: Top = 20,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    skip_damaged: SkipDamaged = False,
    min_rate: Annotated[
        str, typer.Option("--min-rate", help="Floor: growth per hour (Theil–Sen slope).")
    ] = "64K",
    min_growth: Annotated[
        str,
        typer.Option(
            "--min-growth",
            help="Floor: total growth over the series; lower in a window shorter than "
            "min-growth ÷ min-rate (16 h by default): min-rate × its hours.",
        ),
    ] = "1M",
    confidence: Annotated[
        float,
        typer.Option(
            "--confidence", help="Mann–Kendall confidence that it increases, above 0 and below 1."
        ),
    ] = 0.99,
    max_points: MaxPoints = 120,
    fail_on_leak: Annotated[
        bool, typer.Option("--fail-on-leak", help="Exit with code 5 when a leak is found.")
    ] = False,
    fleet: Annotated[
        bool,
        typer.Option("--fleet", help="One row per call site (or group): the hosts it leaks on."),
    ] = False,
    across_kernels: line_options.AcrossKernels = False,
    *,
    keep: Filter,
) -> None:
    """Find call sites that grow persistently inside each epoch of a store window.

    A robust trend test (Mann–Kendall with a Theil–Sen slope) and shape tests keep noise,
    one-off steps, sawtooth and grew-then-freed out; see docs/analyses.md.

    Example: allocsnap leaks --since 6h --by function --fail-on-leak

    Example: allocsnap leaks --fleet --host 'web*'   (per call site: the hosts it leaks on)

    Example: allocsnap leaks --fleet --across-kernels   (one name for a site on 6.12 and 7.3)
    """
    from allocsnap import analysis
    from allocsnap.errors import ExitCode, UsageError
    from allocsnap.present import window_tables
    from allocsnap.present.render import render
    from allocsnap.units import parse_size

    if not 0 < confidence < 1:
        raise UsageError(
            f"--confidence must be above 0 and below 1 (0.99 is 99%), not {confidence}"
        )
    grouping = analysis.Grouping.parse(by, window=True)
    settings = analysis.LeakSettings(
        max_points=points(max_points),
        min_growth=parse_size(min_growth),
        min_rate=parse_size(min_rate),
        min_confidence=confidence,
    )
    window = analysis.Window(since, until, tuple(host) if host else None)
    store = _across(store_dir, host) if across_kernels else store_dir
    result = analysis.leaks(
        store, window, keep=keep, grouping=grouping, settings=settings, top_n=top, fleet=fleet
    )
    _warn_if_data(result.epochs.warnings, fmt)
    render(window_tables.leaks_report(result, grouping), fmt, sys.stdout)
    if fail_on_leak and result.found:
        raise typer.Exit(ExitCode.LEAK_FOUND)


@app.command()
@filter_options()
def growth(
    since: Since = None,
    until: Until = None,
    host: Hosts = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="Where window B starts (time or duration); default: middle."),
    ] = None,
    by: WindowBy = "tag",
    top: Top = 20,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    skip_damaged: SkipDamaged = False,
    max_points: MaxPoints = 200,
    across_kernels: line_options.AcrossKernels = False,
    *,
    keep: Filter,
) -> None:
    """Compare the median of a window's later part with its earlier part, as growth per hour.

    Example: allocsnap growth --since 1d --split 6h --by module

    Example: allocsnap growth --since 30d --across-kernels   (one row per site over an upgrade)
    """
    from allocsnap import analysis
    from allocsnap.present import window_tables
    from allocsnap.present.render import render

    grouping = analysis.Grouping.parse(by, window=True)
    window = analysis.Window(since, until, tuple(host) if host else None)
    store = _across(store_dir, host) if across_kernels else store_dir
    result = analysis.growth(
        store,
        window,
        split=split,
        keep=keep,
        grouping=grouping,
        max_points=points(max_points),
        top_n=top,
    )
    _warn_if_data(result.epochs.warnings, fmt)
    render(window_tables.growth_report(result, grouping), fmt, sys.stdout)


@app.command()
@filter_options()
def top(
    since: Since = None,
    until: Until = None,
    host: Hosts = None,
    by: WindowBy = "tag",
    top: Top = 20,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    skip_damaged: SkipDamaged = False,
    *,
    keep: Filter,
    max_points: Annotated[
        int,
        typer.Option(
            "--max-points",
            help="Snapshots read per epoch, evenly spaced, first and last included; 0: all.",
        ),
    ] = 120,
) -> None:
    """Show the largest movers of a window, up and down: first against last value per epoch.

    Example: allocsnap top --since 2h --top 10
    """
    from allocsnap import analysis
    from allocsnap.present import window_tables
    from allocsnap.present.render import render

    grouping = analysis.Grouping.parse(by, window=True)
    window = analysis.Window(since, until, tuple(host) if host else None)
    result = analysis.top(
        store_dir,
        window,
        keep=keep,
        grouping=grouping,
        top_n=top,
        max_points=points(max_points),
    )
    _warn_if_data(result.epochs.warnings, fmt)
    render(window_tables.top_report(result, grouping), fmt, sys.stdout)


@app.command()
@filter_options(sizes=False)
def history(
    pattern: Annotated[
        str, typer.Argument(help="Part of a call site or group name, or a glob over all of it.")
    ],
    since: Since = None,
    until: Until = None,
    host: Hosts = None,
    by: WindowBy = "tag",
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    skip_damaged: SkipDamaged = False,
    series: Annotated[
        int | None,
        typer.Option(
            "--points",
            help="Snapshots per epoch; 0: all; default 200 in a table, all in CSV/JSON.",
        ),
    ] = None,
    *,
    keep: Filter,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also draw the series into this .svg or .png file."),
    ] = None,
    across_kernels: line_options.AcrossKernels = False,
) -> None:
    """Show the series of the call sites (or groups) matching PATTERN, with a sparkline.

    Example: allocsnap history ice_alloc_mapped_page --since 7d

    Example: allocsnap history ext4 --by module --format csv

    Example: allocsnap history ext4 --by module --plot ext4.svg

    Example: allocsnap history shmem_alloc_folio --across-kernels   (one series over an upgrade)
    """
    from allocsnap import analysis
    from allocsnap.present import window_tables
    from allocsnap.present.render import render

    grouping = analysis.Grouping.parse(by, window=True)
    raw = fmt in (Format.csv, Format.json)
    window = analysis.Window(since, until, tuple(host) if host else None)
    per_epoch = points(series, "--points") if series is not None else (None if raw else 200)
    store = _across(store_dir, host) if across_kernels else store_dir
    result = analysis.history(
        store, pattern, window, keep=keep, grouping=grouping, max_points=per_epoch
    )
    _warn_if_data(result.epochs.warnings, fmt)
    render(window_tables.history_report(result, grouping, points=raw), fmt, sys.stdout)
    if plot is not None:
        from allocsnap.present import plot as plotting

        plotting.write(result, plot, title=f"allocsnap history {pattern}")
        typer.echo(f"wrote {plot}", err=True)


@app.command()
@filter_options(sizes=False)
def outliers(
    pattern: Annotated[
        str | None,
        typer.Argument(help="Part of a call site or group name, or a glob over all of it."),
    ] = None,
    since: Since = None,
    until: Until = None,
    host: Hosts = None,
    by: By = "tag",
    top: Top = 20,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    skip_damaged: SkipDamaged = False,
    min_score: Annotated[
        float,
        typer.Option(
            "--min-score", min=0.0, help="Robust score (MADs from the median) of an outlier."
        ),
    ] = 3.5,
    min_gap: Annotated[
        str, typer.Option("--min-gap", help="... and its bytes at least this far from the median.")
    ] = "1M",
    min_rate: Annotated[
        str,
        typer.Option("--min-rate", help="... or its growth per hour this far from the median."),
    ] = "64K",
    min_hosts: Annotated[
        int, typer.Option("--min-hosts", min=2, help="Fewest hosts with the group to score it.")
    ] = 3,
    every_host: Annotated[
        bool, typer.Option("--all", help="Show every scored host, not only the outliers.")
    ] = False,
    *,
    keep: Filter,
) -> None:
    """Find the hosts whose bytes or growth for a call site stand out from the fleet's median.

    Per host, its newest epoch in the window: bytes at the last snapshot and growth per hour,
    scored in median absolute deviations from the median of the hosts; see docs/analyses.md.

    Example: allocsnap outliers ice_alloc_mapped_page --since 1d

    Example: allocsnap outliers --by module --host 'web*' --all
    """
    from allocsnap import analysis
    from allocsnap.present import window_tables
    from allocsnap.present.render import render
    from allocsnap.units import parse_size

    grouping = analysis.Grouping.parse(by)
    settings = analysis.OutlierSettings(
        min_score=min_score,
        min_gap=parse_size(min_gap),
        min_rate=parse_size(min_rate),
        min_hosts=min_hosts,
    )
    window = analysis.Window(since, until, tuple(host) if host else None)
    result = analysis.outliers(
        store_dir,
        pattern,
        window,
        keep=keep,
        grouping=grouping,
        settings=settings,
        every_host=every_host,
        top_n=top,
    )
    _warn_if_data(result.epochs.warnings, fmt)
    render(window_tables.outliers_report(result, grouping), fmt, sys.stdout)


def _warn_if_data(warnings: tuple[str, ...], fmt: Format) -> None:
    """Repeat a window's warnings on stderr when stdout is data (CSV, JSON) without a header."""
    if fmt in (Format.csv, Format.json):
        for warning in warnings:
            typer.echo(f"warning: {warning}", err=True)


def _across(store_dir: Location, host: list[str] | None) -> analysis.Session:
    """Return a session that follows call sites across kernels, saying on stderr what it
    paired (the process's end closes it)."""
    from allocsnap import analysis

    across = analysis.across_kernels(store_dir, host)
    for note in across.notes():
        typer.echo(note, err=True)
    return across.session
