"""docs/notebook.py runs from start to end and finds the ice leak, so the worked example cannot
rot; its numbers are checked against the excerpts' own values, read by hand."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "notebook.py"
ICE = "drivers/net/ethernet/intel/ice/ice_txrx.c:681 [ice] func:ice_alloc_mapped_page"
ICE_BYTES = [1105125376, 2544877568, 3341238272]  # day 0, 4, 6 in the excerpts 11, 12, 13


@pytest.mark.slow
def test_the_notebook_finds_the_ice_leak_and_draws_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an empty folder / WHEN the notebook runs there as a script
    monkeypatch.chdir(tmp_path)
    cells = runpy.run_path(str(NOTEBOOK), run_name="__main__")

    # THEN it built the store from the three dumps and found the ice driver growing every step
    assert cells["totals"]["bytes"].to_pylist() == [6915737680, 10210020400, 11334160560]
    finding = cells["finding"]
    assert finding["call_site"] == ICE
    assert finding["steps"] == 2
    assert finding["growth_bytes"] == ICE_BYTES[2] - ICE_BYTES[0]
    assert finding["bytes_per_hour"] == pytest.approx((ICE_BYTES[2] - ICE_BYTES[0]) / 144)
    assert cells["recent"]["bytes_per_hour"] == round((ICE_BYTES[2] - ICE_BYTES[1]) / 48)
    # AND leaks said why it reports nothing: three points are too few for a trend test
    [ice] = [row for row in cells["verdicts"].to_pylist() if row["key"] == ICE]
    assert ice["verdict"] == "too few points"
    # AND the chart is a PNG with the three steepest growers
    assert (tmp_path / "ice-leak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cells["top3"][0] == ICE and len(cells["top3"]) == 3
