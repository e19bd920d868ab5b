"""The sql command: any SQL over the store's views."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from allocsnap.cli.core import DEFAULT_STORE, app
from allocsnap.cli.options import OutputFormat, Store
from allocsnap.present import Format

MAX_QUERY_CHARS = 1 << 20  # a query file of a megabyte is not a query


@app.command()
def sql(
    query_text: Annotated[
        str | None,
        typer.Argument(
            metavar="[QUERY]",
            help="SQL over the store's views; or use --query-file.",
            show_default=False,
        ),
    ] = None,
    query_file: Annotated[
        typer.FileText | None,
        typer.Option("--query-file", help="Read the SQL from this file ('-' for stdin)."),
    ] = None,
    fmt: OutputFormat = Format.table,
    store_dir: Store = DEFAULT_STORE,
    unsafe: Annotated[
        bool,
        typer.Option(
            "--unsafe",
            help="Let the SQL read and write any file you can (COPY TO, read_csv, ATTACH, "
            "extensions); by default it reads the store's files only.",
        ),
    ] = False,
) -> None:
    """Run any SQL over the store's views and macros (docs/sql.md) and print the rows.

    Views: snapshots, tags, samples, series (one row per call site per snapshot), latest,
    deltas (per epoch). Several statements run in turn; the last one's rows are printed.
    The SQL reads the store's files and nothing else unless --unsafe is given: it runs with
    your rights (root's under sudo), and a query file may come from someone else.

    Example: allocsnap sql "select host, count(*) as snapshots from snapshots group by host"

    Example: allocsnap sql --query-file leak.sql --format csv
    """
    from allocsnap.database import Database
    from allocsnap.errors import UsageError
    from allocsnap.present import tables
    from allocsnap.present.render import render

    if query_file is not None and query_text is None:
        text = query_file.read(MAX_QUERY_CHARS + 1)  # bounded: --query-file /dev/zero
        if len(text) > MAX_QUERY_CHARS:
            raise UsageError(f"{query_file.name}: more than {MAX_QUERY_CHARS:,} characters of SQL")
    elif query_text is not None and query_file is None:
        text = query_text
    else:
        raise UsageError("give the SQL as QUERY or with --query-file, not both or neither")
    with Database(store_dir, sandbox=not unsafe) as db:
        rows = db.printable(text)
    render(tables.sql_report(rows), fmt, sys.stdout)
