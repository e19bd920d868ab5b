"""Commands across kernels: compare-kernels."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from allocsnap.cli import line_options
from allocsnap.cli.core import DEFAULT_STORE, app
from allocsnap.cli.options import By, Hosts, OutputFormat, SkipDamaged, Store, Top
from allocsnap.present import Format


@app.command("compare-kernels")
def compare_kernels(
    kernel_a: Annotated[
        str | None, typer.Argument(help="Earlier kernel release (uname -r), as ls shows it.")
    ] = None,
    kernel_b: Annotated[str | None, typer.Argument(help="Later kernel release.")] = None,
    by: By = "tag",
    top: Top = 20,
    alpha: Annotated[
        float,
        typer.Option(
            "--alpha",
            min=0.0,
            max=1.0,
            help="Largest Benjamini–Hochberg q-value that gets a verdict (more or less).",
        ),
    ] = 0.05,
    rename: line_options.Rename = None,
    source_map: line_options.SourceMap = None,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression", help="Exit with code 5 when a group has more bytes on B."
        ),
    ] = False,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    skip_damaged: SkipDamaged = False,
    host: Hosts = None,
) -> None:
    """Compare two kernels over a fleet: per call site, the bytes on the hosts of each.

    Each host's newest snapshot on each kernel counts; call sites whose lines moved are paired
    as diff pairs them. A Mann–Whitney U test over hosts per call site (or --by function,
    module, ...) says whether B's hosts differ from A's beyond host-to-host variation;
    q-values adjust for the many sites tested. Without KERNEL_A and KERNEL_B the store must
    hold exactly two kernels. See docs/kernels.md.

    Example: allocsnap compare-kernels --store fleet --top 10

    Example: allocsnap compare-kernels 6.12.117 7.3.4 --by function --fail-on-regression
    """
    from allocsnap import analysis
    from allocsnap.errors import ExitCode
    from allocsnap.present import kernel_tables
    from allocsnap.present.render import render

    grouping = analysis.Grouping.parse(by)
    result = analysis.compare_kernels(
        store_dir,
        kernel_a,
        kernel_b,
        grouping=grouping,
        lines=analysis.LineOptions.read(None, rename, source_map),
        host=host,
        alpha=alpha,
        top_n=top,
    )
    render(kernel_tables.compare_kernels_report(result, grouping), fmt, sys.stdout)
    if fail_on_regression and result.flagged("more"):
        raise typer.Exit(ExitCode.LEAK_FOUND)
