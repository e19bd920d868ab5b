"""The ``allocsnap`` command line: a thin typer shell over the library.

Each command parses its options, calls one library function and renders the result to stdout;
messages for people go to stderr. Heavy imports (pyarrow, duckdb) happen inside the commands
so that ``allocsnap --help`` stays fast. Every ``AllocsnapError`` is reported at one point,
``_Group.invoke``, as one line on stderr with its exit code (docs/commands.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from allocsnap.errors import AllocsnapError
from allocsnap.render import Format

if TYPE_CHECKING:
    from allocsnap.model import Filter


class _Group(TyperGroup):
    """Report every AllocsnapError as one line on stderr and exit with its code."""

    def invoke(self, ctx: Any) -> Any:  # typer's bundled click Context
        try:
            return super().invoke(ctx)
        except AllocsnapError as e:
            typer.echo(f"Error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Record /proc/allocinfo snapshots as Parquet; diff them, find leaks and growth.\n\n"
    "Example: allocsnap snap --name before; (run a workload); allocsnap snap --name after; "
    "allocsnap diff before after",
)

DEFAULT_STORE = Path("allocsnap-data")


def main() -> None:
    """Run the command line: the ``allocsnap`` entry point, without pandas (see keep_pandas_out)."""
    from allocsnap import keep_pandas_out

    keep_pandas_out()
    app(prog_name="allocsnap")


Store = Annotated[
    Path,
    typer.Option(
        "--store", envvar="ALLOCSNAP_STORE", help="Snapshot store directory ($ALLOCSNAP_STORE)."
    ),
]
OutputFormat = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
Top = Annotated[int, typer.Option("--top", "-n", help="Rows to show; 0 shows all.")]
By = Annotated[
    str, typer.Option("--by", help="Group by tag, function, file, module or dir[:N] (sums first).")
]
Lenient = Annotated[
    bool,
    typer.Option("--lenient", help="Skip and count lines that are not allocinfo rows."),
]
ModuleGlob = Annotated[
    str | None,
    typer.Option("--module", help="Module name glob; 'built-in' for code outside modules."),
]
FunctionGlob = Annotated[str | None, typer.Option("--function", help="Function name glob.")]
FileGlob = Annotated[str | None, typer.Option("--file", help="Source file glob, e.g. 'fs/ext4/*'.")]
Line = Annotated[int | None, typer.Option("--line", help="Source line number.")]
MinSize = Annotated[
    str | None, typer.Option("--min-size", help="Keep rows with at least this many bytes (1M).")
]
MaxSize = Annotated[
    str | None, typer.Option("--max-size", help="Keep rows with at most this many bytes.")
]
Accurate = Annotated[
    bool | None,
    typer.Option(
        "--accurate/--inaccurate", help="Keep only accurate rows, or only 'accurate:no' ones."
    ),
]
Nonzero = Annotated[bool, typer.Option("--nonzero", help="Keep only rows with live bytes.")]
Labels = Annotated[list[str] | None, typer.Option("--label", help="Attach key=value (repeatable).")]
Host = Annotated[str | None, typer.Option("--host", help="Host name to record.")]


def _filter(
    module: str | None,
    function: str | None,
    file: str | None,
    line: int | None,
    min_size: str | None,
    max_size: str | None,
    accurate: bool | None,
    nonzero: bool,
) -> Filter:
    from allocsnap.model import Filter
    from allocsnap.units import parse_size

    return Filter(
        module=module,
        function=function,
        file=file,
        line=line,
        min_size=parse_size(min_size) if min_size is not None else None,
        max_size=parse_size(max_size) if max_size is not None else None,
        accurate=accurate,
        nonzero=nonzero,
    )


def _labels(labels: list[str] | None) -> dict[str, str]:
    from allocsnap.units import parse_label

    return dict(parse_label(text) for text in labels or [])


@app.command()
def snap(
    name: Annotated[str | None, typer.Option("--name", help="Name to find it by later.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write one snapshot file instead of the store."),
    ] = None,
    source_spec: Annotated[
        str,
        typer.Option(
            "--source",
            help="auto (the kernel: ioctl on 7.3+, else text), ioctl, procfs, a saved text dump, "
            "or '-'.",
        ),
    ] = "auto",
    store_dir: Store = DEFAULT_STORE,
    host: Host = None,
    label: Labels = None,
    lenient: Lenient = False,
    module: ModuleGlob = None,
    function: FunctionGlob = None,
    file: FileGlob = None,
    line: Line = None,
    min_size: MinSize = None,
    max_size: MaxSize = None,
    accurate: Accurate = None,
    nonzero: Nonzero = False,
) -> None:
    """Take one snapshot of /proc/allocinfo now, into the store or one Parquet file.

    Prints the snapshot id (or the file written) on stdout.

    Example: sudo allocsnap snap --name before   (then: allocsnap diff before after)

    Example: sudo allocsnap snap -o before.parquet --module ext4
    """
    from allocsnap import capture, store
    from allocsnap.units import format_size

    keep = _filter(module, function, file, line, min_size, max_size, accurate, nonzero)
    snapshot = capture.snapshot(
        capture.read(source_spec, keep),
        keep=keep,
        name=name,
        host=host,
        labels=_labels(label),
        lenient=lenient,
    )
    meta = snapshot.meta
    if output is not None:
        store.write_snapshot_file(output, snapshot)
        where = str(output)
    else:
        store.write(store_dir, snapshot)
        where = str(store_dir)
    for note in meta.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"snapshot {meta.snapshot_id}: {meta.rows:,} rows, {format_size(meta.total_bytes)} "
        f"-> {where}",
        err=True,
    )
    typer.echo(where if output is not None else meta.snapshot_id)


@app.command("import")
def import_(
    dumps: Annotated[list[str], typer.Argument(help="Saved text dumps, or '-' for stdin.")],
    store_dir: Store = DEFAULT_STORE,
    at: Annotated[
        str | None,
        typer.Option("--at", help="When the dump was taken (ISO 8601, UTC); default: its mtime."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Host the dump came from.")] = "unknown",
    name: Annotated[str | None, typer.Option("--name", help="Name for the snapshot.")] = None,
    label: Labels = None,
    lenient: Lenient = False,
) -> None:
    """Import saved /proc/allocinfo text dumps (from a bug report, another host) into a store.

    Example: allocsnap import day0.txt day4.txt --host db7 --label ticket=1234 --store leak/
    """
    from allocsnap import capture, source, store
    from allocsnap.units import parse_time

    when = parse_time(at) if at is not None else None
    for dump in dumps:
        snapshot = capture.snapshot(
            source.read_dump(dump),
            name=name,
            host=host,
            at=when,
            labels=_labels(label),
            lenient=lenient,
        )
        store.write(store_dir, snapshot)
        for note in snapshot.meta.notes:
            typer.echo(f"note: {dump}: {note}", err=True)
        typer.echo(
            f"{dump}: snapshot {snapshot.meta.snapshot_id}, {snapshot.meta.rows:,} rows", err=True
        )
        typer.echo(snapshot.meta.snapshot_id)


@app.command()
def ls(store_dir: Store = DEFAULT_STORE, fmt: OutputFormat = Format.table) -> None:
    """List the snapshots in a store: time, host, kernel, rows and totals.

    Example: allocsnap ls --store /var/lib/allocsnap
    """
    from allocsnap import analysis, reports
    from allocsnap.render import render

    render(reports.ls_report(analysis.snapshots(store_dir)), fmt, sys.stdout)


@app.command()
def show(
    snapshot: Annotated[
        str, typer.Argument(help="Snapshot file, text dump, '-', or store reference.")
    ],
    sort: Annotated[str, typer.Option("--sort", help="bytes, calls or tag.")] = "bytes",
    by: By = "tag",
    top: Top = 20,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    lenient: Lenient = False,
    module: ModuleGlob = None,
    function: FunctionGlob = None,
    file: FileGlob = None,
    line: Line = None,
    min_size: MinSize = None,
    max_size: MaxSize = None,
    accurate: Accurate = None,
    nonzero: Nonzero = False,
) -> None:
    """Show one snapshot filtered, grouped and sorted, totals first.

    Replaces 'sort -g /proc/allocinfo | grep ... | numfmt --to=iec'.

    Example: allocsnap show latest --by dir:2 --top 10

    Example: sudo cat /proc/allocinfo | allocsnap show - --module ext4 --sort calls
    """
    from allocsnap import analysis, reports
    from allocsnap.errors import UsageError
    from allocsnap.render import render

    if sort not in ("bytes", "calls", "tag"):
        raise UsageError(f"--sort must be bytes, calls or tag, not {sort!r}")
    grouping = analysis.Grouping.parse(by)
    keep = _filter(module, function, file, line, min_size, max_size, accurate, nonzero)
    snap_ = analysis.load(snapshot, store_dir, lenient=lenient)
    result = analysis.show(snap_, keep=keep, grouping=grouping, sort=sort, top_n=top)
    render(reports.show_report(result, grouping), fmt, sys.stdout)


@app.command()
def diff(
    before: Annotated[str, typer.Argument(help="Earlier snapshot: file, dump, '-' or reference.")],
    after: Annotated[str, typer.Argument(help="Later snapshot: file, dump, '-' or reference.")],
    by: By = "tag",
    top: Top = 20,
    min_delta: Annotated[
        str, typer.Option("--min-delta", help="Hide changes smaller than this (1M).")
    ] = "0",
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    lenient: Lenient = False,
    module: ModuleGlob = None,
    function: FunctionGlob = None,
    file: FileGlob = None,
    line: Line = None,
    min_size: MinSize = None,
    max_size: MaxSize = None,
    accurate: Accurate = None,
    nonzero: Nonzero = False,
) -> None:
    """Show the call sites whose live bytes changed most between two snapshots.

    BEFORE and AFTER are snapshot files, saved text dumps, '-' (stdin), or references into
    the store: a name, an id (or prefix), a time, 'first' or 'latest'.

    Example: allocsnap diff before after --top 10

    Example: allocsnap diff day0.txt day6.txt --by module --format csv
    """
    from allocsnap import analysis, reports
    from allocsnap.errors import UsageError
    from allocsnap.render import render
    from allocsnap.units import parse_size

    if before == "-" and after == "-":
        raise UsageError("only one of BEFORE and AFTER can be '-' (stdin)")
    grouping = analysis.Grouping.parse(by)
    keep = _filter(module, function, file, line, min_size, max_size, accurate, nonzero)
    old, new = analysis.load_all([before, after], store_dir, lenient=lenient)
    result = analysis.diff(
        old,
        new,
        keep=keep,
        grouping=grouping,
        top_n=top,
        min_delta=parse_size(min_delta),
        per_hour=not (analysis.is_dump(before) or analysis.is_dump(after)),
    )
    for warning in result.warnings:
        if fmt in (Format.csv, Format.json):
            typer.echo(f"warning: {warning}", err=True)
    render(reports.diff_report(result, grouping), fmt, sys.stdout)


# -- analyses over a store window --------------------------------------------------------------

Since = Annotated[
    str | None,
    typer.Option(
        "--since", help="Window start: a time, or a duration (2h) back from the newest snapshot."
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until", help="Window end: a time, or a duration (30m) back from the newest snapshot."
    ),
]
WindowHost = Annotated[str | None, typer.Option("--host", help="Only this host's snapshots.")]
MaxPoints = Annotated[
    int, typer.Option("--max-points", help="Snapshots read per epoch (evenly spaced in time).")
]


@app.command()
def leaks(
    since: Since = None,
    until: Until = None,
    host: WindowHost = None,
    by: By = "tag",
    top: Top = 20,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    min_rate: Annotated[
        str, typer.Option("--min-rate", help="Floor: growth per hour (Theil–Sen slope).")
    ] = "64K",
    min_growth: Annotated[
        str, typer.Option("--min-growth", help="Floor: total growth over the series.")
    ] = "1M",
    confidence: Annotated[
        float, typer.Option("--confidence", help="Mann–Kendall confidence that it increases.")
    ] = 0.99,
    max_points: MaxPoints = 120,
    fail_on_leak: Annotated[
        bool, typer.Option("--fail-on-leak", help="Exit with code 5 when a leak is found.")
    ] = False,
    module: ModuleGlob = None,
    function: FunctionGlob = None,
    file: FileGlob = None,
    line: Line = None,
    min_size: MinSize = None,
    max_size: MaxSize = None,
    accurate: Accurate = None,
    nonzero: Nonzero = False,
) -> None:
    """Find call sites that grow persistently inside each epoch of a store window.

    A robust trend test (Mann–Kendall with a Theil–Sen slope) and shape tests keep noise,
    one-off steps, sawtooth and grew-then-freed out; see docs/analyses.md.

    Example: allocsnap leaks --since 6h --by function --fail-on-leak
    """
    from allocsnap import analysis, reports
    from allocsnap.errors import ExitCode
    from allocsnap.render import render
    from allocsnap.units import parse_size

    grouping = analysis.Grouping.parse(by)
    keep = _filter(module, function, file, line, min_size, max_size, accurate, nonzero)
    settings = analysis.LeakSettings(
        max_points=max_points,
        min_growth=parse_size(min_growth),
        min_rate=parse_size(min_rate),
        min_confidence=confidence,
    )
    window = analysis.Window(since, until, host)
    result = analysis.leaks(
        store_dir, window, keep=keep, grouping=grouping, settings=settings, top_n=top
    )
    _warn_if_data(result.epochs.warnings, fmt)
    render(reports.leaks_report(result, grouping), fmt, sys.stdout)
    if fail_on_leak and result.found:
        raise typer.Exit(ExitCode.LEAK_FOUND)


@app.command()
def growth(
    since: Since = None,
    until: Until = None,
    host: WindowHost = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="Where window B starts (time or duration); default: middle."),
    ] = None,
    by: By = "tag",
    top: Top = 20,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    max_points: MaxPoints = 200,
    module: ModuleGlob = None,
    function: FunctionGlob = None,
    file: FileGlob = None,
    line: Line = None,
    min_size: MinSize = None,
    max_size: MaxSize = None,
    accurate: Accurate = None,
    nonzero: Nonzero = False,
) -> None:
    """Compare the median of a window's later part with its earlier part, as growth per hour.

    Example: allocsnap growth --since 1d --split 6h --by module
    """
    from allocsnap import analysis, reports
    from allocsnap.render import render

    grouping = analysis.Grouping.parse(by)
    keep = _filter(module, function, file, line, min_size, max_size, accurate, nonzero)
    window = analysis.Window(since, until, host)
    result = analysis.growth(
        store_dir,
        window,
        split=split,
        keep=keep,
        grouping=grouping,
        max_points=max_points,
        top_n=top,
    )
    _warn_if_data(result.epochs.warnings, fmt)
    render(reports.growth_report(result, grouping), fmt, sys.stdout)


@app.command()
def top(
    since: Since = None,
    until: Until = None,
    host: WindowHost = None,
    by: By = "tag",
    top: Top = 20,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    module: ModuleGlob = None,
    function: FunctionGlob = None,
    file: FileGlob = None,
    line: Line = None,
    min_size: MinSize = None,
    max_size: MaxSize = None,
    accurate: Accurate = None,
    nonzero: Nonzero = False,
) -> None:
    """Show the largest movers of a window, up and down: first against last value per epoch.

    Example: allocsnap top --since 2h --top 10
    """
    from allocsnap import analysis, reports
    from allocsnap.render import render

    grouping = analysis.Grouping.parse(by)
    keep = _filter(module, function, file, line, min_size, max_size, accurate, nonzero)
    window = analysis.Window(since, until, host)
    result = analysis.top(store_dir, window, keep=keep, grouping=grouping, top_n=top)
    _warn_if_data(result.epochs.warnings, fmt)
    render(reports.top_report(result, grouping), fmt, sys.stdout)


@app.command()
def history(
    pattern: Annotated[
        str, typer.Argument(help="Part of a call site or group name, or a glob over all of it.")
    ],
    since: Since = None,
    until: Until = None,
    host: WindowHost = None,
    by: By = "tag",
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    points: Annotated[
        int | None,
        typer.Option(
            "--points", help="Snapshots per epoch; default 200 in a table, all in CSV/JSON."
        ),
    ] = None,
    module: ModuleGlob = None,
    function: FunctionGlob = None,
    file: FileGlob = None,
    line: Line = None,
    accurate: Accurate = None,
) -> None:
    """Show the series of the call sites (or groups) matching PATTERN, with a sparkline.

    Example: allocsnap history ice_alloc_mapped_page --since 7d

    Example: allocsnap history ext4 --by module --format csv
    """
    from allocsnap import analysis, reports
    from allocsnap.render import render

    grouping = analysis.Grouping.parse(by)
    keep = _filter(module, function, file, line, None, None, accurate, False)
    raw = fmt in (Format.csv, Format.json)
    window = analysis.Window(since, until, host)
    max_points = points if points is not None else (None if raw else 200)
    result = analysis.history(
        store_dir, pattern, window, keep=keep, grouping=grouping, max_points=max_points or None
    )
    _warn_if_data(result.epochs.warnings, fmt)
    render(reports.history_report(result, grouping, points=raw), fmt, sys.stdout)


def _warn_if_data(warnings: tuple[str, ...], fmt: Format) -> None:
    """Repeat a window's warnings on stderr when stdout is data (CSV, JSON) without a header."""
    if fmt in (Format.csv, Format.json):
        for warning in warnings:
            typer.echo(f"warning: {warning}", err=True)


