"""The command line of ``ls`` read without typer, answered from the store's catalog.

Typer, pyarrow and DuckDB cost a new process several times what listing a store's snapshots
does once a catalog holds them (allocsnap/store/catalog.py). ``answered`` reads the plain
command lines — ``ls`` with ``--store DIR``, ``--host H`` (repeatable; names and ``*``/``?``
globs) and ``--format``/``-f`` — and, when the local store's catalog is fresh (or can be
brought up to date), prints what ``allocsnap ls`` prints, through present/render.py. Any
other token, a remote store, a bracket glob, or a store the catalog leaves to its own views
returns False and typer runs the command as always (allocsnap/cli/snapshots.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from allocsnap.cli.oneshot_argv import DEFAULT_STORE, STORE_VARIABLE, option_at
from allocsnap.errors import AllocsnapError
from allocsnap.errors import report as report_error
from allocsnap.present import snapshot_lines
from allocsnap.present.render import Format, Report, Rows, render
from allocsnap.store import catalog

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_OPTIONS = {"--store": "store", "--host": "host", "--format": "fmt", "-f": "fmt"}
_AS_STORED = ("boot_id", "kernel", "source", "profiling")  # ls's fields shown as the entry has them


def read(argv: list[str]) -> tuple[Path, list[str], Format] | None:
    """Return the store, the host globs and the format of an ``ls`` command line (without the
    program name) this module takes, else None."""
    if argv[:1] != ["ls"]:
        return None
    given: dict[str, list[str]] = {}
    tokens = argv[1:]
    i = 0
    while i < len(tokens):
        found = option_at(tokens, i)
        if found is None:
            return None
        name, value, i, joined = found
        key = _OPTIONS.get(name)
        if key is None or (joined and not name.startswith("--")):
            return None
        if key != "host" and key in given:
            return None
        given.setdefault(key, []).append(value)
    fmt = given.get("fmt", ["table"])[0]
    if fmt not in ("table", "csv", "json", "markdown"):
        return None
    hosts = given.get("host", [])
    if catalog.hosts_test(hosts) is None:
        return None  # a bracket glob: RE2's classes are typer's path to read
    store = given["store"][0] if "store" in given else os.environ.get(STORE_VARIABLE)
    if store == "":
        return None  # typer's to read
    if store is None:
        return Path(DEFAULT_STORE), hosts, Format(fmt)
    from allocsnap.store.remote import location

    try:
        where = location(store)
    except Exception:  # refused: typer says how, in its words
        return None
    return (where, hosts, Format(fmt)) if isinstance(where, Path) else None


def report(entries: list[catalog.Entry]) -> Report:
    """Return ``tables.ls_report`` of the catalog's snapshots, built without pyarrow."""
    at = {name: catalog.FIELDS.index(name) for name in catalog.FIELDS}
    labels = at["labels"]
    columns = {
        "snapshot_id": [e[0] for e in entries],
        "name": [e[1] for e in entries],
        "taken_at": [catalog.taken_at(e) for e in entries],
        "host": [e[catalog.HOST] for e in entries],
        **{name: _column(entries, at[name]) for name in _AS_STORED},
        "labels": [
            ", ".join(f"{k}={v}" for k, v in sorted(dict(e[labels]).items())) if e[labels] else ""
            for e in entries
        ],
        **{name: _column(entries, at[name], 0) for name in ("rows", "total_bytes", "total_calls")},
    }
    table: Any = Rows(columns)  # what render reads of a table
    return Report(rows=table, columns=snapshot_lines.LS_COLUMNS, info={"snapshots": len(entries)})


def _column(entries: list[catalog.Entry], index: int, none: Any = None) -> list[Any]:
    """Return one field of every entry, ``none`` where it is missing (NULL)."""
    if none is None:
        return [e[index] for e in entries]
    return [none if e[index] is None else e[index] for e in entries]


def answered(argv: list[str]) -> bool:
    """Print ``ls`` from the catalog and return True, or return False without a word."""
    found = read(argv)
    if found is None:
        return False
    where, hosts, fmt = found
    match = catalog.hosts_test(hosts)
    cat = catalog.open_catalog(where)
    if cat is None or match is None:
        return False
    try:
        render(report(cat.snapshots(match)), fmt, sys.stdout)
    except AllocsnapError as e:  # the output could not be written: as the typer app says it
        raise SystemExit(report_error(e, sys.stderr)) from None
    except KeyboardInterrupt:  # Ctrl-C: as click's main says it
        sys.stderr.write("\nAborted!\n")
        raise SystemExit(1) from None
    except BrokenPipeError:  # `allocsnap ls | head`: exit 1 without a word, as click does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the exit's flush must not fail again
        raise SystemExit(1) from None
    return True
