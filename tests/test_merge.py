"""allocsnap merge: stores copied from several hosts brought into one, checked against the
captures (tests/oracle.py) and against the snapshots' own totals, killed and rerun."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import allocsnap
from allocsnap.errors import MergeConflict, StoreError, StoreNotFound, UsageError
from allocsnap.kernel import capture, source
from allocsnap.store import compaction, layout, merge, writing
from bench.generate import Config, generate
from tests import oracle
from tests.conftest import real

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOSTS = {
    "web1": [real("6.12", 1, i) for i in range(5)],
    "web2": [real("6.12", 3, i) for i in range(3)],
    "db1": [real("7.3", 2, i) for i in range(2)],
}


def import_host(root: Path, host: str, dumps: list[Path], first: int = 0, **labels: str) -> None:
    """Import ``dumps`` as ``host``'s snapshots, ten minutes apart from T0 (+ ``first`` steps)."""
    for i, dump in enumerate(dumps, start=first):
        raw = source.read_dump(str(dump))
        at = T0 + timedelta(minutes=10 * i)
        writing.write(root, capture.snapshot(raw, host=host, at=at, labels=labels))


def expected(hosts: dict[str, list[Path]]) -> dict[str, list[tuple[int, int]]]:
    """Return per host the (rows, bytes) of each capture, from the oracle, sorted."""
    return {
        host: sorted((len(rs), sum(r.bytes for r in rs)) for rs in map(oracle.rows, dumps))
        for host, dumps in hosts.items()
    }


def stored(root: Path) -> dict[str, list[tuple[int, int]]]:
    """Return per host the (rows, bytes) of each snapshot the store's views show, sorted."""
    with allocsnap.open(root) as db:
        rows = db.sql(
            "select host, count(*) as n, sum(bytes)::bigint as b from samples "
            "group by host, snapshot_id"
        ).fetchall()
    out: dict[str, list[tuple[int, int]]] = {}
    for host, n, b in rows:
        out.setdefault(host, []).append((n, b))
    return {host: sorted(v) for host, v in out.items()}


def consistent(root: Path) -> int:
    """Assert every visible snapshot has all its rows (its own rows and total_bytes say how
    many); return how many snapshots are visible."""
    if not (root / layout.MARKER).is_file():
        return 0
    try:
        db = allocsnap.open(root)
    except StoreNotFound:
        return 0
    with db:
        bad = db.sql(
            "select n.host, n.snapshot_id, n.rows, count(s.bytes), n.total_bytes, sum(s.bytes) "
            "from snapshots as n left join samples as s using (host, snapshot_id) "
            "group by all having count(s.bytes) != n.rows or sum(s.bytes) != n.total_bytes"
        ).fetchall()
        assert bad == []
        ((count,),) = db.sql("select count(*) from snapshots").fetchall()
    return int(count)


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Return every file of a store with its size and mtime."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and p.name != layout.WRITER_LOCK
    }


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Return one store per host, each made by importing that host's real captures."""
    base = tmp_path_factory.mktemp("hosts")
    for host, dumps in HOSTS.items():
        import_host(base / host, host, dumps)
    return {host: base / host for host in HOSTS}


@pytest.mark.slow
def test_merge_brings_every_snapshot_of_every_host(hosts: dict[str, Path], tmp_path: Path) -> None:
    # GIVEN three host stores made from real captures
    dest = tmp_path / "fleet"
    # WHEN they are merged
    summary = merge.merge(list(hosts.values()), dest)
    # THEN every capture is in the merged store, under its host, with the oracle's rows and bytes
    assert stored(dest) == expected(HOSTS)
    assert {h: s.snapshots_new for h, s in summary.hosts.items()} == {
        h: len(d) for h, d in HOSTS.items()
    }
    assert summary.snapshots_present == 0
    # AND the summary's bytes are the bytes of the data files the sources hold
    data = sum(
        p.stat().st_size
        for src in hosts.values()
        for p in [*src.glob("samples/*/*/*.parquet"), *src.glob("snapshots/*/*/*.parquet")]
    )
    # (a tag set's file is named by its content: one shared by two hosts is copied once)
    tags = {p.name: p.stat().st_size for src in hosts.values() for p in src.glob("tags/*.parquet")}
    assert summary.tag_files == len(tags)
    assert summary.bytes == data + sum(tags.values())
    assert consistent(dest) == 10


