"""The figures of one benchmark run, the machine they ran on, and the table that shows them.

Every measurement module returns ``Figure`` rows; ``bench/run.py`` prints them. A ratio is
always allocsnap ÷ the alternative measured in the same run, so below 1 means allocsnap is
faster or smaller.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version


@dataclass(frozen=True)
class Figure:
    """One measured value, its target (if PRODUCT.md sets one) and its alternative (if any)."""

    what: str
    value: float
    unit: str  # "ms", "s", "B/tag/snap", "MB", or "" for a plain number
    target: float | None = None  # the value must be <= target
    versus: str = ""  # the alternative measured in the same run
    versus_value: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Return allocsnap ÷ the alternative."""
        if self.versus_value is None or self.versus_value == 0:
            return None
        return self.value / self.versus_value

    @property
    def verdict(self) -> str:
        """Return 'met', 'MISSED by N%' or '' when there is no target."""
        if self.target is None:
            return ""
        if self.value <= self.target:
            return "met"
        return f"MISSED by {self.value / self.target - 1:.0%} ({self.value / self.target:.1f}x)"


def median(values: Sequence[float]) -> float:
    """Return the median of the runs (one place, so every figure is a median)."""
    return statistics.median(values)


def number(value: float, unit: str) -> str:
    """Return a value with its unit, with sensible digits."""
    if unit in ("ms", "MB"):
        text = f"{value:.2f}" if value < 10 else f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    elif unit == "s":
        text = f"{value:.3f}"
    elif unit == "B/tag/snap":
        text = f"{value:.3f}" if value < 10 else f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def machine() -> list[str]:
    """Return lines describing the machine, its load now, and the versions in use."""
    load = os.getloadavg()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    versions = ", ".join(
        f"{name} {version(name)}" for name in ("allocsnap", "pyarrow", "duckdb", "numpy", "pandas")
    )
    return [
        f"machine: {os.cpu_count()} cores ({cpu}), {mem_gib:.1f} GiB memory, "
        f"{platform.system()} {platform.release()}",
        f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"(a shared machine: other jobs run beside the benchmark; timings vary with them)",
        f"versions: Python {platform.python_version()}, {versions}",
    ]


def table(figures: Sequence[Figure], *, markdown: bool = False) -> str:
    """Return the figures as an aligned text table, or as a Markdown table."""
    head = ("what", "measured (median)", "target", "verdict", "alternative", "alt.", "ratio")
    rows = []
    for f in figures:
        ratio = f.ratio
        rows.append(
            (
                f.what,
                number(f.value, f.unit),
                f"<= {number(f.target, f.unit)}" if f.target is not None else "",
                f.verdict,
                f.versus,
                number(f.versus_value, f.unit) if f.versus_value is not None else "",
                f"{ratio:.2f}x" if ratio is not None else "",
            )
        )
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    )
