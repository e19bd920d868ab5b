"""Fleet questions over a merged store: --host globs, --by host, on how many hosts a call site
leaks, and which hosts stand out. Five generated hosts share their call sites; the leaks of
bench/generate.py leak on web2 and db1 only (the others keep those sites flat)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from allocsnap import analysis
from allocsnap.cli import app
from allocsnap.errors import EpochWarning, ExitCode, StoreNotFound, UsageError
from allocsnap.store import merge
from bench.generate import SMALL, generate

pytestmark = pytest.mark.slow  # five generated hosts of 720 snapshots each, merged

HOSTS = {"web1": False, "web2": True, "web3": False, "web4": False, "db1": True}
LEAKY = {h for h, leaky in HOSTS.items() if leaky}
runner = CliRunner()


@dataclass(frozen=True)
class Fleet:
    """The merged store, the folder of the host stores, and the class of each call site."""

    merged: Path
    base: Path
    classes: dict[str, str]  # call site -> generated class, as on a leaking host

    def sites(self, *wanted: str) -> set[str]:
        return {site for site, c in self.classes.items() if c in wanted}

    def one(self, wanted: str) -> str:
        """Return a site of a class that is a plain pattern: a module's site has '[module]',
        which a pattern reads as a glob's character class."""
        return sorted(site for site in self.sites(wanted) if "[" not in site)[0]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    base = tmp_path_factory.mktemp("fleet")
    classes: dict[str, str] = {}
    for i, (host, leaky) in enumerate(HOSTS.items()):
        truth = generate(base / host, replace(SMALL, host=host, leaky=leaky, variant=i + 1))
        if leaky:
            classes = {truth.sites[t]: c for t, c in truth.classes.items()}
    merge.merge([base / h for h in HOSTS], base / "merged")
    return Fleet(base / "merged", base, classes)


def test_host_globs_pick_hosts(fleet: Fleet) -> None:
    store_dir = fleet.merged

    def hosts(*globs: str) -> set[str]:
        epochs = analysis.epochs(store_dir, analysis.Window(host=globs or None))
        return set(epochs.rows["host"].to_pylist())

    assert hosts() == set(HOSTS)
    assert hosts("web*") == {"web1", "web2", "web3", "web4"}
    assert hosts("web[12]", "db1") == {"web1", "web2", "db1"}
    assert hosts("db1") == {"db1"}
    with pytest.raises(StoreNotFound, match="no snapshots of a host matching 'mail\\*'"):
        analysis.epochs(store_dir, analysis.Window(host="mail*"))


def test_leaks_per_host_are_the_single_host_leaks(
    fleet: Fleet,
) -> None:
    # GIVEN the merged store, and each host's own store analysed alone
    merged, base = fleet.merged, fleet.base
    alone = []
    for host in HOSTS:
        rows = analysis.leaks(base / host, top_n=0).rows
        alone += rows.select(["key", "epoch", "bytes_per_hour", "growth_bytes"]).to_pylist()
    # WHEN the fleet is analysed at once
    together = analysis.leaks(merged, top_n=0).rows
    # THEN every series is exactly one host's: the same rows, never two hosts summed
    got = together.select(["key", "epoch", "bytes_per_hour", "growth_bytes"]).to_pylist()

    def order(r: dict[str, object]) -> tuple[str, str]:
        return (str(r["key"]), str(r["epoch"]))

    assert sorted(got, key=order) == sorted(alone, key=order)
    # AND hosts / leaking_hosts count the hosts on which each key leaks
    by_key: dict[str, set[str]] = {}
    for r in together.to_pylist():
        by_key.setdefault(r["key"], set()).add(r["host"])
    for r in together.to_pylist():
        assert r["hosts"] == len(by_key[r["key"]])
        assert r["leaking_hosts"] == sorted(by_key[r["key"]])


