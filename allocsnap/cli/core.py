"""The typer application every command registers on, and the one place errors are reported.

Every ``AllocsnapError`` is reported at one point, ``_Group.invoke``, as one line on stderr
with its exit code (docs/commands.md).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from allocsnap.errors import AllocsnapError, DamagedSkipped, report


class _Group(TyperGroup):
    """Report every AllocsnapError as one line on stderr and exit with its code."""

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