@app.command()
def record(
    interval: Annotated[
        str, typer.Option("--interval", help="Time between snapshots (10s, 1m).")
    ] = "10s",
    count: Annotated[
        int | None, typer.Option("--count", help="Stop after this many snapshots.")
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="Stop after this long (2h, 30m).")
    ] = None,
    retain: Annotated[
        str | None,
        typer.Option("--retain", help="Delete snapshots older than this as hours close (7d)."),
    ] = None,
    source_spec: Annotated[
        str,
        typer.Option(
            "--source", help="auto (ioctl on 7.3+, else text), ioctl, procfs, or a saved dump."
        ),
    ] = "auto",
    store_dir: Store = DEFAULT_STORE,
    host: Host = None,
    label: Labels = None,
    module: ModuleGlob = None,
    function: FunctionGlob = None,
    file: FileGlob = None,
    line: Line = None,
    min_size: MinSize = None,
    max_size: MaxSize = None,
    accurate: Accurate = None,
    nonzero: Nonzero = False,
) -> None:
    """Record snapshots on a fixed schedule until --count, --duration, Ctrl-C or SIGTERM.

    Closed hours are compacted as they close; one recorder per store. On a terminal a status
    line shows progress; otherwise a one-line log every 10 minutes (docs/recorder.md).

    Example: sudo allocsnap record --interval 10s --duration 2h --module ext4

    Example: allocsnap record --interval 10s --retain 7d --store /var/lib/allocsnap
    """
    # Before pyarrow loads: its default mimalloc pool keeps ~8 MB more resident than malloc in
    # a long run (docs/recorder.md); a process that imported pyarrow already keeps its pool.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    from allocsnap import recorder
    from allocsnap.units import parse_duration

    plan = recorder.Plan(
        interval=parse_duration(interval).total_seconds(),
        count=count,
        duration=parse_duration(duration).total_seconds() if duration is not None else None,
        source=source_spec,
        keep=_filter(module, function, file, line, min_size, max_size, accurate, nonzero),
        host=host,
        labels=_labels(label),
        retain=parse_duration(retain) if retain is not None else None,
    )
    tty = sys.stderr.isatty()
    if sys.argv[1:2] == ["record"]:
        # A process started to record becomes a lean one without typer and pydantic (13 MB
        # of the 100 MB budget); same pid, signals and exit codes (docs/recorder.md).
        recorder.exec_lean(store_dir, plan, tty=tty)
    status = recorder.record(store_dir, plan, on_status=recorder.status_printer(sys.stderr, tty))
    typer.echo(status.line(), err=True)


