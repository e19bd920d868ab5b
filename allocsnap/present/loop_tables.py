"""The table of ``allocsnap loop``: call sites ranked by bytes per run, with the loop's runs,
the time per run and how the loop stopped."""

from __future__ import annotations

import shlex

import pyarrow.compute as pc

from allocsnap import analysis, looping
from allocsnap.present.junit import stopped_text
from allocsnap.present.render import Column, Report, plural
from allocsnap.units import format_size


def loop_report(run: looping.LoopRun, judged: analysis.LoopJudgement) -> Report:
    """Return the report of ``allocsnap loop``: leaks per run first, then what moved and why not."""
    s = judged.settings
    extra = [f"{plural(run.warmup, 'warm-up run')} before", f"settle {run.settle_s:g} s"]
    if run.drop_caches:
        extra.append("caches dropped before each snapshot")
    header = [
        f"loop {run.loop}: {plural(judged.judged_runs, 'run')} of {shlex.join(run.command)} "
        f"({', '.join(extra)})",
    ]
    per_run, snap = run.per_run_s(), run.snapshot_per_run_s()
    if per_run is not None and snap is not None:
        header.append(
            f"time per run: {per_run:.3f} s the command, {snap:.3f} s the snapshot "
            f"({run.source}); judged in {judged.judge_s:.2f} s"
        )
    if run.stopped != "done":
        header.append(f"stopped: {stopped_text(run)}; judging the runs before it")
    header.append(
        f"floors: {format_size(s.min_per_run)} per run (Theil–Sen), Mann–Kendall confidence "
        f"{100 * s.min_confidence:g}%, at least {s.min_runs} runs"
    )
    rows = judged.rows
    rows = rows.append_column("confidence_pct", pc.multiply(rows["confidence"], 100.0))
    rows = rows.append_column("grew_pct", pc.multiply(rows["grew_share"], 100.0))
    columns = [
        Column("bytes_per_run", "per run", "delta_size"),
        Column("per_run_low", "95% from", "delta_size"),
        Column("per_run_high", "to", "delta_size"),
        Column("total_bytes", "total", "delta_size"),
        Column("runs", "runs", "count"),
        Column("grew_pct", "grew", "pct"),
        Column("confidence_pct", "conf", "pct"),
        Column("key", "call site" if judged.grouping.by == "tag" else judged.grouping.by),
    ]
    footer = []
    if judged.found > rows.num_rows:
        footer.append(f"{judged.found - rows.num_rows} more (use --top 0 to show all)")
    if judged.found == 0:
        footer.append(f"nothing leaks {format_size(s.min_per_run)} or more per run")
    verdicts = pc.value_counts(judged.others["verdict"]).to_pylist()
    if verdicts:
        counts = ", ".join(
            f"{v['counts']} {v['values']}"
            for v in sorted(verdicts, key=lambda v: (-v["counts"], v["values"]))
        )
        footer.append(f"moved by {format_size(s.min_per_run)} or more but not leaks: {counts}")
    info = {
        "loop": run.loop,
        "command": list(run.command),
        "planned_runs": run.planned,
        "runs": judged.judged_runs,
        "warmup": run.warmup,
        "stopped": run.stopped,
        "failed_run": run.failed_run,
        "exit_code": run.exit_code,
        "settle_s": run.settle_s,
        "drop_caches": run.drop_caches,
        "source": run.source,
        "run_s": run.run_s,
        "snapshot_s": run.snapshot_s,
        "judge_s": judged.judge_s,
        "by": judged.grouping.by,
        "settings": vars(s),
        "found": judged.found,
        "snapshots": judged.runs.to_pylist(),
        "not_leaks": judged.others.to_pylist(),
    }
    return Report(rows=rows, columns=columns, header=header, footer=footer, info=info)