def test_fleet_leaks_name_exactly_the_leaking_hosts(
    fleet: Fleet,
) -> None:
    # GIVEN leaks planted on web2 and db1 only
    merged = fleet.merged
    true = fleet.sites("leak", "stairs")
    # WHEN asked per call site
    rows = analysis.leaks(merged, top_n=0, fleet=True).rows.to_pylist()
    # THEN the planted leaks are found on both leaking hosts and nowhere else
    found = {r["key"] for r in rows if r["leaking_hosts"] == sorted(LEAKY)}
    assert len(found & true) / len(true) >= 0.9
    assert not any(set(r["leaking_hosts"]) - LEAKY for r in rows if r["key"] in true)
    assert all(r["of_hosts"] == len(HOSTS) for r in rows)
    # AND the decoys (steps, sawtooth, ...) are not judged leaks on any host
    assert not {r["key"] for r in rows} & fleet.sites("step", "sawtooth", "hump", "steady")
    # AND the JSON carries the host lists
    cli = runner.invoke(app, ["leaks", "--store", str(merged), "--fleet", "-f", "json"])
    assert cli.exit_code == 0, cli.stderr
    doc = json.loads(cli.stdout)
    assert doc["window"]["hosts"] == sorted(HOSTS)
    assert doc["rows"][0]["leaking_hosts"] == sorted(LEAKY)


def test_top_by_host_is_each_host_first_and_last_total(
    fleet: Fleet,
) -> None:
    # GIVEN the host stores read with plain pyarrow: per boot, the total bytes of its first and
    # last snapshot
    merged, base = fleet.merged, fleet.base
    want = set()
    for host in HOSTS:
        snaps = pq.read_table(sorted(base.glob(f"{host}/snapshots/*/*/*.parquet")))
        # (compacted files name a host's snapshot by its time: snapshot_id is NULL there)
        samples = pq.read_table(
            sorted(base.glob(f"{host}/samples/*/*/*.parquet")), columns=["taken_at", "bytes"]
        )
        totals = samples.group_by("taken_at").aggregate([("bytes", "sum")])
        total = dict(
            zip(totals["taken_at"].to_pylist(), totals["bytes_sum"].to_pylist(), strict=True)
        )
        for boot in set(snaps["boot_id"].to_pylist()):
            rows = snaps.filter(pc.equal(snaps["boot_id"], boot)).sort_by("taken_at")
            times = rows["taken_at"].to_pylist()
            want.add((host, total[times[0]], total[times[-1]]))
    # WHEN top is grouped by host
    rows = analysis.top(merged, grouping=analysis.Grouping("host"), top_n=0).rows.to_pylist()
    # THEN one row per host and boot, with those totals
    assert {(r["key"], r["first_bytes"], r["last_bytes"]) for r in rows} == want
    assert all(r["key"] == r["host"] for r in rows)


def test_growth_and_history_stay_per_host(fleet: Fleet) -> None:
    merged, base = fleet.merged, fleet.base
    # GIVEN growth of one host alone
    alone = analysis.growth(base / "web2", top_n=0).rows
    # WHEN the fleet's growth is read for that host
    together = analysis.growth(merged, top_n=0).rows
    mine = together.filter(pc.equal(together["host"], "web2"))
    # THEN the medians are that host's own, not a mix of the fleet's
    columns = ["key", "median_a", "median_b", "delta_bytes"]
    assert sorted(mine.select(columns).to_pylist(), key=str) == sorted(
        alone.select(columns).to_pylist(), key=str
    )
    # AND by host, history's pattern picks hosts
    by_host = analysis.Grouping("host")
    rows = analysis.history(merged, "web*", grouping=by_host, max_points=None).rows
    assert set(rows["key"].to_pylist()) == {"web1", "web2", "web3", "web4"}
    assert rows.num_rows == 4 * SMALL.snapshots