@pytest.mark.slow
def test_merging_twice_adds_nothing_and_touches_nothing(
    hosts: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN a merged store
    dest = tmp_path / "fleet"
    merge.merge(list(hosts.values()), dest)
    before = listing(dest)
    # WHEN the same sources are merged again (one of them twice in the same run)
    summary = merge.merge([*hosts.values(), hosts["web1"]], dest)
    # THEN nothing is written and every snapshot is counted as already there
    assert listing(dest) == before
    assert summary.snapshots_new == 0 and summary.files == 0 and summary.bytes == 0
    assert summary.snapshots_present == 10 + 5
    assert stored(dest) == expected(HOSTS)


@pytest.mark.slow
def test_dry_run_writes_nothing_and_says_what_a_merge_does(
    hosts: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN no destination yet
    dest = tmp_path / "fleet"
    # WHEN a dry run, then the merge itself
    dry = merge.merge(list(hosts.values()), dest, dry_run=True)
    assert not dest.exists()
    done = merge.merge(list(hosts.values()), dest)
    # THEN the dry run predicted the same numbers
    assert dry.dry_run and not done.dry_run
    for field in ("snapshots_new", "snapshots_present", "files", "bytes", "tag_files"):
        assert getattr(dry, field) == getattr(done, field), field


@pytest.mark.slow
def test_a_source_compacted_since_the_last_merge_adds_only_its_new_snapshots(
    tmp_path: Path,
) -> None:
    # GIVEN web1's first three snapshots merged, then two more taken and the hour compacted
    src, dest = tmp_path / "web1", tmp_path / "fleet"
    dumps = HOSTS["web1"]
    import_host(src, "web1", dumps[:3])
    merge.merge([src], dest)
    import_host(src, "web1", dumps[3:], first=3)
    compaction.compact(src, now=T0 + timedelta(days=2), days=False, grace_s=0)
    assert [p.name for p in src.glob("snapshots/*/*/*.parquet")] == ["h09-g1.parquet"]
    # WHEN merged again
    summary = merge.merge([src], dest)
    # THEN the two new snapshots arrive, written apart from the three already there
    assert (summary.snapshots_new, summary.snapshots_present, summary.rewritten) == (2, 3, 1)
    assert stored(dest) == expected({"web1": dumps})
    # AND the destination compacts without counting a snapshot twice
    compaction.compact(dest, now=T0 + timedelta(days=2), grace_s=0)
    assert stored(dest) == expected({"web1": dumps})
    assert consistent(dest) == 5
    # AND a third merge, now that both sides are compacted differently, adds nothing
    assert merge.merge([src], dest).snapshots_new == 0
    assert stored(dest) == expected({"web1": dumps})


@pytest.mark.slow
def test_a_destination_compacted_since_the_last_merge_takes_a_recompacted_source(
    tmp_path: Path,
) -> None:
    # GIVEN two snapshots merged and compacted in the destination, and the source later
    # holding them and three more in its own compacted hour of the same generation
    src, dest = tmp_path / "web1", tmp_path / "fleet"
    dumps = HOSTS["web1"]
    import_host(src, "web1", dumps[:2])
    merge.merge([src], dest)
    later = T0 + timedelta(days=2)
    compaction.compact(dest, now=later, days=False, grace_s=0)
    import_host(src, "web1", dumps[2:], first=2)
    compaction.compact(src, now=later, days=False, grace_s=0)
    names = {p.name for p in (dest / "snapshots").rglob("*.parquet")}
    assert names == {p.name for p in (src / "snapshots").rglob("*.parquet")} == {"h09-g1.parquet"}
    # WHEN merged
    merge.merge([src], dest)
    # THEN the name clash is no problem: each snapshot once
    assert stored(dest) == expected({"web1": dumps})
    assert consistent(dest) == 5


def test_only_committed_data_is_copied(tmp_path: Path) -> None:
    # GIVEN a source with a temp file, samples no snapshots row commits, and files that a
    # compaction superseded but has not deleted yet
    src, dest = tmp_path / "web2", tmp_path / "fleet"
    import_host(src, "web2", HOSTS["web2"])
    compaction.compact(src, now=T0 + timedelta(days=2), days=False, grace_s=3600)
    partition = next(src.glob("samples/*/*"))
    some = next(partition.glob("*.parquet"))
    shutil.copy(some, partition / "0123456789ab.parquet")
    shutil.copy(some, partition / f".{some.name}.999.tmp")
    # WHEN merged
    summary = merge.merge([src], dest)
    # THEN only the compacted pair is copied, and the rest is counted as left out
    assert sorted(p.name for p in dest.rglob("*.parquet") if "tags" not in p.parts) == [
        "h09-g1.parquet",
        "h09-g1.parquet",
    ]
    assert summary.left_out == {
        "superseded snapshots files": 3,
        "temp files": 1,
        "uncommitted samples files": 1,  # the stray copy (superseded ones go with their pair)
    }
    assert stored(dest) == expected({"web2": HOSTS["web2"]})


def test_a_conflicting_snapshot_stops_the_merge_before_any_write(tmp_path: Path) -> None:
    # GIVEN two stores holding the same dump as the same host and time, labelled differently
    # (the label is not part of the snapshot id), and a third, innocent store
    dump = HOSTS["web1"][:1]
    a, b, c, dest = (tmp_path / n for n in ("a", "b", "c", "fleet"))
    import_host(a, "web1", dump, ticket="1")
    import_host(b, "web1", dump, ticket="2")
    import_host(c, "db1", HOSTS["db1"])
    merge.merge([a], dest)
    before = listing(dest)
    # WHEN the other two are merged
    with pytest.raises(MergeConflict) as e:
        merge.merge([c, b], dest)
    # THEN the message names the snapshot, the host and what differs; nothing was written
    assert "host web1" in str(e.value) and "(labels)" in str(e.value)
    assert "differs from the one in" in str(e.value)
    assert listing(dest) == before


def test_sources_that_cannot_be_merged_are_refused_clearly(
    hosts: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN a folder that is not a store, a store of a newer allocsnap, and the destination
    plain = tmp_path / "plain"
    plain.mkdir()
    newer = tmp_path / "newer"
    shutil.copytree(hosts["db1"], newer)
    (newer / layout.MARKER).write_text(json.dumps({"schema_version": 99}))
    dest = tmp_path / "fleet"
    merge.merge([hosts["db1"]], dest)
    # THEN each is refused with what to do
    with pytest.raises(StoreNotFound, match="plain is not an allocsnap store .*copied from"):
        merge.merge([hosts["web1"], plain], dest)
    with pytest.raises(StoreError, match="newer allocsnap .*upgrade allocsnap"):
        merge.merge([newer], dest)
    with pytest.raises(UsageError, match="destination store itself"):
        merge.merge([dest], dest)
    assert stored(dest) == expected({"db1": HOSTS["db1"]})


@pytest.mark.slow
def test_generated_fleet_merges_to_the_sum_of_its_hosts(tmp_path: Path) -> None:
    # GIVEN three generated hosts (one file pair per ten snapshots), same call sites
    config = Config(tags=200, snapshots=60, rows_per_file=10, seed=5)
    sources = []
    for i, host in enumerate(("gen1", "gen2", "gen3")):
        sources.append(tmp_path / host)
        generate(sources[-1], Config(**{**vars(config), "host": host, "variant": i + 1}))
    dest = tmp_path / "fleet"
    # WHEN merged
    summary = merge.merge(sources, dest)
    # THEN every generated sample is there, counted with plain pyarrow over the sources
    want = {}
    for src in sources:
        files = sorted(src.glob("samples/*/*/*.parquet"))
        t = pq.read_table(files, columns=["bytes"]) if files else None
        assert t is not None
        want[src.name] = (t.num_rows, sum(t["bytes"].to_pylist()))
    with allocsnap.open(dest) as db:
        got = db.sql(
            "select host, count(*), sum(bytes)::bigint from samples group by host"
        ).fetchall()
    assert {h: (n, b) for h, n, b in got} == want
    assert summary.snapshots_new == 3 * 60
    # AND the tag files, one name in every source, are there once: same content
    assert [p.name for p in (dest / "tags").glob("*.parquet")] == ["generated.parquet"]


def _merge_process(sources: list[Path], dest: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "allocsnap", "merge", *map(str, sources), "--store", str(dest)]
    return subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


@pytest.mark.slow
def test_a_killed_merge_leaves_the_destination_readable_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    # GIVEN four generated hosts of 18 file pairs each
    config = Config(tags=300, snapshots=180, rows_per_file=10, seed=11)
    sources = []
    for i in range(4):
        sources.append(tmp_path / f"node{i}")
        generate(sources[-1], Config(**{**vars(config), "host": f"node{i}", "variant": i + 1}))
    reference = tmp_path / "reference"
    merge.merge(sources, reference)
    dest = tmp_path / "fleet"
    # WHEN a merge is killed with SIGKILL at random moments, four times: once it has committed a
    # random number of the 72 snapshots files, or (the kernel's choice) a little more; it is
    # stopped first (SIGSTOP), so that the files it had committed are known when it dies
    rng = random.Random(20261126)
    seen = []
    cut = 0
    for _ in range(4):
        target = rng.randint(min(len(committed(dest)) + 1, 71), 71)
        child = _merge_process(sources, dest)
        while child.poll() is None and len(committed(dest)) < target:
            time.sleep(0.002)
        running = child.returncode is None  # not reaped: running, or a zombie that just ended
        if running:
            os.killpg(child.pid, signal.SIGSTOP)
        frozen = committed(dest)
        if running:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        cut += child.returncode == -signal.SIGKILL and len(frozen) < 72
        # THEN each time every visible snapshot is whole, and exactly those of the snapshots
        # files committed before the kill are visible
        seen.append(consistent(dest))
        assert seen[-1] == len(set(pq.read_table(frozen, columns=["snapshot_id"])["snapshot_id"]))
    # AND a last run completes it: the same as a merge that was never interrupted
    child = _merge_process(sources, dest)
    assert child.wait() == 0
    assert stored(dest) == stored(reference)
    assert consistent(dest) == 4 * 180
    assert cut >= 1  # merges were stopped, then killed, with files of theirs still to commit
    assert seen == sorted(seen)  # a killed merge never loses what an earlier one committed


def committed(root: Path) -> list[Path]:
    """Return the snapshots files of a store (the commit points)."""
    return list(root.glob("snapshots/*/*/*.parquet"))


def test_merge_command_prints_a_row_per_host_and_exits_by_the_error(
    hosts: dict[str, Path], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from allocsnap.cli import app
    from allocsnap.errors import ExitCode

    runner = CliRunner()
    dest = str(tmp_path / "fleet")
    # WHEN merged from the command line, as JSON
    result = runner.invoke(app, ["merge", *map(str, hosts.values()), "--store", dest, "-f", "json"])
    # THEN one row per host, the totals beside them
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [(r["host"], r["snapshots_new"]) for r in doc["rows"]] == [
        ("db1", 2),
        ("web1", 5),
        ("web2", 3),
    ]
    assert doc["snapshots_new"] == 10 and doc["dry_run"] is False
    # AND a folder that is not a store is one line on stderr, exit code 4
    result = runner.invoke(app, ["merge", str(tmp_path), "--store", dest])
    assert result.exit_code == ExitCode.NO_STORE
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {tmp_path} is not an allocsnap store")
