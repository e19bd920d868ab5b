"""The typer application every command registers on, and the one place errors are reported.

Every ``AllocsnapError`` is reported at one point, ``_Group.invoke``, as one line on stderr
with its exit code (docs/commands.md). A command's module (its family: ``snapshots``,
``windows``, ...) is imported, and its commands built, when the command line names one of
them: ``allocsnap diff`` never imports or builds the recorder's or the windows' commands.
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


class _Group(TyperGroup):
    """Load each command's family on first use; report every AllocsnapError as one line on
    stderr and exit with its code."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(FAMILIES)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in FAMILIES:
            importlib.import_module(f"allocsnap.cli.{FAMILIES[cmd_name]}")
            self._build_registered()
        return super().get_command(ctx, cmd_name)

    def _build_registered(self) -> None:
        """Build the commands registered on ``app`` since the last call (a family just loaded)."""
        for info in app.registered_commands:
            assert info.callback is not None
            if (info.name or typer.main.get_command_name(info.callback.__name__)) in self.commands:
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
