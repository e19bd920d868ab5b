"""The loop command: what a command leaks per run, for test suites and CI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from allocsnap.cli.core import DEFAULT_STORE, app
from allocsnap.cli.options import (
    By,
    Group,
    Host,
    Labels,
    OutputFormat,
    Store,
    filter_options,
    parse_labels,
    store_group,
)
from allocsnap.present import Format

if TYPE_CHECKING:
    from collections.abc import Callable

    from allocsnap.looping import LoopPlan, LoopProgress
    from allocsnap.model import Filter


@app.command(context_settings={"allow_interspersed_args": False})
@filter_options()
def loop(
    command: Annotated[
        list[str], typer.Argument(help="The command to run and its arguments, after '--'.")
    ],
    runs: Annotated[
        int, typer.Option("-n", "--runs", min=1, help="Counted runs, each followed by a snapshot.")
    ] = 20,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Uncounted runs first (caches fill there).")
    ] = 2,
    settle: Annotated[
        str, typer.Option("--settle", help="Pause after each run before its snapshot (1s, 0).")
    ] = "1s",
    drop_caches: Annotated[
        bool,
        typer.Option(
            "--drop-caches",
            help="Write 3 to /proc/sys/vm/drop_caches before each snapshot (after a sync).",
        ),
    ] = False,
    by: By = "tag",
    top: Annotated[int, typer.Option("--top", min=0, help="Rows to show; 0 shows all.")] = 20,
    fmt: OutputFormat = Format.table,
    min_per_run: Annotated[
        str, typer.Option("--min-per-run", help="Floor: bytes per run (Theil–Sen) of a leak.")
    ] = "4K",
    confidence: Annotated[
        float,
        typer.Option(
            "--confidence", help="Mann–Kendall confidence that it grows, above 0 and below 1."
        ),
    ] = 0.99,
    fail_on_leak: Annotated[
        bool, typer.Option("--fail-on-leak", help="Exit with code 5 when something leaks per run.")
    ] = False,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="Also write a JUnit XML report there (one test case)."),
    ] = None,
    source_spec: Annotated[
        str, typer.Option("--source", help="auto (ioctl on 7.3+, else text), ioctl or procfs.")
    ] = "auto",
    store_dir: Store = DEFAULT_STORE,
    group: Group = None,
    host: Host = None,
    label: Labels = None,
    *,
    keep: Filter,
) -> None:
    """Run a command many times, a snapshot after each run, and show what it leaks per run.

    Each call site is judged on the run axis: bytes per run (Theil–Sen, with its 95% interval),
    Mann–Kendall confidence, the share of runs that grew, and shape tests that keep out a cache
    that filled and memory given back. The snapshots stay in the store, named
    loop-ID-run-K and labelled loop=ID run=K. Exit 5 with --fail-on-leak when something leaks;
    1 when the command fails (the runs before it are judged).

    Example: sudo allocsnap loop -n 20 -- ./run-one-test.sh

    Example: sudo allocsnap loop --fail-on-leak --junit leaks.xml --module ext4 -- make check
    """
    from allocsnap import analysis, looping
    from allocsnap.errors import CommandFailed, ExitCode, UsageError
    from allocsnap.present import junit as junit_report
    from allocsnap.present import loop_tables
    from allocsnap.present.render import render
    from allocsnap.store.remote import local
    from allocsnap.units import parse_duration, parse_size

    if not 0 < confidence < 1:
        raise UsageError(f"--confidence must be above 0 and below 1, not {confidence}")
    grouping = analysis.Grouping.parse(by)
    settings = analysis.LoopSettings(min_per_run=parse_size(min_per_run), min_confidence=confidence)
    plan = looping.LoopPlan(
        command=tuple(command),
        runs=runs,
        warmup=warmup,
        settle_s=parse_duration(settle).total_seconds() if settle not in ("0", "") else 0.0,
        drop_caches=drop_caches,
        source=source_spec,
        keep=keep,
        host=host,
        labels=parse_labels(label),
    )
    root = local(store_dir, "take snapshots")
    store_group(root, group)
    looping.check_kernel(plan)  # no profiling kernel, no root: refused before the command runs
    done = looping.run_loop(root, plan, on_progress=_progress(plan))
    if not done.snapshot_s:  # stopped before the baseline snapshot: nothing to judge
        if junit is not None:
            junit_report.write_junit(junit, junit_report.junit_xml(done, None))
        raise CommandFailed(junit_report.stopped_text(done))
    judged = analysis.loop(root, done.loop, keep=keep, grouping=grouping, settings=settings,
                           top_n=top)  # fmt: skip
    render(loop_tables.loop_report(done, judged), fmt, sys.stdout)
    if junit is not None:
        junit_report.write_junit(junit, junit_report.junit_xml(done, judged))
        typer.echo(f"wrote {junit}", err=True)
    if done.stopped == "failed":
        raise CommandFailed(f"{junit_report.stopped_text(done)}; the runs before it were judged")
    if fail_on_leak and judged.found:
        raise typer.Exit(ExitCode.LEAK_FOUND)


def _progress(plan: LoopPlan) -> Callable[[LoopProgress], None]:
    """Return a callback that writes the loop's progress on stderr, one line per event."""

    def show(p: LoopProgress) -> None:
        if p.event == "start":
            typer.echo(
                f"loop {p.loop}: {plan.warmup} warm-up and {plan.runs} counted runs, snapshots "
                f"in the store as loop-{p.loop}-run-K",
                err=True,
            )
            if plan.drop_caches:
                typer.echo(
                    "dropping the page cache, dentries and inodes before each snapshot "
                    "(sync; echo 3 > /proc/sys/vm/drop_caches)",
                    err=True,
                )
        elif p.event in ("warmup", "run"):
            which = f"warm-up run {p.run}/{plan.warmup}" if p.warmup else f"run {p.run}/{plan.runs}"
            typer.echo(f"{which}: exit {p.exit_code}, {p.run_s or 0:.2f} s", err=True)
        elif p.event == "snapshot":
            what = "baseline snapshot" if p.run == 0 else f"snapshot {p.run}"
            typer.echo(f"{what}: {p.rows:,} rows, {p.snapshot_s or 0:.3f} s", err=True)
        elif p.event == "interrupted":
            typer.echo(f"interrupted: judging the {p.run} runs done", err=True)

    return show
