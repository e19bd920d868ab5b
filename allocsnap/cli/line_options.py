"""The options of a diff across kernels: ``--match-lines``, ``--rename``, ``--source-map``.

Apart from the other shared options so that the diff command gains them by three lines
(docs/kernels.md says what they do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

MatchLines = Annotated[
    bool | None,
    typer.Option(
        "--match-lines/--no-match-lines",
        help="Pair call sites whose lines moved between two kernels (default: when the "
        "snapshots' kernel releases differ, or --rename or --source-map is given).",
        show_default=False,
    ),
]
Rename = Annotated[
    Path | None,
    typer.Option(
        "--rename",
        help="File of renames between the kernels, one a line: 'file OLD NEW' or "
        "'function OLD NEW'.",
        dir_okay=False,
    ),
]
SourceMap = Annotated[
    Path | None,
    typer.Option(
        "--source-map",
        help="Exact line mapping from the source diff (bench/kernel_map.py): pairs through "
        "it, and says how many the heuristic got right.",
        dir_okay=False,
    ),
]
AcrossKernels = Annotated[
    bool,
    typer.Option(
        "--across-kernels",
        help="Follow call sites across kernel upgrades: older kernels' sites whose lines moved "
        "are shown under the newest kernel's call site (see docs/kernels.md).",
    ),
]
