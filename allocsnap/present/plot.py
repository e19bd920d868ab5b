"""``allocsnap history --plot``: a series chart as an SVG file, or a PNG through matplotlib.

SVG comes from ``svgchart`` and needs nothing else. PNG needs a rasteriser with fonts, which
is what matplotlib is; it is an optional extra (``allocsnap[plot]``, 30+ MB installed) imported
only here and only for a PNG, so the CLI and the HTML report never load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allocsnap import analysis
from allocsnap.errors import AllocsnapError, UsageError
from allocsnap.present import svgchart
from allocsnap.units import format_size

SUFFIXES = (".svg", ".png")


def chart(result: analysis.WindowResult, title: str = "") -> svgchart.TimeChart:
    """Return the chart of a history: one line per group, one segment per epoch, reboots and
    profiling-off gaps between the window's epochs marked."""
    runs: dict[str, dict[str, list[svgchart.Point]]] = {}
    for key, epoch, at, value in zip(
        result.rows["key"].to_pylist(),
        result.rows["epoch"].to_pylist(),
        result.rows["taken_at"].to_pylist(),
        result.rows["bytes"].to_pylist(),
        strict=True,
    ):
        runs.setdefault(key, {}).setdefault(epoch, []).append((at, float(value)))
    series = tuple(
        svgchart.Series(key, tuple(tuple(sorted(r)) for r in by_epoch.values()))
        for key, by_epoch in runs.items()
    )
    bands, markers = epoch_breaks(result.epochs)
    return svgchart.TimeChart(
        series=series, title=title, name="history", bands=bands, markers=markers
    )


def epoch_breaks(
    epochs: analysis.Epochs,
) -> tuple[tuple[svgchart.Band, ...], tuple[svgchart.Marker, ...]]:
    """Return what separates a window's counting epochs: a reboot (a new boot), or else a
    stretch with profiling off, drawn from the end of one epoch to the start of the next."""
    rows = [r for r in epochs.rows.to_pylist() if r["snapshots"]]
    bands, markers = [], []
    for prev, cur in zip(rows, rows[1:], strict=False):
        if prev["host"] != cur["host"]:
            continue
        if (prev["boot_id"], prev["kernel"]) != (cur["boot_id"], cur["kernel"]):
            markers.append(svgchart.Marker(cur["first_at"], f"reboot: {cur['epoch']}", "reboot"))
        else:
            label = f"profiling off (vm.mem_profiling=0) before {cur['epoch']}"
            bands.append(svgchart.Band(prev["last_at"], cur["first_at"], label))
    return tuple(bands), tuple(markers)


def write(result: analysis.WindowResult, path: Path, title: str = "") -> None:
    """Write the chart of a history to ``path``: SVG or PNG, by its suffix."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"--plot writes .svg or .png files, not {path.name!r}")
    spec = chart(result, title)
    if suffix == ".svg":
        path.write_text(svgchart.standalone(svgchart.time_chart(spec)), encoding="utf-8")
    else:
        _png(spec, path)


def _png(spec: svgchart.TimeChart, path: Path) -> None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        raise AllocsnapError(
            "--plot FILE.png needs matplotlib: pip install 'allocsnap[plot]' "
            "(or write FILE.svg, which needs nothing more)"
        ) from None
    fig = Figure(figsize=(spec.width / 100, spec.height / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax: Any = fig.add_subplot()
    for band in spec.bands:
        ax.axvspan(band.start, band.end, color="#bbbbbb", alpha=0.45, lw=0)
    for marker in spec.markers:
        colour = svgchart.MARKER_COLOURS.get(marker.kind, "#444444")
        ax.axvline(marker.at, color=colour, ls="--", lw=1.2)
    for i, s in enumerate(spec.series):
        colour = svgchart.PALETTE[i % len(svgchart.PALETTE)]
        for j, seg in enumerate(s.segments):
            ax.plot(
                [t for t, _ in seg],
                [v for _, v in seg],
                color=colour,
                lw=1.3,
                label=s.label if j == 0 else None,
            )
    values = [v for s in spec.series for seg in s.segments for _, v in seg] or [0.0]
    low, high, step = svgchart.nice_range(min(0.0, min(values)), max(values), binary=True)
    ax.set_ylim(low, high)
    ax.set_yticks([low + i * step for i in range(round((high - low) / step) + 1)])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_size(v)))
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(axis="y", color="#e4e4e4")
    if spec.title:
        ax.set_title(spec.title, loc="left", fontsize=10)
    if spec.series:
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
