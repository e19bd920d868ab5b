"""Commands that write and maintain a store over time: record, compact, prune, merge."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from allocsnap.cli.core import DEFAULT_STORE, app
from allocsnap.cli.options import (
    Group,
    Host,
    Labels,
    MaxSeries,
    MetricsTop,
    OutputFormat,
    Store,
    filter_options,
    parse_labels,
    store_group,
)
from allocsnap.errors import UsageError
from allocsnap.present import Format

if TYPE_CHECKING:
    from allocsnap.model import Filter
    from allocsnap.store.merge import Progress
    from allocsnap.store.remote import Remote


def remote_store(value: str, option: str) -> Remote:
    """Return the remote store an option names; refuse a directory."""
    from allocsnap.store.remote import Remote, location

    where = location(value)
    if not isinstance(where, Remote):
        raise UsageError(f"{option} takes s3://bucket/prefix, not {value!r}")
    return where


@app.command()
@filter_options()
def record(
    interval: Annotated[
        str, typer.Option("--interval", help="Time between snapshots (10s, 1m).")
    ] = "10s",
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many snapshots.")
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
    group: Group = None,
    upload_to: Annotated[
        str | None,
        typer.Option(
            "--upload",
            metavar="s3://BUCKET/PREFIX",
            help="Copy each compacted hour and day there, in a child process, retried on errors.",
        ),
    ] = None,
    host: Host = None,
    label: Labels = None,
    textfile: Annotated[
        Path | None,
        typer.Option(
            "--textfile",
            help="After each snapshot, write its metrics to this *.prom file (mode 0644) for "
            "node_exporter's textfile collector.",
        ),
    ] = None,
    top: MetricsTop = 20,
    max_series: MaxSeries = 500,
    *,
    keep: Filter,
) -> None:
    """Record snapshots on a fixed schedule until --count, --duration, Ctrl-C or SIGTERM.

    Closed hours are compacted as they close; one recorder per store. On a terminal a status
    line shows progress; otherwise a one-line log every 10 minutes (docs/recorder.md).

    Example: sudo allocsnap record --interval 10s --duration 2h --module ext4

    Example: allocsnap record --interval 10s --retain 7d --store /var/lib/allocsnap

    Example: allocsnap record --retain 2d --upload s3://allocsnap/db7 --store /var/lib/allocsnap

    Example: allocsnap record --textfile /var/lib/prometheus/node-exporter/allocsnap.prom
    """
    # Before pyarrow loads: its default mimalloc pool keeps more resident than malloc in
    # a long run (docs/recorder.md); a process that imported pyarrow already keeps its pool.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    from allocsnap import recorder
    from allocsnap.store.remote import local
    from allocsnap.units import parse_duration

    plan = recorder.Plan(
        interval=parse_duration(interval).total_seconds(),
        count=count,
        duration=parse_duration(duration).total_seconds() if duration is not None else None,
        source=source_spec,
        keep=keep,
        host=host,
        labels=parse_labels(label),
        retain=parse_duration(retain) if retain is not None else None,
        upload=remote_store(upload_to, "--upload").url if upload_to is not None else None,
        textfile=str(textfile.absolute()) if textfile is not None else None,
        top_n=top,
        max_series=max_series,
    )
    root = local(store_dir, "record")
    store_group(root, group)
    tty = sys.stderr.isatty()
    if sys.argv[1:2] == ["record"]:
        # A process started to record becomes a lean one without typer and click (they would
        # stay resident in a recorder with a memory budget); same pid, signals and exit codes
        # (docs/recorder.md).
        recorder.exec_lean(root, plan, tty=tty)
    status = recorder.record(root, plan, on_status=recorder.status_printer(sys.stderr, tty))
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
    from allocsnap.store import compaction, housekeeping
    from allocsnap.store.remote import local
    from allocsnap.units import format_size

    root = local(store_dir, "compact")
    housekeeping.recover(root)
    done = compaction.compact(root, days=not hours_only)
    typer.echo(
        f"compacted {done.snapshots} snapshots into {done.units} file(s): "
        f"{format_size(done.bytes_before)} -> {format_size(done.bytes_after)}",
        err=True,
    )


@app.command()
def check(
    store_dir: Store = DEFAULT_STORE,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="Move damaged files into <store>/quarantine/ (never deleted)."
        ),
    ] = False,
) -> None:
    """List the store's damaged files; with --repair, set them aside so the rest reads.

    A file is damaged when it cannot be read as Parquet, when its samples disagree with the
    rows, bytes or calls of the snapshots that commit them, or when a committed snapshot's
    samples are missing. One line per file on stdout; exit 0 when none is found, 1 when some
    is (also after --repair moved them).

    Example: allocsnap check --repair --store /var/lib/allocsnap
    """
    from allocsnap.store import check as checking
    from allocsnap.store import layout
    from allocsnap.store.remote import local

    root = local(store_dir, "check")
    layout.check_store(root)
    damage = checking.find_damage(root)
    for d in damage:
        typer.echo(f"{d.path}: {d.why}")
    if repair and damage:
        moved = checking.quarantine(root, damage)
        typer.echo(f"moved {len(moved)} file(s) into {root / checking.QUARANTINE}", err=True)
    elif damage:
        typer.echo(
            f"{len(damage)} damaged file(s); 'allocsnap check --repair' sets them aside", err=True
        )
    else:
        typer.echo(f"no damaged files in {root}", err=True)
    if damage:
        raise typer.Exit(1)


@app.command()
def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Delete snapshots taken longer than this before now, the wall clock (7d, 12h); "
            "a unit is required.",
        ),
    ],
    store_dir: Store = DEFAULT_STORE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="Allow a prune that deletes every snapshot.")
    ] = False,
) -> None:
    """Delete snapshots older than a duration, a whole compacted file at a time.

    Age counts from the wall clock (now), not from the newest snapshot as --since does in the
    window analyses: on a store of old imported dumps, --older-than 7d can delete them all.
    A prune that would empty the store stops (exit 2) unless --all is given.

    Example: allocsnap prune --older-than 7d --dry-run --store /var/lib/allocsnap
    """
    from allocsnap.store import housekeeping
    from allocsnap.store.remote import local
    from allocsnap.units import format_size, parse_duration

    root = local(store_dir, "prune")
    age = parse_duration(older_than)
    plan = housekeeping.prune(root, age, dry_run=True)
    for where, count, newest in plan.gone if dry_run else []:
        typer.echo(f"{where}\t{count}\t{newest:%Y-%m-%d %H:%M:%S} UTC")
    if dry_run:
        typer.echo(
            f"would prune {plan.snapshots} snapshots in {len(plan.gone)} file(s), "
            f"keep {plan.kept}; nothing deleted (--dry-run)",
            err=True,
        )
        return
    if plan.snapshots and not plan.kept and not everything:
        raise UsageError(
            f"--older-than {older_than} would delete all {plan.snapshots} snapshots of "
            f"{store_dir} (age counts from now, the wall clock): give --all to mean it, or "
            "see what would go with --dry-run"
        )
    done = housekeeping.prune(root, age)
    typer.echo(f"pruned {done.snapshots} snapshots ({format_size(done.bytes_before)})", err=True)


@app.command()
def merge(
    sources: Annotated[
        list[Path], typer.Argument(help="Store folders copied from other hosts (rsync -a).")
    ],
    store_dir: Store = DEFAULT_STORE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be copied; write nothing.")
    ] = False,
    fmt: OutputFormat = Format.table,
) -> None:
    """Merge stores copied from other hosts into this store: committed snapshots only.

    Safe to rerun (what is there already is skipped) and to interrupt (every file lands
    atomically, a snapshot's row last); a snapshot that differs under the same host and id
    stops the merge before anything is written.

    Example: allocsnap merge fleet/web7 fleet/db2 --store all   (each copied with rsync -a)
    """
    from allocsnap.present import tables
    from allocsnap.present.render import render
    from allocsnap.store import merge as merging
    from allocsnap.store.remote import local

    summary = merging.merge(
        sources, local(store_dir, "merge into"), dry_run=dry_run, progress=_progress_line()
    )
    render(tables.merge_report(summary), fmt, sys.stdout)


def _progress_line() -> Callable[[Progress], None]:
    """Return a callback that shows a merge's progress on stderr once it has run a second."""
    from allocsnap.units import format_size

    started = time.monotonic()
    shown = [started]

    def show(p: Progress) -> None:
        now = time.monotonic()
        if now - shown[0] < 1.0 and p.files_done < p.files_total:
            return
        if now - started < 1.0:
            return
        shown[0] = now
        typer.echo(
            f"merge: {p.files_done:,}/{p.files_total:,} files, "
            f"{format_size(p.bytes_done)} of {format_size(p.bytes_total)}",
            err=True,
        )

    return show


@app.command()
def upload(
    to: Annotated[
        str,
        typer.Option("--to", metavar="s3://BUCKET/PREFIX", help="The remote store to copy into."),
    ],
    store_dir: Store = DEFAULT_STORE,
) -> None:
    """Copy the store's compacted hours and days that the remote store lacks, each one's
    snapshots file last; remove what newer ones superseded there. Safe beside a recorder and
    to run again (what is there already is skipped).

    Example: allocsnap upload --to s3://allocsnap/db7 --store /var/lib/allocsnap

    Example: AWS_ENDPOINT_URL=http://127.0.0.1:9000 allocsnap upload --to s3://lab/host1
    """
    from allocsnap.store import upload as uploads
    from allocsnap.store.remote import local
    from allocsnap.units import format_size

    target = remote_store(to, "--to")
    done = uploads.upload(local(store_dir, "upload from"), target)
    typer.echo(
        f"uploaded {done.units} compacted file(s) to {target} ({done.files} files, "
        f"{format_size(done.bytes)}); {done.present} there already; "
        f"{done.removed} superseded removed",
        err=True,
    )
    if done.units == 0 and done.present == 0:
        typer.echo(
            f"note: nothing to upload: only closed hours that were compacted are uploaded, the "
            f"rest stays local; run 'allocsnap compact --store {store_dir}' for the closed "
            "hours, or wait for the current one to close (a recorder compacts it then)",
            err=True,
        )
