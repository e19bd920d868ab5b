"""store/child.py: work run in a child process hands back its result, or its error with the
exit code the CLI's one error point reports, through real child processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from allocsnap.errors import ExitCode, StoreError
from allocsnap.store import child

CHILD = """
import sys, time
from allocsnap.errors import StoreNotFound
from allocsnap.store import child

def work(argv):
    if argv[0] == "ok":
        return {"doubled": 2 * int(argv[1])}
    if argv[0] == "missing":
        raise StoreNotFound("no snapshots in /nowhere")
    if argv[0] == "sleep":
        time.sleep(60)
    raise RuntimeError("a bug: the traceback is the fixer's")

if __name__ == "__main__":
    child.main(work)
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Return the name of a child module importable by the children this test starts."""
    (tmp_path / "child_under_test.py").write_text(CHILD)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{Path(__file__).parent.parent}")
    return "child_under_test"


def test_a_childs_result_comes_back(module: str) -> None:
    assert child.result(child.start(module, ["ok", "21"], "the test"), "the test") == {
        "doubled": 42
    }


def test_a_childs_error_keeps_its_exit_code(module: str) -> None:
    # WHEN the child raises StoreNotFound (exit code 4)
    with pytest.raises(child.ChildError) as raised:
        child.result(child.start(module, ["missing"], "the test"), "the test")

    # THEN the parent raises it again with its message and exit code
    assert str(raised.value) == "no snapshots in /nowhere"
    assert raised.value.exit_code == ExitCode.NO_STORE


def test_a_child_that_crashed_is_named_with_its_last_line(module: str) -> None:
    with pytest.raises(StoreError, match="the test failed: RuntimeError: a bug"):
        child.result(child.start(module, ["crash"], "the test"), "the test")


def test_a_child_past_its_time_is_stopped(module: str) -> None:
    process = child.start(module, ["sleep"], "the test")
    with pytest.raises(StoreError, match="still running after 1 s: stopped"):
        child.result(process, "the test", timeout=1)
    assert process.returncode is not None  # killed and reaped


def test_the_child_runs_the_interpreter_running_allocsnap(module: str) -> None:
    process = child.start(module, ["ok", "1"], "the test")
    assert isinstance(process.args, list) and process.args[0] == sys.executable
    child.result(process, "the test")
