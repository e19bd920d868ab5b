"""The ``allocsnap`` command line: a thin typer shell over the library.

Each command parses its options, calls one library function and renders the result to stdout;
messages for people go to stderr. Heavy imports (pyarrow, duckdb) happen inside the commands,
and each family of commands (``snapshots``, ``windows``, ...) is imported only when a command
of it runs (``core.FAMILIES``), so that ``allocsnap CMD --help`` stays fast. ``diff`` and
``show`` of text dumps are answered before typer is imported when their command line is a
plain one (``oneshot_argv``), and so is ``ls`` of a store whose catalog holds its snapshots
(``store_argv``); ``app`` is imported on first use.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing stays out of the one-shot paths (present/render.py)
if TYPE_CHECKING:
    from typing import Any

    from allocsnap.cli.core import app


def main() -> None:
    """Run the command line: the ``allocsnap`` entry point."""
    if sys.argv[1:2] in (["diff"], ["show"]):
        from allocsnap.cli import oneshot_argv

        if oneshot_argv.answered(sys.argv[1:]):
            return
    elif sys.argv[1:2] == ["ls"] and not {"--help", "-h"} & set(sys.argv[2:]):
        from allocsnap.cli import store_argv

        if store_argv.answered(sys.argv[1:]):
            return
    from allocsnap.cli.core import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "app":  # the typer app, imported on first use like every command
        from allocsnap.cli.core import app

        return app
    raise AttributeError(f"module 'allocsnap.cli' has no attribute {name!r}")


__all__ = ["app", "main"]
