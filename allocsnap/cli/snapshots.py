"""Commands on single snapshots: snap, import, ls, show, diff."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from allocsnap.cli.core import DEFAULT_STORE, app
from allocsnap.cli.options import (
    Accurate,
    By,
    FileGlob,
    FunctionGlob,
    Host,
    Hosts,
    Labels,
    Lenient,
    Line,
    MaxSize,
    MinSize,
    ModuleGlob,
    Nonzero,
    OutputFormat,
    SkipDamaged,
    Store,
    Top,
    make_filter,
    parse_labels,
)
from allocsnap.present.render import Format
from allocsnap.store.remote import local


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
    from allocsnap.kernel import capture
    from allocsnap.store import single_file, writing
    from allocsnap.units import format_size

    if output is None:
        local(store_dir, "take snapshots")  # an s3:// store is refused before the kernel is read
    keep = make_filter(module, function, file, line, min_size, max_size, accurate, nonzero)
    snapshot = capture.snapshot(
        capture.read(source_spec, keep),
        keep=keep,
        name=name,
        host=host,
        labels=parse_labels(label),
        lenient=lenient,
    )
    meta = snapshot.meta
    if output is not None:
        single_file.write_snapshot_file(output, snapshot)
        where = str(output)
    else:
        writing.write(local(store_dir, "take snapshots"), snapshot)
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
    from allocsnap.kernel import capture, source
    from allocsnap.store import writing
    from allocsnap.units import parse_time

    root = local(store_dir, "import dumps")
    when = parse_time(at) if at is not None else None
    for dump in dumps:
        snapshot = capture.snapshot(
            source.read_dump(dump),
            name=name,
            host=host,
            at=when,
            labels=parse_labels(label),
            lenient=lenient,
        )
        writing.write(root, snapshot)
        for note in snapshot.meta.notes:
            typer.echo(f"note: {dump}: {note}", err=True)
        typer.echo(
            f"{dump}: snapshot {snapshot.meta.snapshot_id}, {snapshot.meta.rows:,} rows", err=True
        )
        typer.echo(snapshot.meta.snapshot_id)


@app.command()
def ls(
    store_dir: Store = DEFAULT_STORE,
    skip_damaged: SkipDamaged = False,
    fmt: OutputFormat = Format.table,
    host: Hosts = None,
) -> None:
    """List the snapshots in a store: time, host, kernel, rows and totals.

    Example: allocsnap ls --store /var/lib/allocsnap --host 'web*'
    """
    from allocsnap import analysis
    from allocsnap.present import tables
    from allocsnap.present.render import render

    render(tables.ls_report(analysis.snapshots(store_dir, host)), fmt, sys.stdout)


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
    skip_damaged: SkipDamaged = False,
    host: Hosts = None,
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
    from allocsnap import analysis
    from allocsnap.errors import UsageError
    from allocsnap.present import tables
    from allocsnap.present.render import render

    if sort not in ("bytes", "calls", "tag"):
        raise UsageError(f"--sort must be bytes, calls or tag, not {sort!r}")
    grouping = analysis.Grouping.parse(by)
    keep = make_filter(module, function, file, line, min_size, max_size, accurate, nonzero)
    snap_ = analysis.load(snapshot, store_dir, lenient=lenient, host=host)
    result = analysis.show(snap_, keep=keep, grouping=grouping, sort=sort, top_n=top)
    render(tables.show_report(result, grouping), fmt, sys.stdout)


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
    skip_damaged: SkipDamaged = False,
    host: Hosts = None,
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

    Example: allocsnap diff first latest --host web7   (references among web7's snapshots)
    """
    from allocsnap import analysis
    from allocsnap.errors import UsageError
    from allocsnap.present import tables
    from allocsnap.present.render import render
    from allocsnap.units import parse_size

    if before == "-" and after == "-":
        raise UsageError("only one of BEFORE and AFTER can be '-' (stdin)")
    grouping = analysis.Grouping.parse(by)
    keep = make_filter(module, function, file, line, min_size, max_size, accurate, nonzero)
    old, new = analysis.load_all([before, after], store_dir, lenient=lenient, host=host)
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
    render(tables.diff_report(result, grouping), fmt, sys.stdout)
