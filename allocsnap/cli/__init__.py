"""The ``allocsnap`` command line: a thin typer shell over the library.

Each command parses its options, calls one library function and renders the result to stdout;
messages for people go to stderr. Heavy imports (pyarrow, duckdb) happen inside the commands,
and each family of commands (``snapshots``, ``windows``, ...) is imported only when a command
of it runs (``core.FAMILIES``), so that ``allocsnap CMD --help`` stays fast.
"""

from allocsnap.cli.core import app, main

__all__ = ["app", "main"]
