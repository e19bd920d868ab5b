"""The typer application every command registers on, and the one place errors are reported.

Every ``AllocsnapError`` is reported at one point, ``_Group.invoke``, as one line on stderr
with its exit code (docs/commands.md). A command's module (its family: ``snapshots``,
``windows``, ...) is imported when the command line names one of its commands, and only that
command is built: ``allocsnap diff`` never imports the recorder's commands, nor builds ``show``.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from allocsnap.errors import AllocsnapError, DamagedSkipped, report

# Every command and the module of allocsnap.cli that defines it, in the order --help lists them
FAMILIES = {
    **dict.fromkeys(("snap", "import", "ls", "show", "diff"), "snapshots"),
    **dict.fromkeys(("leaks", "growth", "top", "history", "outliers"), "windows"),
    "compare-kernels": "kernels",
    "loop": "loop",
    "report": "report",
    **dict.fromkeys(("record", "compact", "check", "prune", "merge", "upload"), "recording"),
    **dict.fromkeys(("export", "serve"), "metrics"),
    "sql": "explore",
}

# Each command's summary, the first paragraph of its help: the top level's --help lists them
# without loading any family (tests/test_cli.py checks each against its command's help)
SUMMARIES = {
    "snap": "Take one snapshot of /proc/allocinfo now, into the store or one Parquet file.",
    "import": "Import saved /proc/allocinfo text dumps (from a bug report, another host) into a "
    "store.",
    "ls": "List the snapshots in a store: time, host, kernel, rows and totals.",
    "show": "Show one snapshot filtered, grouped and sorted, totals first.",
    "diff": "Show the call sites whose live bytes changed most between two snapshots.",
    "leaks": "Find call sites that grow persistently inside each epoch of a store window.",
    "growth": "Compare the median of a window's later part with its earlier part, as growth per "
    "hour.",
    "top": "Show the largest movers of a window, up and down: first against last value per epoch.",
    "history": "Show the series of the call sites (or groups) matching PATTERN, with a sparkline.",
    "outliers": "Find the hosts whose bytes or growth for a call site stand out from the fleet's "
    "median.",
    "compare-kernels": "Compare two kernels over a fleet: per call site, the bytes on the hosts "
    "of each.",
    "loop": "Run a command many times, a snapshot after each run, and show what it leaks per run.",
    "report": "Write an overview of a store window: totals over time with reboots and "
    "profiling-off stretches marked, leak candidates with their series, top movers, the diff "
    "between the window's ends, and a zoomable directory → file → function map of the live "
    "bytes.",
    "record": "Record snapshots on a fixed schedule until --count, --duration, Ctrl-C or SIGTERM.",
    "compact": "Compact the store's closed hours and days into files sorted by tag and time.",
    "check": "List the store's damaged files; with --repair, set them aside so the rest reads.",
    "prune": "Delete snapshots older than a duration, a whole compacted file at a time.",
    "merge": "Merge stores copied from other hosts into this store: committed snapshots only.",
    "upload": "Copy the store's compacted hours and days that the remote store lacks, each "
    "one's snapshots file last; remove what newer ones superseded there. Safe beside a "
    "recorder and to run again (what is there already is skipped).",
    "export": "Write a snapshot's metrics as OpenMetrics or Prometheus text on stdout.",
    "serve": "Serve /metrics for Prometheus from a store's newest snapshot, or from the kernel.",
    "sql": "Run any SQL over the store's views and macros (docs/sql.md) and print the rows.",
}


class _Group(TyperGroup):
    """Load each command's family on first use; report every AllocsnapError as one line on
    stderr and exit with its code."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(FAMILIES)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """List every command with its summary, as typer would, without loading any family:
        the top level's --help then imports none of the commands."""
        from typer._click.utils import make_default_short_help

        limit = formatter.width - 6 - max(len(name) for name in FAMILIES)
        rows = [(name, make_default_short_help(SUMMARIES[name], limit)) for name in FAMILIES]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in FAMILIES:
            importlib.import_module(f"allocsnap.cli.{FAMILIES[cmd_name]}")
            self._build(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _build(self, cmd_name: str) -> None:
        """Build the command ``cmd_name`` registered on ``app`` (its family just loaded), and
        not its siblings: typer reads every parameter of a command it builds."""
        for info in app.registered_commands:
            assert info.callback is not None
            if (info.name or typer.main.get_command_name(info.callback.__name__)) != cmd_name:
                continue
            command = typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
            if command.name:
                self.commands[command.name] = command

    def invoke(self, ctx: Any) -> Any:  # typer's bundled click Context
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", DamagedSkipped)
            try:
                return super().invoke(ctx)
            except AllocsnapError as e:
                raise typer.Exit(report(e, sys.stderr)) from None
            finally:
                for w in seen:  # the library's warnings: one line each on stderr
                    if issubclass(w.category, DamagedSkipped):
                        typer.echo(f"warning: {w.message}", err=True)
                    else:
                        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


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


def _print_version(wanted: bool) -> None:
    if wanted:
        from allocsnap import __version__

        typer.echo(f"allocsnap {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options that apply before any command."""


def main() -> None:
    """Run the command line: the ``allocsnap`` entry point, without pandas (see keep_pandas_out)."""
    from allocsnap import keep_pandas_out

    keep_pandas_out()
    app(prog_name="allocsnap")
