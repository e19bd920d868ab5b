"""Options shared by several commands, and their conversion into library values."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from allocsnap.present.render import Format

if TYPE_CHECKING:
    from allocsnap.model import Filter
    from allocsnap.store.remote import Location
else:
    Location = object  # typer refuses a union annotation; the parser returns Path or Remote


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
Top = Annotated[int, typer.Option("--top", "-n", help="Rows to show; 0 shows all.")]
By = Annotated[
    str, typer.Option("--by", help="Group by tag, function, file, module or dir[:N] (sums first).")
]
Lenient = Annotated[
    bool,
    typer.Option("--lenient", help="Skip and count lines that are not allocinfo rows."),
]
ModuleGlob = Annotated[
    str | None,
    typer.Option("--module", help="Module name glob; 'built-in' for code outside modules."),
]
FunctionGlob = Annotated[str | None, typer.Option("--function", help="Function name glob.")]
FileGlob = Annotated[str | None, typer.Option("--file", help="Source file glob, e.g. 'fs/ext4/*'.")]
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
Host = Annotated[str | None, typer.Option("--host", help="Host name to record.")]
Hosts = Annotated[
    list[str] | None,
    typer.Option("--host", help="Only these hosts: a name or a glob ('web*'); repeatable."),
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


def make_filter(
    module: str | None,
    function: str | None,
    file: str | None,
    line: int | None,
    min_size: str | None,
    max_size: str | None,
    accurate: bool | None,
    nonzero: bool,
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
