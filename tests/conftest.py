"""Shared fixtures: the captures in tests/data, a store folder, golden files and the /proc guard.

No test reads this machine's /proc: the autouse ``no_host_proc`` fixture points ``source``'s
``ALLOCINFO`` at a missing file and ``PROC`` at an empty folder, so a test that forgets
``--source`` fails instead of reading the host kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from allocsnap.kernel import source

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite tests/golden/ from the current output instead of comparing.",
    )


def data_path(name: str) -> Path:
    """Return ``tests/data/<name>``; a missing capture fails the test instead of skipping it."""
    path = DATA / name
    if not path.exists():
        pytest.fail(f"test data {path} is missing: tests must run on the captures in tests/data")
    return path


def real(kernel: str, boot: int, index: int) -> Path:
    """Return a real capture, e.g. ``real("6.12", 1, 3)`` for boot-1/snap-3.txt of 6.12.117."""
    folder = {"6.12": "6.12.117-allocsnap", "7.3": "7.3.4-allocsnap"}[kernel]
    return data_path(f"real/{folder}/boot-{boot}/snap-{index}.txt")


def public(prefix: str) -> Path:
    """Return the public excerpt whose file name starts with ``prefix`` (``"06"``, ``"16a"``)."""
    matches = sorted((DATA / "public").glob(f"{prefix}_*.txt"))
    if len(matches) != 1:
        pytest.fail(f"expected one public fixture {prefix}_*.txt in tests/data, found {matches}")
    return matches[0]


@pytest.fixture
def capture() -> Callable[[str], Path]:
    """Return ``data_path``: ``capture("real/7.3.4-allocsnap/boot-2/snap-0.txt")``."""
    return data_path


@pytest.fixture(autouse=True)
def no_host_proc(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from this machine's /proc."""
    empty = tmp_path_factory.mktemp("empty-proc")
    monkeypatch.setattr(source, "ALLOCINFO", empty / "allocinfo-does-not-exist")
    monkeypatch.setattr(source, "PROC", empty)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """Return a store path that does not exist yet."""
    return tmp_path / "store"


class Golden:
    """Compare text with ``tests/golden/<name>``, or rewrite it under ``--update-golden``."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, name: str, actual: str) -> None:
        path = GOLDEN / name
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        if not path.is_file():
            pytest.fail(f"golden file {path} is missing; run pytest --update-golden and review it")
        assert actual == path.read_text(encoding="utf-8")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Iterator[Golden]:
    """Return the golden-file checker."""
    yield Golden(bool(request.config.getoption("--update-golden")))
