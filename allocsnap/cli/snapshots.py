"""Commands on single snapshots: snap, import, ls, show, diff."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from allocsnap.cli import line_options
from allocsnap.cli.core import DEFAULT_STORE, app
from allocsnap.cli.options import (
    By,
    Group,
    Host,
    Hosts,
    Labels,
    Lenient,
    Name,
    OutputFormat,
    SkipDamaged,
    Store,
    Top,
    check_host,
    filter_options,
    parse_labels,
    store_group,
    valid,
)
from allocsnap.present import Format

if TYPE_CHECKING:
    from allocsnap.model import Filter, Snapshot

Command = TypeVar("Command", bound=Callable[..., Any])

# The options the one-shot path answers (allocsnap.oneshot): any other one given, with a value
# other than its default, sends the command down the normal path. --store and --host are read
# only for store references, which the one-shot path takes from a local store's catalog
# (allocsnap/oneshot/stored.py).
_ONE_SHOT_OPTIONS = {"by", "top", "min_delta", "fmt", "sort", "store_dir", "host"}
_DEFAULTS = (None, False)


def one_shot_first(
    answer: Callable[..., bool], operands: tuple[str, ...]
) -> Callable[[Command], Command]:
    """Have ``answer`` (allocsnap.oneshot's diff or show) try a command first, with the raw
    option values, before its filter options become a ``Filter`` (which imports pyarrow).

    ``answer`` returns False when it cannot give the normal path's exact output: the command
    then runs unchanged.
    """

    def decorate(func: Command) -> Command:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            others = {k: v for k, v in kwargs.items() if k not in _ONE_SHOT_OPTIONS}
            refs = [others.pop(name) for name in operands]
            if not args and all(v in _DEFAULTS for v in others.values()):
                wanted = {k: v for k, v in kwargs.items() if k in _ONE_SHOT_OPTIONS}
                store, hosts = wanted.pop("store_dir"), wanted.pop("host")
                if answer(
                    *refs, store=store, hosts=hosts, out=sys.stdout, err=sys.stderr, **wanted
                ):
                    return None
            return func(*args, **kwargs)

        return command  # type: ignore[return-value]

    return decorate


def _one_shot_diff(before: str, after: str, **options: Any) -> bool:
    from allocsnap import oneshot

    return oneshot.diff(before, after, **options)


def _one_shot_show(snapshot: str, **options: Any) -> bool:
    from allocsnap import oneshot

    return oneshot.show(snapshot, **options)


@app.command()
@filter_options()
def snap(
    name: Name = None,
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
    group: Group = None,
    host: Host = None,
    label: Labels = None,
    lenient: Lenient = False,
    *,
    keep: Filter,
) -> None:
    """Take one snapshot of /proc/allocinfo now, into the store or one Parquet file.

    Prints the snapshot id (or the file written) on stdout.

    Example: sudo allocsnap snap --name before   (then: allocsnap diff before after)

    Example: sudo allocsnap snap -o before.parquet --module ext4
    """
    from allocsnap.kernel import capture
    from allocsnap.store import single_file, writing
    from allocsnap.store.remote import local
    from allocsnap.units import format_size

    if output is None:  # an s3:// store is refused before the kernel is read
        store_group(local(store_dir, "take snapshots"), group)
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
        # a dump's time is its mtime: one host, one snapshot per instant (as for import)
        exclusive = meta.source in ("file", "stdin")
        writing.write(local(store_dir, "take snapshots"), snapshot, exclusive=exclusive)
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
    dumps: Annotated[
        list[str],
        typer.Argument(help="Saved text dumps (also .gz, .xz, .zst), folders of them, or '-'."),
    ],
    store_dir: Store = DEFAULT_STORE,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="When the dump was taken (ISO 8601, UTC); default: a time in its file name, "
            "else its mtime.",
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option("--every", help="With --at: space the dumps this far apart (60s, 5m)."),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            callback=valid(check_host),
            help="Host the dump came from (A-Z a-z 0-9 . _ -).",
        ),
    ] = "unknown",
    name: Name = None,
    boot: Annotated[
        str | None,
        typer.Option(
            "--boot",
            help="Boot the dumps come from (any text; /proc/sys/kernel/random/boot_id); "
            "default: reboots inferred from the counters.",
        ),
    ] = None,
    kernel: Annotated[
        str | None, typer.Option("--kernel", help="Kernel release of the dumps (uname -r).")
    ] = None,
    label: Labels = None,
    lenient: Lenient = False,
    group: Group = None,
) -> None:
    """Import saved /proc/allocinfo text dumps (from a bug report, another host) into a store.

    Each dump's time is --at (spaced by --every), a time in its file name
    (2026-11-26T14:52:35Z, 20261126_145235, Unix seconds), or its mtime; two dumps of one host
    at one time are refused before anything is written.

    Example: allocsnap import day0.txt day4.txt --host db7 --label ticket=1234 --store leak/

    Example: allocsnap import dumps/ --at 2026-11-26T14:00Z --every 60s --host vm --store demo
    """
    from allocsnap import importer
    from allocsnap.store.remote import local
    from allocsnap.units import parse_duration, parse_time

    root = local(store_dir, "import dumps")
    store_group(root, group)
    when = parse_time(at) if at is not None else None
    step = parse_duration(every) if every is not None else None
    files, notes = importer.expand(dumps)
    if step is not None:
        files, order = importer.natural_order(files)
        notes += [order] if order is not None else []
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    dated = importer.dates(files, at=when, every=step)

    def written(d: importer.Dated, snapshot: Snapshot) -> None:
        meta = snapshot.meta
        for note in meta.notes:
            typer.echo(f"note: {d.dump}: {note}", err=True)
        typer.echo(
            f"{d.dump}: snapshot {meta.snapshot_id}, {meta.rows:,} rows, taken at "
            f"{meta.taken_at:%Y-%m-%d %H:%M:%S} UTC (from {_TIME_FROM[d.why]})",
            err=True,
        )
        typer.echo(meta.snapshot_id)

    importer.import_dumps(
        root,
        dated,
        host=host,
        name=name,
        labels=parse_labels(label),
        lenient=lenient,
        boot=boot,
        kernel=kernel,
        on_reboot=lambda r, boot_id: typer.echo(
            f"note: reboot inferred before {r.after}: calls fell at {r.fell:,} of {r.of:,} "
            f"call sites since {r.before}; its boot is {boot_id} (give --boot to name boots)",
            err=True,
        ),
        on_written=written,
    )


_TIME_FROM = {
    "--at": "--at",
    "--every": "--at and --every",
    "file name": "its file name",
    "mtime": "its mtime",
    "stdin": "the time it was read",
}


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
@one_shot_first(_one_shot_show, ("snapshot",))
@filter_options()
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
    *,
    keep: Filter,
) -> None:
    """Show one snapshot filtered, grouped and sorted, totals first.

    Replaces 'sort -g /proc/allocinfo | grep ... | numfmt --to=iec'.

    Example: allocsnap show latest --by dir:2 --top 10

    Example: sudo cat /proc/allocinfo | allocsnap show - --module ext4 --sort calls
    """
    from allocsnap import analysis
    from allocsnap.errors import UsageError
    from allocsnap.present import snapshot_lines, tables
    from allocsnap.present.render import render

    if sort not in ("bytes", "calls", "tag"):
        raise UsageError(f"--sort must be bytes, calls or tag, not {sort!r}")
    grouping = analysis.Grouping.parse(by)
    snap_ = analysis.load(snapshot, store_dir, lenient=lenient, host=host)
    result = analysis.show(snap_, keep=keep, grouping=grouping, sort=sort, top_n=top)
    note = snapshot_lines.profiling_note(snap_.meta, analysis.counted_nothing(snap_))
    if note is not None:
        typer.echo(note, err=True)
    render(tables.show_report(result, grouping), fmt, sys.stdout)


@app.command()
@one_shot_first(_one_shot_diff, ("before", "after"))
@filter_options()
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
    match_lines: line_options.MatchLines = None,
    rename: line_options.Rename = None,
    source_map: line_options.SourceMap = None,
    *,
    keep: Filter,
) -> None:
    """Show the call sites whose live bytes changed most between two snapshots.

    BEFORE and AFTER are snapshot files, saved text dumps, '-' (stdin), or references into
    the store: a name, an id (or prefix), a time, 'first' or 'latest'.

    Example: allocsnap diff before after --top 10

    Example: allocsnap diff day0.txt day6.txt --by module --format csv

    Example: allocsnap diff first latest --host web7   (references among web7's snapshots)

    Example: allocsnap diff old-6.12.txt new-7.3.txt --match-lines   (sites whose lines moved)
    """
    from allocsnap import analysis
    from allocsnap.errors import UsageError
    from allocsnap.present import snapshot_lines, tables
    from allocsnap.present.render import render
    from allocsnap.units import parse_size

    if before == "-" and after == "-":
        raise UsageError("only one of BEFORE and AFTER can be '-' (stdin)")
    grouping = analysis.Grouping.parse(by)
    old, new = analysis.load_all([before, after], store_dir, lenient=lenient, host=host)
    result = analysis.diff(
        old,
        new,
        keep=keep,
        grouping=grouping,
        top_n=top,
        min_delta=parse_size(min_delta),
        per_hour=not (analysis.is_dump(before) or analysis.is_dump(after)),
        lines=analysis.LineOptions.read(match_lines, rename, source_map),
    )
    for line in snapshot_lines.diff_warnings(result.warnings, result.comparability, fmt):
        typer.echo(line, err=True)
    render(tables.diff_report(result, grouping), fmt, sys.stdout)
