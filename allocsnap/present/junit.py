"""``allocsnap loop --junit FILE``: the loop's verdict as a JUnit XML report for CI systems.

One test case per command looped: it fails with the call sites that leak per run as its
failure text, is an error when the command itself failed, and passes otherwise. The file is
written as the store's files are (``store.durable``): a new file, 0600, renamed into place, so
a symlink planted at its name is replaced rather than followed.
"""

from __future__ import annotations

import shlex
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from allocsnap import analysis, looping
from allocsnap.store import durable
from allocsnap.units import format_size

SUITE = "allocsnap loop"


def junit_xml(
    run: looping.LoopRun, judged: analysis.LoopJudgement | None, *, at: datetime | None = None
) -> bytes:
    """Return the JUnit XML document of one loop (``judged`` is None when no run was judged)."""
    command = shlex.join(run.command)
    total_s = sum(run.run_s) + sum(run.snapshot_s) + (judged.judge_s if judged else 0.0)
    leaks = judged.found if judged is not None else 0
    error = run.stopped == "failed"
    counts = {
        "tests": "1",
        "failures": "1" if leaks else "0",
        "errors": "1" if error and not leaks else "0",
        "skipped": "0",
        "time": f"{total_s:.3f}",
    }
    suites = ET.Element("testsuites", {"name": SUITE, **counts})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": SUITE,
            **counts,
            "timestamp": (at or datetime.now(UTC)).isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in _properties(run, judged).items():
        ET.SubElement(properties, "property", {"name": name, "value": value})
    case = ET.SubElement(
        suite, "testcase", {"classname": "allocsnap.loop", "name": command, "time": counts["time"]}
    )
    if leaks and judged is not None:
        what = "call site" if judged.grouping.by == "tag" else judged.grouping.by
        failure = ET.SubElement(
            case,
            "failure",
            {
                "type": "leak",
                "message": f"{leaks} {what}{'s' if leaks > 1 else ''} leak per run "
                f"(at least {format_size(judged.settings.min_per_run)} per run)",
            },
        )
        failure.text = "\n".join(leak_lines(judged)) + "\n"
    elif error:
        ET.SubElement(case, "error", {"type": "command failed", "message": stopped_text(run)})
    out = ET.SubElement(case, "system-out")
    out.text = "\n".join(_summary(run, judged)) + "\n"
    ET.indent(suites)
    document: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write_junit(path: Path, document: bytes) -> None:
    """Write a JUnit report to ``path``: a new file, owner-only, never through a symlink."""
    durable.atomic_write_bytes(document, path)


def leak_lines(judged: analysis.LoopJudgement) -> list[str]:
    """Return one line per leaking call site (or group): bytes per run, interval, total, key."""
    lines = []
    for row in judged.rows.to_pylist():
        lines.append(
            f"+{format_size(row['bytes_per_run'])} per run "
            f"(95%: {format_size(row['per_run_low'])} to {format_size(row['per_run_high'])}), "
            f"+{format_size(row['total_bytes'])} over {row['runs']} runs, "
            f"confidence {100 * row['confidence']:.1f}%: {row['key']}"
        )
    if judged.found > judged.rows.num_rows:
        lines.append(f"... and {judged.found - judged.rows.num_rows} more")
    return lines


def stopped_text(run: looping.LoopRun) -> str:
    """Return how a loop stopped, for people: the run that failed and its exit code."""
    if run.stopped == "failed" and run.failed_run is not None:
        which = f"warm-up run {-run.failed_run}" if run.failed_run < 0 else f"run {run.failed_run}"
        code = run.exit_code if run.exit_code is not None else 0
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"the command {how} in {which} of {run.planned}"
    if run.stopped == "interrupted":
        return f"interrupted after {run.runs} of {run.planned} runs"
    return f"{run.runs} runs done"


def _summary(run: looping.LoopRun, judged: analysis.LoopJudgement | None) -> list[str]:
    lines = [f"loop {run.loop}: {stopped_text(run)}"]
    per_run, snap = run.per_run_s(), run.snapshot_per_run_s()
    if per_run is not None and snap is not None:
        lines.append(f"time per run: {per_run:.3f} s command, {snap:.3f} s snapshot")
    if judged is not None and not judged.found:
        lines.append("no call site leaks per run")
    return lines


def _properties(run: looping.LoopRun, judged: analysis.LoopJudgement | None) -> dict[str, str]:
    found = {
        "loop": run.loop,
        "runs": str(run.runs),
        "planned_runs": str(run.planned),
        "stopped": run.stopped,
    }
    if run.exit_code is not None:
        found["exit_code"] = str(run.exit_code)
    if judged is not None:
        found["min_per_run"] = str(judged.settings.min_per_run)
        found["by"] = judged.grouping.by
    return found
