"""The judgement of ``allocsnap loop``: what a command leaks per run, from the loop's snapshots.

The snapshots of one loop carry the labels ``loop=<id>`` and ``run=<k>`` (run 0 is the baseline
after the warm-up); ``queries/loop.sql`` judges each call site or group on the run axis, not
the time axis (docs/commands.md, ``allocsnap loop``). Any store holding a loop's snapshots can
be judged again later with other settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from allocsnap.analysis import query, reading
from allocsnap.analysis.grouping import Grouping
from allocsnap.analysis.session import Store
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.model import Filter

LOOP_LABEL = "loop"
RUN_LABEL = "run"


@dataclass(frozen=True)
class LoopSettings:
    """The thresholds of the loop's judgement (docs/commands.md, `allocsnap loop`)."""

    min_per_run: int = 4096  # floor: Theil–Sen bytes per run
    min_runs: int = 4
    min_confidence: float = 0.99
    min_grew_share: float = 0.75
    min_late_share: float = 0.5
    max_drawdown: float = 0.5


@dataclass(frozen=True)
class LoopJudgement:
    """The groups of one loop that leak per run, ranked, and the ones that moved but do not."""

    loop: str
    rows: pa.Table  # queries/loop.sql columns, verdict 'leak' only, cut to --top
    found: int  # leaks before --top cut the list
    others: pa.Table  # series whose range reached the floor that are not leaks, with why
    settings: LoopSettings
    runs: pa.Table  # queries/loop_runs.sql: the loop's snapshots by run, baseline (0) first
    grouping: Grouping
    judge_s: float  # wall time of the judgement

    @property
    def judged_runs(self) -> int:
        """Return how many runs were judged (the snapshots after the baseline)."""
        rows: int = self.runs.num_rows
        return max(rows - 1, 0)


def loop_name(loop: str, run: int) -> str:
    """Return the name of a loop's snapshot after run ``run`` (0: the baseline)."""
    return f"loop-{loop}-run-{run}"


def loop_labels(loop: str, run: int) -> dict[str, str]:
    """Return the labels that identify a loop's snapshot after run ``run``."""
    return {LOOP_LABEL: loop, RUN_LABEL: str(run)}


def loop_runs(store_dir: Store, loop_id: str) -> pa.Table:
    """Return the snapshots of loop ``loop_id`` by run (0: the baseline), empty when none."""
    return reading.read_store(store_dir, lambda con: query.run(con, "loop_runs", loop=loop_id))


def loop(
    store_dir: Store,
    loop_id: str,
    *,
    keep: Filter | None = None,
    grouping: Grouping | None = None,
    settings: LoopSettings | None = None,
    top_n: int | None = 20,
) -> LoopJudgement:
    """Return the groups that grow with every run of loop ``loop_id``, most bytes per run first.

    The call-site parts of ``keep`` were applied when the snapshots were taken; its size bounds
    apply here, to whole series, so that no series starts or ends where it crosses one.
    """
    settings = settings or LoopSettings()
    grouping = grouping or Grouping()
    keep = keep or Filter()
    if grouping.by == "host":
        raise UsageError("--by host: a loop runs on one host")
    if settings.min_per_run < 1:
        raise UsageError("--min-per-run must be at least 1 byte")

    started = time.monotonic()

    def read(con: query.Connection) -> tuple[pa.Table, pa.Table]:
        runs = query.run(con, "loop_runs", loop=loop_id)
        return runs, query.run(
            con,
            "loop",
            loop=loop_id,
            by=grouping.by,
            depth=grouping.depth,
            min_size=keep.min_size,
            max_size=keep.max_size,
            nonzero=keep.nonzero,
            min_runs=settings.min_runs,
            min_per_run=settings.min_per_run,
            min_confidence=settings.min_confidence,
            min_grew_share=settings.min_grew_share,
            min_late_share=settings.min_late_share,
            max_drawdown=settings.max_drawdown,
        )

    runs, rows = reading.read_store(store_dir, read)
    if runs.num_rows == 0:
        raise StoreNotFound(f"no snapshots of loop {loop_id} in {store_dir}")
    is_leak = pc.equal(rows["verdict"], "leak")
    found = rows.filter(is_leak)
    return LoopJudgement(
        loop=loop_id,
        rows=found.slice(0, top_n) if top_n else found,
        found=found.num_rows,
        others=rows.filter(pc.invert(is_leak)),
        settings=settings,
        runs=runs,
        grouping=grouping,
        judge_s=time.monotonic() - started,
    )
