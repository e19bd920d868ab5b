"""Work run in a child process (compaction, uploads): started, waited for, and its result or
error handed back as JSON, so the long-running recorder's memory never holds what the child
allocated, and the child's errors reach the one error point with their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from allocsnap.errors import AllocsnapError, ExitCode, StoreError
from allocsnap.store.durable import why


class ChildError(AllocsnapError):
    """An error raised in a child process, with the child's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        try:
            self.exit_code = ExitCode(exit_code)
        except ValueError:
            self.exit_code = ExitCode.FAILURE


def start(module: str, args: list[str], what: str) -> subprocess.Popen[str]:
    """Start ``python -m module args...`` in its own session; ``result`` waits for it."""
    command = [sys.executable, "-m", module, *args]
    env = {"ARROW_DEFAULT_MEMORY_POOL": "system", **os.environ}
    try:
        return subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C stops the recorder, which ends its children itself
            env=env,
        )
    except OSError as e:
        raise StoreError(f"cannot start {what}: {why(e)}") from e


def result(child: subprocess.Popen[str], what: str, timeout: float | None = None) -> Any:
    """Wait for a child from ``start`` (killing it past ``timeout`` seconds); return the JSON
    it printed, or raise its error with its exit code."""
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()  # safe at any instant: the children commit by a last rename
        child.communicate()
        raise StoreError(f"{what} still running after {timeout:.0f} s: stopped") from None
    try:
        answer = json.loads(out) if out.strip() else None
    except ValueError:
        answer = None
    if child.returncode == 0 and isinstance(answer, dict) and "result" in answer:
        return answer["result"]
    if isinstance(answer, dict) and "error" in answer:
        raise ChildError(str(answer["error"]), int(answer.get("exit_code", 1)))
    lines = err.strip().splitlines() or [f"exit status {child.returncode}"]
    raise StoreError(f"{what} failed: {lines[-1]}")


def main(work: Callable[[list[str]], Any]) -> NoReturn:
    """Run ``work(argv)`` as a child's whole life: print its JSON result, or its error."""
    try:
        answer: dict[str, Any] = {"result": work(sys.argv[1:])}
        code = 0
    except AllocsnapError as e:
        answer = {"error": str(e), "exit_code": int(e.exit_code)}
        code = int(e.exit_code)
    print(json.dumps(answer))
    sys.exit(code)
