"""The ``allocsnap`` command line: a thin typer shell over the library.

Each command parses its options, calls one library function and renders the result to stdout;
messages for people go to stderr. Heavy imports (pyarrow, duckdb) happen inside the commands,
and each family of commands (``snapshots``, ``windows``, ...) is imported only when a command
of it runs (``core.FAMILIES``), so that ``allocsnap CMD --help`` stays fast. ``diff`` and
``show`` of text dumps are answered before typer is imported when their command line is a
plain one (``oneshot_argv``), and so is ``ls`` of a store whose catalog holds its snapshots
(``store_argv``); ``app`` is imported on first use. A command answered there ends the process
as soon as its output is written (``_leave``).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing stays out of the one-shot paths (present/render.py)
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from allocsnap.cli.core import app


def main() -> None:
    """Run the command line: the ``allocsnap`` entry point."""
    if sys.argv[1:2] in (["diff"], ["show"]):
        from allocsnap.cli import oneshot_argv

        if oneshot_argv.answered(sys.argv[1:]):
            _leave()
    elif sys.argv[1:2] == ["ls"] and not {"--help", "-h"} & set(sys.argv[2:]):
        from allocsnap.cli import store_argv

        if store_argv.answered(sys.argv[1:]):
            _leave()
    from allocsnap.cli.core import main as run

    run()


def _leave() -> NoReturn:
    """End the process once a one-shot answer is written: flush what is left, run the exit
    handlers (the spill folder's removal: store/views.py), and exit without the interpreter's
    teardown. Freeing DuckDB's engine and the catalog's rows took 15-20 ms of a ``diff first
    latest`` that answers in about 0.2 s (docs/performance.md). The report itself was
    flushed by ``render``, which said why when it could not be written; a flush that fails
    here ends the process with exit 1 (the interpreter's own would say "Exception ignored"
    and exit 120)."""
    import atexit

    code = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            code = 1
    atexit._run_exitfuncs()
    os._exit(code)


def __getattr__(name: str) -> Any:
    if name == "app":  # the typer app, imported on first use like every command
        from allocsnap.cli.core import app

        return app
    raise AttributeError(f"module 'allocsnap.cli' has no attribute {name!r}")


__all__ = ["app", "main"]
