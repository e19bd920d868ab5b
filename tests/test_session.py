"""One session per command: the report and a notebook's Database list the store once and share
one connection, whatever analyses they run (before, the report listed it about 15 times)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import allocsnap
from allocsnap import analysis
from allocsnap.analysis import session
from allocsnap.present import page_data
from allocsnap.store import layout
from tests.test_database import real_store, real_store_built  # noqa: F401  (the fixtures)


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the store listings: every call of the real ``open_store`` is recorded, then run."""
    seen: list[str] = []
    real_open: Callable[..., Any] = layout.open_store

    def counting(where: Any) -> Any:
        seen.append(str(where))
        return real_open(where)

    monkeypatch.setattr(layout, "open_store", counting)
    return seen


def test_the_report_lists_the_store_once(real_store: Path, listings: list[str]) -> None:  # noqa: F811
    # WHEN the report's data is gathered (epochs, snapshots, leaks, their series, top, diff)
    data = page_data.gather(real_store)

    # THEN it read the window and the store was listed once for all of it
    assert len(data.snapshots) == 8 and data.store == real_store
    assert listings == [str(real_store)]


@pytest.mark.filterwarnings("ignore::allocsnap.errors.EpochWarning")  # the store crosses boots
def test_database_analyses_share_its_session(real_store: Path, listings: list[str]) -> None:  # noqa: F811
    # GIVEN a notebook's Database (it lists the store when opened)
    with allocsnap.open(real_store) as db:
        assert listings == [str(real_store)]

        # WHEN it runs several analyses
        db.diff("first", "latest")
        db.top()
        db.leaks()
        db.history("mm/*")
        db.snapshot("latest")

        # THEN none listed the store again: they ran on the Database's own connection
        assert listings == [str(real_store)]

        # AND refresh() lists it anew, for files written since
        db.refresh()
        assert listings == [str(real_store)] * 2


def test_an_analysis_given_a_location_opens_and_closes_its_own(
    real_store: Path,  # noqa: F811
    listings: list[str],
) -> None:
    # WHEN two analyses are given the store's path (snapshots() answers from the catalog,
    # store/catalog.py, without opening the store's views: not one of them)
    analysis.top(real_store)
    analysis.leaks(real_store, top_n=0)

    # THEN each listed it for itself
    assert listings == [str(real_store)] * 2


def test_a_session_reads_what_a_fresh_listing_reads(real_store: Path) -> None:  # noqa: F811
    # GIVEN a session and the same analysis run on a plain path
    with session.Session(real_store) as opened:
        shared = analysis.top(opened).rows

    # THEN the answer is the same
    assert shared.equals(analysis.top(real_store).rows)


def test_the_analyses_take_a_store_path_as_text(real_store: Path) -> None:  # noqa: F811
    # GIVEN a store named as a notebook names it: a string (the old code failed with
    # "'str' object has no attribute 'is_dir'")
    where = str(real_store)

    # WHEN the library's analyses read it by that name
    metas = analysis.snapshots(where)  # type: ignore[arg-type]
    leaks = analysis.leaks(where, top_n=0)  # type: ignore[arg-type]
    top = analysis.top(where, top_n=3)  # type: ignore[arg-type]

    # THEN they read the same store as through its Path: the eight captures written to it
    assert len(metas) == 8 == len(analysis.snapshots(real_store))
    assert leaks.found == analysis.leaks(real_store, top_n=0).found
    assert top.rows.to_pylist() == analysis.top(real_store, top_n=3).rows.to_pylist()
