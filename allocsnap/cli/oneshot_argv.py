"""The command lines of ``diff a.txt b.txt`` and ``show FILE`` read without typer.

Typer, and the commands it builds, cost a new process more CPU than reading two dumps (about
0.08 s of 0.15). ``answered`` reads the few command lines the one-shot path takes — operands
and ``--by``, ``--top``/``-n``, ``--min-delta``, ``--sort``, ``--format``/``-f``, ``--store`` and
``--host`` (for references into a local store; ``--host`` repeatable), each once,
as ``--opt VALUE`` or ``--opt=VALUE`` — and hands them to allocsnap.oneshot. Any other token,
or a value typer would read otherwise (``-n +3``, ``-f JSON``), returns False and typer runs
the command as always (allocsnap/cli/snapshots.py), which also tries the one-shot path first.
"""

from __future__ import annotations

import os
import sys

from allocsnap.errors import AllocsnapError, report

# per command: its operands, and its options (long and short spellings) to the keyword used
_OPERANDS = {"diff": 2, "show": 1}
_OPTIONS = {
    "diff": {
        "--by": "by",
        "--top": "top",
        "-n": "top",
        "--min-delta": "min_delta",
        "--store": "store",
        "--host": "host",
    },
    "show": {
        "--by": "by",
        "--top": "top",
        "-n": "top",
        "--sort": "sort",
        "--store": "store",
        "--host": "host",
    },
}
_FORMAT = {"--format": "fmt", "-f": "fmt"}
_DEFAULTS = {
    "diff": {"by": "tag", "top": "20", "min_delta": "0", "fmt": "table"},
    "show": {"by": "tag", "top": "20", "sort": "bytes", "fmt": "table"},
}
STORE_VARIABLE = "ALLOCSNAP_STORE"
DEFAULT_STORE = "allocsnap-data"  # cli/core.py's DEFAULT_STORE


def read(argv: list[str]) -> tuple[str, list[str], dict[str, str], list[str]] | None:
    """Return the command, its operands, its option values (as text, defaults filled in) and
    its ``--host`` globs when ``argv`` (without the program name) is a command line this
    module takes, else None."""
    if not argv or argv[0] not in _OPERANDS:
        return None
    command, tokens = argv[0], argv[1:]
    names = _OPTIONS[command] | _FORMAT
    operands: list[str] = []
    given: dict[str, str] = {}
    hosts: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-"):
            operands.append(token)
            i += 1
            continue
        found = option_at(tokens, i)
        if found is None:
            return None
        name, value, i, joined = found
        key = names.get(name)
        if key is None or key in given or (joined and not name.startswith("--")):
            return None
        if key == "host":  # repeatable
            hosts.append(value)
        else:
            given[key] = value
    if len(operands) != _OPERANDS[command]:
        return None
    options = _DEFAULTS[command] | given
    if not options["top"].isascii() or not options["top"].isdigit():
        return None  # typer reads "+3", " 3" and "3_0" as numbers too: it decides
    if options["fmt"] not in ("table", "csv", "json", "markdown"):
        return None
    if hosts and not _plain_globs(hosts):
        return None  # a bracket glob: RE2's classes are typer's path to read
    return command, operands, options, hosts


def option_at(tokens: list[str], i: int) -> tuple[str, str, int, bool] | None:
    """Return the option at ``tokens[i]``: its name, its value, where the next token is, and
    whether it was written ``--opt=VALUE``; None when no value follows (typer's to read)."""
    name, equals, value = tokens[i].partition("=")
    if equals:
        return name, value, i + 1, True
    if i + 1 == len(tokens) or tokens[i + 1].startswith("-"):
        return None
    return name, tokens[i + 1], i + 2, False


def answered(argv: list[str]) -> bool:
    """Run ``argv`` on the one-shot path and return True, or return False without a word."""
    found = read(argv)
    if found is None or not _store_is_valid():
        return False
    command, operands, options, hosts = found
    from allocsnap import oneshot
    from allocsnap.present.render import Format

    fmt, top = Format(options.pop("fmt")), int(options.pop("top"))
    try:
        store = options.pop("store") if "store" in options else default_store()
        answer = oneshot.diff if command == "diff" else oneshot.show
        return answer(
            *operands,
            top=top,
            fmt=fmt,
            out=sys.stdout,
            err=sys.stderr,
            store=store,
            hosts=hosts or None,
            **options,
        )
    except AllocsnapError as e:  # as the typer app reports it (cli/core.py)
        raise SystemExit(report(e, sys.stderr)) from None
    except KeyboardInterrupt:  # Ctrl-C: as click's main says it
        sys.stderr.write("\nAborted!\n")
        raise SystemExit(1) from None
    except BrokenPipeError:  # `allocsnap diff ... | head`: exit 1 without a word, as click does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the exit's flush must not fail again
        raise SystemExit(1) from None


def default_store() -> str:
    """Return the store ``--store`` names when not given: $ALLOCSNAP_STORE, else cli/core.py's
    DEFAULT_STORE (click takes an empty variable as unset)."""
    return os.environ.get(STORE_VARIABLE) or DEFAULT_STORE


def _plain_globs(hosts: list[str]) -> bool:
    """Return True when the catalog matches these --host globs as the views would."""
    from allocsnap.store import catalog

    return catalog.hosts_test(hosts) is not None


def _store_is_valid() -> bool:
    """Return True unless $ALLOCSNAP_STORE is a value typer's --store parser would refuse."""
    value = os.environ.get(STORE_VARIABLE)
    if not value:
        return True
    from allocsnap.store.remote import location

    try:
        location(value)
    except Exception:  # refused: typer says how, in its words
        return False
    return True
