"""Options shared by several commands, and their conversion into library values."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

from allocsnap.present import Format

if TYPE_CHECKING:
    from allocsnap.model import Filter
    from allocsnap.store.remote import Location
else:
    Location = object  # typer refuses a union annotation; the parser returns Path or Remote

Command = TypeVar("Command", bound=Callable[..., Any])


def valid(check: Callable[[str], object]) -> Callable[[Any], Any]:
    """Return a typer callback that refuses, as a usage error (exit 2), a value ``check``
    refuses: names and globs are checked where they come in (docs/commands.md, "Names")."""

    def callback(value: Any) -> Any:
        from allocsnap.errors import UsageError

        for item in value if isinstance(value, list | tuple) else [value]:
            if item is None:
                continue
            try:
                check(item)
            except UsageError as e:
                raise typer.BadParameter(str(e)) from None
        return value

    return callback


def check_host(value: str) -> object:
    from allocsnap.model import check_host

    return check_host(value)


def check_name(value: str) -> object:
    from allocsnap.model import check_snapshot_name

    return check_snapshot_name(value)


def check_glob(value: str) -> object:
    from allocsnap.filters import BUILT_IN, glob_to_regex

    return value if value == BUILT_IN else glob_to_regex(value)


def _location(value: str | Path) -> Location:
    """Return the store a ``--store`` value names (the remote module imports no pyarrow)."""
    from allocsnap.store.remote import location

    return location(value)


Store = Annotated[
    Location,
    typer.Option(
        "--store",
        envvar="ALLOCSNAP_STORE",
        parser=_location,
        metavar="DIR|s3://BUCKET/PREFIX",
        help="Snapshot store: a directory, or s3://bucket/prefix to read ($ALLOCSNAP_STORE).",
    ),
]
OutputFormat = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
Top = Annotated[int, typer.Option("--top", "-n", min=0, help="Rows to show; 0 shows all.")]
By = Annotated[
    str, typer.Option("--by", help="Group by tag, function, file, module or dir[:N] (sums first).")
]
Lenient = Annotated[
    bool,
    typer.Option("--lenient", help="Skip and count lines that are not allocinfo rows."),
]
ModuleGlob = Annotated[
    str | None,
    typer.Option(
        "--module",
        callback=valid(check_glob),
        help="Module name glob; 'built-in' for code outside modules.",
    ),
]
FunctionGlob = Annotated[
    str | None,
    typer.Option("--function", callback=valid(check_glob), help="Function name glob."),
]
FileGlob = Annotated[
    str | None,
    typer.Option("--file", callback=valid(check_glob), help="Source file glob, e.g. 'fs/ext4/*'."),
]
Line = Annotated[int | None, typer.Option("--line", help="Source line number.")]
MinSize = Annotated[
    str | None, typer.Option("--min-size", help="Keep rows with at least this many bytes (1M).")
]
MaxSize = Annotated[
    str | None, typer.Option("--max-size", help="Keep rows with at most this many bytes.")
]
Accurate = Annotated[
    bool | None,
    typer.Option(
        "--accurate/--inaccurate", help="Keep only accurate rows, or only 'accurate:no' ones."
    ),
]
Nonzero = Annotated[bool, typer.Option("--nonzero", help="Keep only rows with live bytes.")]
Labels = Annotated[list[str] | None, typer.Option("--label", help="Attach key=value (repeatable).")]
Host = Annotated[
    str | None,
    typer.Option(
        "--host", callback=valid(check_host), help="Host name to record (A-Z a-z 0-9 . _ -)."
    ),
]
Hosts = Annotated[
    list[str] | None,
    typer.Option(
        "--host",
        callback=valid(check_glob),
        help="Only these hosts: a name or a glob ('web*'); repeatable.",
    ),
]
# a store window (the window analyses and report)
Since = Annotated[
    str | None,
    typer.Option(
        "--since", help="Window start: a time, or a duration (2h) back from the newest snapshot."
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until", help="Window end: a time, or a duration (30m) back from the newest snapshot."
    ),
]
Group = Annotated[
    str | None,
    typer.Option(
        "--group",
        help="Let this group read the store from now on (files 0640, folders 0750); a setting "
        "the store keeps. By default a store is root's alone, as /proc/allocinfo is.",
    ),
]
Name = Annotated[
    str | None,
    typer.Option(
        "--name",
        callback=valid(check_name),
        help="Name to find the snapshot by later (A-Z a-z 0-9 . _ -; not first or latest).",
    ),
]


def _skip_damaged(ctx: typer.Context, value: bool) -> bool:
    if value:
        from allocsnap.analysis import reading

        ctx.with_resource(reading.skipping_damaged())
    return value


SkipDamaged = Annotated[
    bool,
    typer.Option(
        "--skip-damaged",
        callback=_skip_damaged,
        help="Leave out the snapshots of damaged store files, saying which, instead of failing.",
    ),
]


_FILTER_OPTIONS: dict[str, tuple[Any, object]] = {
    "module": (ModuleGlob, None),
    "function": (FunctionGlob, None),
    "file": (FileGlob, None),
    "line": (Line, None),
    "min_size": (MinSize, None),
    "max_size": (MaxSize, None),
    "accurate": (Accurate, None),
    "nonzero": (Nonzero, False),
}
_SITE_OPTIONS = ("module", "function", "file", "line", "accurate")


def filter_options(*, sizes: bool = True) -> Callable[[Command], Command]:
    """Give a command the filter options in place of its ``keep: Filter`` parameter.

    The options are declared here once and appended to the command's own; the command gets
    the ``Filter`` they make. ``sizes=False`` leaves out ``--min-size``, ``--max-size`` and
    ``--nonzero`` (commands whose rows are not one snapshot's).
    """
    names = list(_FILTER_OPTIONS) if sizes else list(_SITE_OPTIONS)

    def decorate(func: Command) -> Command:
        signature = inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.name != "keep"]
        # typer reads the annotations as objects: evaluate the command's own (they are
        # strings under `from __future__ import annotations`); `keep` is never evaluated, so
        # the model (and pyarrow) is not imported for --help
        own = [p.replace(annotation=eval(p.annotation, func.__globals__)) for p in own]  # noqa: S307
        added = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_FILTER_OPTIONS[name][0],
                default=_FILTER_OPTIONS[name][1],
            )
            for name in names
        ]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            return func(*args, keep=_make_filter(**given), **kwargs)

        parameters = [*own, *added]
        command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        return cast(Command, command)

    return decorate


def _make_filter(
    module: str | None = None,
    function: str | None = None,
    file: str | None = None,
    line: int | None = None,
    min_size: str | None = None,
    max_size: str | None = None,
    accurate: bool | None = None,
    nonzero: bool = False,
) -> Filter:
    from allocsnap.model import Filter
    from allocsnap.units import parse_size

    return Filter(
        module=module,
        function=function,
        file=file,
        line=line,
        min_size=parse_size(min_size) if min_size is not None else None,
        max_size=parse_size(max_size) if max_size is not None else None,
        accurate=accurate,
        nonzero=nonzero,
    )


def parse_labels(labels: list[str] | None) -> dict[str, str]:
    from allocsnap.units import parse_label

    return dict(parse_label(text) for text in labels or [])


def store_group(root: Path, group: str | None) -> None:
    """Apply ``--group`` to a store before it is written (nothing without one)."""
    if group is not None:
        from allocsnap.store.layout import ensure_store

        ensure_store(root, group)


# the metrics exposition (export, serve, record --textfile): docs/commands.md, "Metrics"
MetricsTop = Annotated[
    int,
    typer.Option(
        "--top",
        "-n",
        min=0,
        help="Call sites named by bytes, and as many by growth; leak series at most.",
    ),
]
MaxSeries = Annotated[
    int,
    typer.Option(
        "--max-series",
        min=15,  # openmetrics.MIN_SERIES: the totals and an (other) series per family
        help="Hard limit on the series: more is folded into (other), smallest first.",
    ),
]