@app.command()
def compact(
    store_dir: Store = DEFAULT_STORE,
    hours_only: Annotated[
        bool, typer.Option("--hours-only", help="Compact closed hours but not closed days.")
    ] = False,
) -> None:
    """Compact the store's closed hours and days into files sorted by tag and time.

    The recorder does this by itself as hours close; safe to run beside it.

    Example: allocsnap compact --store /var/lib/allocsnap
    """
    from allocsnap import compaction
    from allocsnap.units import format_size

    compaction.recover(store_dir)
    done = compaction.compact(store_dir, days=not hours_only)
    typer.echo(
        f"compacted {done.snapshots} snapshots into {done.units} file(s): "
        f"{format_size(done.bytes_before)} -> {format_size(done.bytes_after)}",
        err=True,
    )


@app.command()
def prune(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Delete snapshots older than this (7d, 12h).")
    ],
    store_dir: Store = DEFAULT_STORE,
) -> None:
    """Delete snapshots older than a duration, a whole compacted file at a time.

    Example: allocsnap prune --older-than 7d --store /var/lib/allocsnap
    """
    from allocsnap import compaction
    from allocsnap.units import format_size, parse_duration

    done = compaction.prune(store_dir, parse_duration(older_than))
    typer.echo(f"pruned {done.snapshots} snapshots ({format_size(done.bytes_before)})", err=True)


@app.command()
def sql(
    query_text: Annotated[
        str | None,
        typer.Argument(
            metavar="[QUERY]",
            help="SQL over the store's views; or use --query-file.",
            show_default=False,
        ),
    ] = None,
    query_file: Annotated[
        typer.FileText | None,
        typer.Option("--query-file", help="Read the SQL from this file ('-' for stdin)."),
    ] = None,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
) -> None:
    """Run any SQL over the store's views and macros (docs/sql.md) and print the rows.

    Views: snapshots, tags, samples, series (one row per call site per snapshot), latest,
    deltas (per epoch). Several statements run in turn; the last one's rows are printed.

    Example: allocsnap sql "select host, count(*) as snapshots from snapshots group by host"

    Example: allocsnap sql --query-file leak.sql --format csv
    """
    from allocsnap import reports
    from allocsnap.database import Database
    from allocsnap.errors import UsageError
    from allocsnap.render import render

    if query_file is not None and query_text is None:
        text = query_file.read()
    elif query_text is not None and query_file is None:
        text = query_text
    else:
        raise UsageError("give the SQL as QUERY or with --query-file, not both or neither")
    with Database(store_dir) as db:
        rows = db.arrow(text)
    render(reports.sql_report(rows), fmt, sys.stdout)
