"""compare-kernels: the Mann–Whitney test on a hand-computed example, and a generated fleet
(bench/kernel_fleet.py) where half the hosts run each kernel and three call sites regressed."""

from __future__ import annotations

import io
import math
from csv import DictReader
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from allocsnap import analysis
from allocsnap.analysis.kernel_files import read_source_map
from allocsnap.analysis.kernels import LineOptions
from allocsnap.cli import app
from allocsnap.errors import ExitCode, UsageError
from allocsnap.kernel import capture, source
from allocsnap.model import Snapshot
from allocsnap.store import writing
from bench import kernel_fleet
from tests.conftest import data_path, real

runner = CliRunner()
MAP = "kernel-map/6.12.117-to-7.3.4.tsv"


def _one_site_store(root: Path, values: dict[str, list[int]]) -> str:
    """Write one snapshot per host holding one real call site with the given bytes; return
    the site as its key."""
    snap = capture.snapshot(source.read_dump(str(real("6.12", 1, 1))))
    row = snap.samples.slice(0, 1)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    n = 0
    for kernel, series in values.items():
        for value in series:
            samples = row.set_column(
                row.schema.get_field_index("bytes"), "bytes", pa.array([value], pa.int64())
            )
            host = f"h{n}"
            meta = snap.meta._replace(
                snapshot_id=f"{n:012x}",
                host=host,
                kernel=kernel,
                taken_at=at + timedelta(minutes=n),
            )
            writing.write(root, Snapshot(capture.with_totals(meta, samples), samples))
            n += 1
    r = row.to_pylist()[0]
    return f"{r['file']}:{r['line']} func:{r['function']}"


def test_the_mann_whitney_test_of_a_hand_computed_example(tmp_path: Path) -> None:
    # GIVEN one call site on 3 hosts of kernel 1 (1, 2, 3 bytes) and 4 of kernel 2 (2, 4, 5, 6)
    key = _one_site_store(tmp_path, {"1.0": [1, 2, 3], "2.0": [2, 4, 5, 6]})

    # WHEN the kernels are compared
    result = analysis.compare_kernels(tmp_path, top_n=0)

    # THEN, by hand: pooled ranks 1, 2.5, 2.5, 4 | 5, 6, 7 with B's at 2.5, 5, 6, 7, so
    # U_B = 20.5 - 4*5/2 = 10.5 against a mean of 3*4/2 = 6; one tie of two gives
    # var = 3*4/12 * (8 - 6/(7*6)) = 7.857; z = (10.5 - 6 - 0.5) / sqrt(7.857) = 1.42701,
    # p = erfc(z / sqrt 2) = 0.15358; effect = 10.5/6 - 1 = 0.75
    [row] = result.rows.to_pylist()
    assert row["key"] == key
    assert (row["hosts_a"], row["hosts_b"], row["u_b"], row["effect"]) == (3, 4, 10.5, 0.75)
    assert (row["median_a"], row["median_b"], row["delta_bytes"]) == (2, 4.5, 2.5)
    assert row["z"] == pytest.approx(1.42701, abs=1e-5)
    assert row["p_value"] == pytest.approx(0.15358, abs=1e-5)
    assert row["q_value"] == pytest.approx(0.15358, abs=1e-5)  # one test: q = p
    assert row["verdict"] == ""


def mann_whitney(b: list[int], a: list[int]) -> tuple[float, float]:
    """Return U of ``b`` against ``a`` and the two-sided p-value of the normal approximation
    with the ties correction and a continuity correction of 0.5 (as scipy's ``mannwhitneyu``,
    ``method="asymptotic"``), in plain Python: midranks, then erfc."""
    pooled = sorted(b + a)
    rank = {v: (pooled.index(v) + 1 + len(pooled) - pooled[::-1].index(v)) / 2 for v in pooled}
    n1, n2, n = len(b), len(a), len(pooled)
    u = sum(rank[v] for v in b) - n1 * (n1 + 1) / 2
    ties = sum(t**3 - t for t in (pooled.count(v) for v in set(pooled)))
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (abs(u - n1 * n2 / 2) - 0.5) / sigma
    return u, math.erfc(z / math.sqrt(2))