def test_outliers_are_the_leaking_hosts(fleet: Fleet) -> None:
    merged = fleet.merged
    # GIVEN one planted leak, and one steady site
    leak = fleet.one("leak")
    steady = fleet.one("steady")
    # WHEN asked for outliers of each
    leaking = analysis.outliers(merged, leak, top_n=0)
    calm = analysis.outliers(merged, steady, top_n=0, every_host=True)
    # THEN the leaking hosts stand out by growth; nobody stands out on the steady site
    assert {r["host"] for r in leaking.rows.to_pylist()} == LEAKY
    assert all(r["rate_score"] >= 3.5 for r in leaking.rows.to_pylist())
    assert calm.found == 0
    assert calm.rows.num_rows == len(HOSTS)
    # AND the fleet median is the median of the hosts' last values, read independently
    last = [r["bytes"] for r in calm.rows.to_pylist()]
    assert calm.rows["median_bytes"][0].as_py() == int(sorted(last)[len(last) // 2])


def test_by_host_outside_a_window_is_refused() -> None:
    with pytest.raises(UsageError, match="--by host groups a window"):
        analysis.Grouping.parse("host")
    assert analysis.Grouping.parse("host", window=True) == analysis.Grouping("host")
    result = runner.invoke(app, ["show", "x.txt", "--by", "host"])
    assert result.exit_code == ExitCode.USAGE


def test_outliers_command_and_json(fleet: Fleet) -> None:
    merged = fleet.merged
    leak = fleet.one("leak")
    cli = runner.invoke(app, ["outliers", leak, "--store", str(merged), "-f", "json", "--all"])
    assert cli.exit_code == 0, cli.stderr
    doc = json.loads(cli.stdout)
    assert {r["host"] for r in doc["rows"] if r["outlier"]} == LEAKY
    assert len(doc["rows"]) == len(HOSTS)


def test_notebook_and_command_line_take_several_hosts(fleet: Fleet) -> None:
    # GIVEN the merged store opened for a notebook
    import allocsnap

    with allocsnap.open(fleet.merged) as db, pytest.warns(EpochWarning):
        # WHEN the analyses are asked for some hosts (reboots and module reloads are warned of)
        growth = db.growth(host=["web[12]", "db1"], top=0)
        outliers = db.outliers(fleet.one("leak"), every_host=True, top=0)
    # THEN they keep exactly those hosts
    assert set(growth["host"].to_pylist()) == {"web1", "web2", "db1"}
    assert set(outliers["host"].to_pylist()) == set(HOSTS)
    # AND --host repeats on the command line
    args = ["top", "--store", str(fleet.merged), "--host", "web*", "--host", "db1", "-f", "json"]
    cli = runner.invoke(app, [*args, "--by", "host", "--top", "0"])
    assert cli.exit_code == 0, cli.stderr
    doc = json.loads(cli.stdout)
    assert doc["window"]["hosts"] == ["db1", "web1", "web2", "web3", "web4"]
    assert {r["key"] for r in doc["rows"]} == set(HOSTS)


def test_references_resolve_among_the_chosen_hosts(fleet: Fleet) -> None:
    # GIVEN the hosts' snapshots, read with plain pyarrow from web3's own store
    snaps = pq.read_table(sorted(fleet.base.glob("web3/snapshots/*/*/*.parquet")))
    ordered = snaps.sort_by([("taken_at", "ascending"), ("snapshot_id", "ascending")])
    ids = ordered["snapshot_id"].to_pylist()
    # WHEN first and latest are resolved among web3's snapshots
    first = analysis.resolve(fleet.merged, "first", "web3")
    latest = analysis.resolve(fleet.merged, "latest", ["web3"])
    # THEN they are web3's own
    assert (first.snapshot_id, first.host) == (ids[0], "web3")
    assert latest.snapshot_id == ids[-1]
    assert len(analysis.snapshots(fleet.merged, ["web3", "db*"])) == 2 * SMALL.snapshots
    # AND a host that matches nothing says so
    with pytest.raises(StoreNotFound, match="no snapshot of a host matching 'mail'"):
        analysis.resolve(fleet.merged, "latest", "mail")
    cli = runner.invoke(
        app, ["diff", "first", "latest", "--host", "web3", "--store", str(fleet.merged)]
    )
    assert cli.exit_code == 0, cli.stderr
    assert f"before: {ids[0]}" in cli.stdout and f"after:  {ids[-1]}" in cli.stdout
