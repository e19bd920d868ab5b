"""Commands that hand allocsnap's figures to Prometheus: export and serve (record --textfile
writes the same for node_exporter)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from allocsnap.cli.core import DEFAULT_STORE, app
from allocsnap.cli.options import Hosts, MaxSeries, MetricsTop, SkipDamaged, Store

Source = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Read this instead of the store: auto, ioctl or procfs (the kernel now), or a "
        "saved text dump.",
    ),
]


class ExportFormat(StrEnum):
    """What ``allocsnap export`` writes."""

    openmetrics = "openmetrics"
    prometheus = "prometheus"


@app.command()
def export(
    snapshot: Annotated[
        str, typer.Argument(help="Store reference (default: the newest), snapshot file or dump.")
    ] = "latest",
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format", "-f", help="openmetrics, or prometheus (text 0.0.4, for node_exporter)."
        ),
    ] = ExportFormat.openmetrics,
    source_spec: Source = None,
    store_dir: Store = DEFAULT_STORE,
    skip_damaged: SkipDamaged = False,
    host: Hosts = None,
    top: MetricsTop = 20,
    max_series: MaxSeries = 500,
) -> None:
    """Write a snapshot's metrics as OpenMetrics or Prometheus text on stdout.

    The top call sites by bytes and by growth, every module and top directory, each family
    summing to the totals, and the leak verdicts of the snapshot's boot (docs/commands.md).

    Example: allocsnap export --store /var/lib/allocsnap | promtool check metrics

    Example: sudo allocsnap export --source auto --format prometheus
    """
    from allocsnap import openmetrics
    from allocsnap.analysis import metrics
    from allocsnap.errors import UsageError
    from allocsnap.kernel import capture

    limits = openmetrics.Limits(top_n=top, max_series=max_series)
    if source_spec is not None and snapshot != "latest":
        raise UsageError(f"give SNAP ({snapshot!r}) or --source, not both")
    if source_spec is not None:
        snap = capture.snapshot(capture.read(source_spec))
        exposition = openmetrics.exposition(snap, limits=limits)
    else:
        exposition = metrics.exposition(store_dir, snapshot, host=host, limits=limits)
    if fmt is ExportFormat.prometheus:
        exposition = exposition.prometheus()
    for family, count in exposition.folded.items():
        typer.echo(
            f"note: --max-series {max_series} left {count} series out of {family} (into its "
            "(other) series, where it has one)",
            err=True,
        )
    sys.stdout.write(exposition.text)


@app.command()
def serve(
    listen: Annotated[
        str,
        typer.Option(
            "--listen", help="ADDRESS:PORT to listen on; a loopback address unless --allow-remote."
        ),
    ] = "127.0.0.1:9476",
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="Allow an address that is not loopback (0.0.0.0, a NIC's)."
        ),
    ] = False,
    source_spec: Source = None,
    store_dir: Store = DEFAULT_STORE,
    host: Hosts = None,
    top: MetricsTop = 20,
    max_series: MaxSeries = 500,
    min_interval: Annotated[
        str,
        typer.Option(
            "--min-interval",
            help="Look at the store (or read the kernel) at most this often; scrapes in "
            "between get the last answer.",
        ),
    ] = "5s",
    leaks_every: Annotated[
        str,
        typer.Option(
            "--leaks-every",
            help="Judge leaks again at most this often (the costly part); new snapshots in "
            "between carry the verdicts before.",
        ),
    ] = "5m",
) -> None:
    """Serve /metrics for Prometheus from a store's newest snapshot, or from the kernel.

    Computed once per snapshot and cached; only /metrics is served (docs/commands.md). Runs
    until Ctrl-C or SIGTERM.

    Example: allocsnap serve --store /var/lib/allocsnap   (then scrape 127.0.0.1:9476)

    Example: sudo allocsnap serve --source auto --listen 127.0.0.1:9477
    """
    from allocsnap import openmetrics
    from allocsnap import serve as serving
    from allocsnap.units import parse_duration

    where = serving.parse_listen(listen, allow_remote=allow_remote)
    limits = openmetrics.Limits(top_n=top, max_series=max_series)
    every = parse_duration(min_interval).total_seconds()
    exporter: serving.Exporter
    if source_spec is not None:
        exporter = serving.SourceExporter(source_spec, None, limits, every)
    else:
        verdicts_for = parse_duration(leaks_every).total_seconds()
        exporter = serving.StoreExporter(store_dir, host, limits, every, verdicts_for)
    serving.serve(
        where,
        exporter,
        on_ready=lambda url: typer.echo(f"serving {url}", err=True),
        on_problem=lambda why: typer.echo(
            f"warning: {why} (serving anyway: /metrics answers 500 until then)", err=True
        ),
    )