def test_the_p_value_agrees_with_the_normal_approximation(tmp_path: Path) -> None:
    # GIVEN hosts with ties across the two kernels
    a, b = [5, 7, 7, 9, 12, 12, 15, 3], [8, 12, 14, 14, 20, 21, 7, 30, 16]
    _one_site_store(tmp_path, {"1.0": a, "2.0": b})

    # WHEN compared THEN U and p are those computed here (U 59, p 0.02947: what scipy 1.17.1
    # mannwhitneyu(b, a, method="asymptotic") gives, checked once in a scratch environment)
    [row] = analysis.compare_kernels(tmp_path, top_n=0).rows.to_pylist()
    u, p = mann_whitney(b, a)
    assert row["u_b"] == u
    assert row["p_value"] == pytest.approx(p, rel=1e-9)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, kernel_fleet.Truth]:
    """40 hosts, 20 on each kernel, three call sites 1.5 times larger on 7.3."""
    out = tmp_path_factory.mktemp("fleet") / "store"
    return out, kernel_fleet.generate(out, hosts=40, regressions=3, seed=19)


def test_compare_kernels_finds_exactly_the_planted_regressions(
    fleet: tuple[Path, kernel_fleet.Truth],
) -> None:
    # GIVEN the fleet, whose sites the generator paired through the source map
    store, truth = fleet
    lines = LineOptions(source_map=read_source_map(data_path(MAP)))

    # WHEN the kernels are compared with the same pairing
    result = analysis.compare_kernels(store, grouping=analysis.Grouping(), lines=lines, top_n=0)

    # THEN the sites that are more on 7.3 are exactly the planted ones, and none is less
    rows = result.rows.to_pylist()
    more = {r["key"] for r in rows if r["verdict"] == "more"}
    assert len(truth.regressed) == 3
    assert more == set(truth.regressed)
    assert not [r for r in rows if r["verdict"] == "less"]
    assert (result.kernel_a, result.kernel_b) == ("6.12.117-allocsnap", "7.3.4-allocsnap")
    assert len(result.hosts_a) == len(result.hosts_b) == 20


def test_the_heuristic_pairing_finds_them_too_among_its_mispairings(
    fleet: tuple[Path, kernel_fleet.Truth],
) -> None:
    # GIVEN the fleet; WHEN compared with the heuristic pairing alone
    store, truth = fleet
    result = analysis.compare_kernels(store, top_n=0)

    # THEN the planted sites are flagged; so are sites the heuristic paired otherwise than the
    # map (docs/kernels.md counts them): their bytes come from different code
    rows = result.rows.to_pylist()
    more = {r["key"] for r in rows if r["verdict"] == "more"}
    assert set(truth.regressed) <= more
    flagged = {r["key"] for r in rows if r["verdict"]}
    assert "mm/slub.c:3342 func:alloc_slab_page" in flagged  # paired with 6.12's :2478


def test_the_cli_exits_5_on_a_regression_and_writes_csv(
    fleet: tuple[Path, kernel_fleet.Truth],
) -> None:
    # GIVEN the fleet; WHEN compare-kernels runs as CSV with --fail-on-regression
    store, truth = fleet
    args = ["compare-kernels", "--store", str(store), "--source-map", str(data_path(MAP))]
    result = runner.invoke(app, [*args, "--format", "csv", "--fail-on-regression"])

    # THEN exit 5, and the planted sites lead the rows, as verdict 'more'
    assert result.exit_code == ExitCode.LEAK_FOUND, result.output
    rows = list(DictReader(io.StringIO(result.stdout)))
    assert {r["key"] for r in rows[:3]} == set(truth.regressed)
    assert [r["verdict"] for r in rows[:4]] == ["more", "more", "more", ""]
    assert math.isclose(float(rows[0]["effect"]), 1.0, abs_tol=0.05)


def test_a_store_of_one_kernel_says_what_to_name(tmp_path: Path) -> None:
    # GIVEN a store of one kernel
    _one_site_store(tmp_path, {"1.0": [1, 2]})

    # WHEN compared without names THEN a usage error lists the kernels
    with pytest.raises(UsageError, match=r"the store holds 1 kernels \(1.0\): name the two"):
        analysis.compare_kernels(tmp_path)
    result = runner.invoke(app, ["compare-kernels", "1.0", "9.9", "--store", str(tmp_path)])
    assert result.exit_code == ExitCode.NO_STORE
    assert result.stderr == f"Error: no snapshot of kernel '9.9' in {tmp_path} (kernels: 1.0)\n"
