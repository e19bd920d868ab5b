"""The ``allocsnap`` command line: a thin typer shell over the library.

Each command parses its options, calls one library function and renders the result to stdout;
messages for people go to stderr. Heavy imports (pyarrow, duckdb) happen inside the commands
so that ``allocsnap --help`` stays fast. The commands live in one module per family and
register themselves on ``app`` when imported here, in the order ``--help`` lists them.
"""

# isort: off
from allocsnap.cli import snapshots, windows, loop, report, recording, metrics, explore  # noqa: F401
from allocsnap.cli import kernels  # noqa: F401
from allocsnap.cli.core import app, main

# isort: on

__all__ = ["app", "main"]
