"""``show`` and ``diff`` of store references answered from the catalog and DuckDB alone
(allocsnap/oneshot/stored.py) against the normal path (pyarrow, analysis.show and diff).

Every answer is compared, through the command line, with the normal path's on the same store
(the fast path turned away): stdout, stderr and the exit code. The store is written for real:
the recorder's write path, ``allocsnap import`` of real captures of two kernels (named, and
not), a snapshot that counted nothing, profiling off, a filtered snapshot, labels, names used
twice, an hour compacted (snapshot ids NULL in its samples file) and a late hot file after
it. Where the fast path must not answer (a tie, no such snapshot, a damaged file, a link in
the store, a remote store, two filters, two kernels), it is checked that it declined and
that the normal path's words come out.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from allocsnap import analysis, oneshot
from allocsnap.cli import app
from allocsnap.kernel import capture, source
from allocsnap.model import Filter, Snapshot
from allocsnap.oneshot import stored
from allocsnap.present.render import Format
from allocsnap.store import catalog, compaction, single_file, views, writing
from allocsnap.store.remote import location
from tests.conftest import real

runner = CliRunner()
T0 = datetime(2026, 11, 25, 13, 40, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
ROOT = Path(__file__).parent.parent
ARGS = [
    [],
    ["--by", "dir:2", "-n", "5"],
    ["--sort", "calls", "--by", "module", "-f", "json"],
    ["--sort", "tag", "-n", "0", "-f", "csv"],
    ["--by", "function", "-f", "markdown"],
    ["--by", "file", "--top", "3", "-f", "json"],
]


def _snap(kernel: str, boot: int, index: int, at: datetime, host: str, **given: Any) -> Snapshot:
    raw = source.read_dump(str(real(kernel, boot, index)))
    profiling = given.pop("profiling", None)
    if profiling is not None:
        raw = replace(raw, profiling=profiling)
    return capture.snapshot(raw, host=host, at=at, **given)


def _import(root: Path, host: str, at: datetime, *dumps: Path, kernel: str = "") -> None:
    args = ["import", *map(str, dumps), "--host", host, "--at", at.isoformat(), "--every", "1m"]
    args += ["--kernel", kernel] if kernel else []
    result = runner.invoke(app, [*args, "--store", str(root)])
    assert result.exit_code == 0, result.stderr


def _fill(root: Path, zeros: Path) -> None:
    """Write the store the module's tests read (see the docstring)."""
    for i in range(5):
        name = {1: "before", 3: "before", 4: "after"}.get(i)
        writing.write(root, _snap("6.12", 1, i, T0 + 2 * i * MINUTE, "vm1", name=name))
    writing.write(root, _snap("6.12", 1, 2, T0 + 3 * MINUTE, "vm2", labels={"role": "db"}))
    writing.write(root, _snap("6.12", 1, 3, T0 + 9 * MINUTE, "vm2", profiling=0))
    seven = sorted(real("7.3", 2, 0).parent.glob("snap-*.txt"))
    _import(root, "web1", T0 + 20 * MINUTE, *seven)
    _import(root, "web2", T0 + 30 * MINUTE, zeros)
    _import(root, "web3", T0 + 40 * MINUTE, real("6.12", 3, 1), kernel="6.12.117-allocsnap")
    _import(root, "web3", T0 + 41 * MINUTE, seven[1], kernel="7.3.4-allocsnap")
    writing.write(root, _snap("6.12", 1, 4, T0 + 45 * MINUTE, "vm3", keep=Filter(file="mm/*")))
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    late = _snap("6.12", 3, 0, T0 + timedelta(hours=1, minutes=5), "vm1", name="late")
    writing.write(root, late)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stored")
    zeros = folder / "zeros.txt"
    lines = real("6.12", 1, 0).read_text().splitlines()
    zeros.write_text(
        "\n".join(lines[:2] + [f"        0        0 {ln.split(None, 2)[2]}" for ln in lines[2:]])
        + "\n"
    )
    root = folder / "store"
    _fill(root, zeros)
    # the hour compacted into one file of NULL snapshot ids, and hot files beside it
    (compacted,) = (root / "samples" / "host=vm1").rglob("h13-*.parquet")
    assert pq.read_table(compacted, columns=["snapshot_id"])["snapshot_id"].null_count > 0
    assert len(list((root / "samples").rglob("*.parquet"))) > 2
    return root


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Record what the fast path answered, call by call."""
    said: list[bool] = []

    def spy(answer: Any) -> Any:
        def answered(*args: Any, **kwargs: Any) -> bool:
            said.append(answer(*args, **kwargs))
            return said[-1]

        return answered

    monkeypatch.setattr(stored, "show", spy(stored.show))
    monkeypatch.setattr(stored, "diff", spy(stored.diff))
    yield said


def both_ways(
    monkeypatch: pytest.MonkeyPatch, root: Path, *args: str, command: str = "show"
) -> tuple[Result, Result]:
    """Run ``COMMAND ARGS --store ROOT`` as it is, then with the fast path turned away."""
    argv = [command, *args, "--store", str(root)]
    fast = runner.invoke(app, argv)
    with monkeypatch.context() as m:
        m.setattr(stored, command, lambda *_a, **_k: False)
        normal = runner.invoke(app, argv)
    return fast, normal


def outcome(result: Result) -> tuple[int, str, str]:
    return result.exit_code, result.stdout, result.stderr


def references(root: Path) -> list[str]:
    """Every way to name each snapshot: first, latest, names, ids and prefixes, times."""
    refs = ["first", "latest"]
    for m in analysis.snapshots(root):
        refs += [m.snapshot_id, m.snapshot_id[:5], (m.taken_at + timedelta(seconds=30)).isoformat()]
        refs += [m.name] if m.name and m.name != "before" else []
    return refs


# -- the same answers ---------------------------------------------------------------------------


@pytest.mark.slow
def test_every_reference_shows_what_the_normal_path_shows(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool]
) -> None:
    assert len(analysis.snapshots(store)) == 14  # as _fill wrote them
    refs = references(store)
    for ref in refs:
        fast, normal = both_ways(monkeypatch, store, ref)
        assert normal.exit_code == 0, (ref, normal.stderr)
        assert outcome(fast) == outcome(normal), ref
    # AND the fast path answered every one of them
    assert answers == [True] * len(refs)


@pytest.mark.slow
@pytest.mark.parametrize("args", ARGS, ids=lambda a: " ".join(a) or "defaults")
@pytest.mark.parametrize("ref", ["first", "latest", "after", "late"])
def test_every_grouping_sort_and_format_is_the_normal_paths(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool], ref: str, args: list[str]
) -> None:
    fast, normal = both_ways(monkeypatch, store, ref, *args)
    assert normal.exit_code == 0, normal.stderr
    assert outcome(fast) == outcome(normal)
    assert answers == [True]


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_profiling_off_and_counted_nothing_are_noted_as_the_normal_path_notes_them(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool], fmt: str
) -> None:
    metas = analysis.snapshots(store)
    off = next(m for m in metas if m.profiling == 0 and m.host == "vm2")
    zeros = next(m for m in metas if m.host == "web2")
    for meta, said in ((off, "counters frozen"), (zeros, "it counted nothing")):
        fast, normal = both_ways(monkeypatch, store, meta.snapshot_id, "-f", fmt)
        assert said in normal.stderr
        assert outcome(fast) == outcome(normal)
    assert answers == [True, True]


def test_a_new_process_answers_without_pyarrow_numpy_typer_or_duckdbs_python_layer(
    store: Path,
) -> None:
    # GIVEN the store's catalog written (a rebuild reads the snapshots files with pyarrow)
    assert catalog.open_catalog(store) is not None
    # WHEN `allocsnap show latest` runs as a new process, its imports timed
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "allocsnap", "show", "latest"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "ALLOCSNAP_STORE": str(store)},
    )
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    # THEN it printed the normal path's report, and imported none of them
    with pytest.MonkeyPatch.context() as m:
        m.setattr(stored, "show", lambda *_a, **_k: False)
        normal = runner.invoke(app, ["show", "latest", "--store", str(store)])
    assert (done.returncode, done.stdout) == (0, normal.stdout)
    # DuckDB's engine, without the package's relational API written in Python over it
    assert "_duckdb" in imported
    assert not imported & {"duckdb", "pyarrow", "numpy", "pandas", "typer", "allocsnap.analysis"}
    assert not imported & {"dataclasses", "inspect"}  # 10 ms: its records are named tuples


@pytest.mark.parametrize(
    "argv",
    [
        ["diff", "first", "latest"],
        ["show", "latest", "-n", "0"],
        ["ls"],
        ["show", "latest", "-n", "0", "--accurate"],  # not answered here: typer's path
    ],
)
def test_an_answer_that_cannot_be_written_is_an_error_and_leaves_no_spill_folder(
    store: Path, tmp_path: Path, argv: list[str]
) -> None:
    # GIVEN the store's catalog written, and a folder of its own for temporary files
    assert catalog.open_catalog(store) is not None
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    command = [sys.executable, "-m", "allocsnap", *argv, "--store", str(store)]
    # WHEN the command answers into a full disk (Linux's /dev/full), and then as usual
    with open("/dev/full", "w") as full:
        failed = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, env=env)
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    # THEN the first says why it failed, in one line after its warnings, and exits 1 (a large
    # report raised a traceback, a small one failed in the interpreter's exit flush: 120)
    assert failed.returncode == 1
    said = failed.stderr.splitlines()
    assert said[-1] == "Error: writing the output failed: No space left on device"
    assert not [line for line in said if "Traceback" in line or "Exception" in line]
    # AND the second printed all of its answer
    assert done.returncode == 0
    assert done.stdout.endswith("\n") and len(done.stdout.splitlines()) > 3
    # AND neither left DuckDB's spill folder behind (removed at exit: cli._leave runs it)
    assert list(temp.iterdir()) == []


def test_a_snapshot_written_after_the_catalog_is_shown_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answers: list[bool]
) -> None:
    # GIVEN a store whose catalog is written
    root = tmp_path / "store"
    writing.write(root, _snap("6.12", 1, 0, T0, "vm1"))
    assert catalog.open_catalog(root) is not None
    # WHEN a snapshot is written after it
    newer = _snap("6.12", 1, 1, T0 + MINUTE, "vm1", name="newer")
    writing.write(root, newer)
    # THEN `show latest` shows it, as the normal path does
    fast, normal = both_ways(monkeypatch, root, "latest", "-f", "json")
    assert newer.meta.snapshot_id in normal.stdout
    assert outcome(fast) == outcome(normal)
    assert answers == [True]


DIFF_ARGS = [
    [],
    ["--by", "module", "-f", "json"],
    ["--min-delta", "1K", "-f", "csv"],
    ["-n", "0", "--by", "dir:1"],
    ["--by", "file", "-f", "markdown"],
]


def ids_of(root: Path, host: str) -> list[str]:
    """Return a host's snapshot ids, oldest first."""
    return [m.snapshot_id for m in analysis.snapshots(root, host)]


def diff_pairs(root: Path) -> list[tuple[str, str]]:
    """Pairs the fast path answers: the usual ones, one snapshot twice, the later one older,
    an hour or more apart (a Δ/hour column), profiling off, a side that counted nothing,
    another host, and two imported dumps of one kernel unnamed."""
    vm2, web1, web2 = (ids_of(root, host) for host in ("vm2", "web1", "web2"))
    return [
        ("first", "latest"),
        ("before", "after"),
        ("after", "late"),
        ("first", "late"),
        ("latest", "first"),
        ("after", "after"),
        (vm2[0], vm2[1]),
        (web2[0], web1[0]),
        (web1[0], web1[1]),
    ]


@pytest.mark.slow
def test_diff_of_store_references_is_the_normal_paths_in_every_format(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool]
) -> None:
    pairs = diff_pairs(store)
    for (before, after), args in itertools.product(pairs, DIFF_ARGS):
        fast, normal = both_ways(monkeypatch, store, before, after, *args, command="diff")
        assert normal.exit_code == 0, (before, after, args, normal.stderr)
        assert outcome(fast) == outcome(normal), (before, after, args)
    # AND the fast path answered every one, with what each pair is there for
    assert answers == [True] * len(pairs) * len(DIFF_ARGS)
    said = [both_ways(monkeypatch, store, *pair, "-f", "json", command="diff") for pair in pairs]
    stderr = "".join(normal.stderr for _, normal in said)
    for warning in (
        "the 'after' snapshot is older",
        "both sides are the same snapshot",
        "profiling was off (vm.mem_profiling=0) at the earlier snapshot",
        "the earlier snapshot",  # ... counted nothing
        "different hosts",
    ):
        assert warning in stderr
    _, hours_apart = both_ways(monkeypatch, store, "first", "late", command="diff")
    assert "Δ/hour" in hours_apart.stdout


def test_a_new_process_diffs_without_pyarrow_numpy_or_typer(store: Path) -> None:
    assert catalog.open_catalog(store) is not None  # written, as above
    argv = ["diff", "first", "latest", "--by", "module", "--store", str(store)]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "allocsnap", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(stored, "diff", lambda *_a, **_k: False)
        normal = runner.invoke(app, argv)
    assert (done.returncode, done.stdout) == (0, normal.stdout)
    assert "_duckdb" in imported
    assert not imported & {"duckdb", "pyarrow", "numpy", "pandas", "typer", "allocsnap.analysis"}
    assert not imported & {"dataclasses", "inspect"}  # 10 ms: its records are named tuples


@pytest.mark.parametrize("args", [["show", "latest"], ["show", "nosuch"], ["diff", "first", "x"]])
def test_the_connection_opened_beside_the_catalog_is_closed_answered_or_not(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool], args: list[str]
) -> None:
    # GIVEN the connections the fast path opens in a thread while it reads the catalog
    opened: list[views.Opening] = []

    class Recorded(views.Opening):
        def __init__(self) -> None:
            super().__init__()
            opened.append(self)

    monkeypatch.setattr(views, "Opening", Recorded)
    # WHEN a reference is shown or compared, or names no snapshot (the normal path says so)
    runner.invoke(app, [*args, "--store", str(store)])
    # THEN one was opened, its thread has ended and it is closed, answered or not
    assert answers == [args[1] == "latest"]
    (opening,) = opened
    assert not any(t.name == "allocsnap-connect" for t in threading.enumerate())
    with pytest.raises(duckdb.ConnectionException):
        opening.connection().execute("select 1")


@pytest.mark.parametrize(
    "args",
    [
        ["show", "latest", "--host", "vm2"],
        ["show", "first", "--host", "web*", "-f", "json"],
        ["show", "before", "--host", "v?1"],
        ["diff", "first", "latest", "--host", "vm1"],
        ["diff", "first", "latest", "--host", "web1", "--host", "web2", "-f", "csv"],
    ],
)
def test_host_narrows_the_references_as_on_the_normal_path(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool], args: list[str]
) -> None:
    fast, normal = both_ways(monkeypatch, store, *args[1:], command=args[0])
    assert normal.exit_code == 0, normal.stderr
    assert outcome(fast) == outcome(normal)
    assert answers == [True]
    # AND the snapshot shown is of those hosts (the JSON says which)
    if "json" in args:
        assert json.loads(normal.stdout)["snapshot"]["host"].startswith("web")


@pytest.mark.parametrize("host", ["nohost", "[v]m1", "[[:alpha:]]m1"])
def test_a_host_that_matches_none_or_a_bracket_glob_is_the_normal_paths(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool], host: str
) -> None:
    fast, normal = both_ways(monkeypatch, store, "latest", "--host", host)
    assert outcome(fast) == outcome(normal)
    assert (normal.exit_code == 0) == (host != "nohost")
    assert answers == [False]


# -- where the fast path declines, the normal path's words ---------------------------------------


@pytest.mark.parametrize("ref", ["nosuch", "before", "2026-13-45", "2000-01-01", "0000"])
def test_a_reference_naming_none_or_several_is_the_normal_paths_to_refuse(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool], ref: str
) -> None:
    # "before" names two snapshots: the newer one is shown, on both paths
    fast, normal = both_ways(monkeypatch, store, ref)
    assert outcome(fast) == outcome(normal)
    assert answers == [ref == "before"]
    assert (normal.exit_code == 0) == (ref == "before")


def test_a_tie_in_time_is_the_normal_paths_to_refuse(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answers: list[bool]
) -> None:
    # GIVEN two hosts' snapshots at the newest instant
    root = tmp_path / "store"
    for host in ("vm1", "vm2"):
        writing.write(root, _snap("6.12", 1, 0, T0, host))
    fast, normal = both_ways(monkeypatch, root, "latest")
    assert normal.exit_code != 0 and "ambiguous" in normal.stderr
    assert outcome(fast) == outcome(normal)
    assert answers == [False]
    # AND --host names one of them: answered, as the normal path answers it
    fast, normal = both_ways(monkeypatch, root, "latest", "--host", "vm2", "-f", "json")
    assert json.loads(normal.stdout)["snapshot"]["host"] == "vm2"
    assert outcome(fast) == outcome(normal)
    assert answers == [False, True]


def test_a_samples_file_that_disagrees_with_its_row_is_the_normal_paths_to_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answers: list[bool]
) -> None:
    # GIVEN two hot snapshots, the later one's samples file replaced by the earlier one's
    root = tmp_path / "store"
    first = writing.write(root, _snap("6.12", 1, 0, T0, "vm1"))
    second = writing.write(root, _snap("6.12", 1, 4, T0 + MINUTE, "vm1"))
    samples = [Path(str(p).replace("/snapshots/", "/samples/")) for p in (first, second)]
    catalog.open_catalog(root)
    shutil.copyfile(samples[0], samples[1])
    # WHEN the later one is shown, THEN the fast path declines and the normal path says why
    fast, normal = both_ways(monkeypatch, root, "latest")
    assert normal.exit_code != 0 and "where its row says" in normal.stderr
    assert outcome(fast) == outcome(normal)
    assert answers == [False]


def test_a_link_planted_in_the_store_is_never_read_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answers: list[bool]
) -> None:
    # GIVEN a store whose newest day's samples folder is a link to another store's
    root, other = tmp_path / "store", tmp_path / "other"
    writing.write(root, _snap("6.12", 1, 0, T0, "vm1"))
    path = writing.write(root, _snap("6.12", 1, 1, T0 + MINUTE, "vm1"))
    writing.write(other, _snap("6.12", 1, 4, T0 + MINUTE, "vm1"))
    catalog.open_catalog(root)
    day = Path(str(path).replace("/snapshots/", "/samples/")).parent
    shutil.rmtree(day)
    day.symlink_to(other / "samples" / day.parent.name / day.name)
    # THEN the fast path declines; what the store's own reading says is said
    fast, normal = both_ways(monkeypatch, root, "latest")
    assert outcome(fast) == outcome(normal)
    assert answers == [False]


@pytest.mark.parametrize("where", ["s3://bucket/prefix", "http://bucket/prefix", ""])
def test_a_remote_store_or_a_refused_one_is_never_answered_here(where: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    given: Any = where
    if where.startswith("s3://"):
        given = location(where)  # as typer hands it over
    kwargs: dict[str, Any] = {"sort": "bytes", "by": "tag", "top": 20, "fmt": Format.table}
    kwargs["out"] = out
    assert oneshot.show("latest", store=given, err=err, **kwargs) is False
    assert oneshot.show("latest", store=where, err=err, **kwargs) is False
    del kwargs["sort"]
    assert oneshot.diff("first", "latest", store=given, min_delta="0", err=err, **kwargs) is False
    assert out.getvalue() == err.getvalue() == ""


@pytest.mark.parametrize("command", [["show", "latest"], ["diff", "first", "latest"]])
def test_a_store_that_is_not_there_is_the_normal_paths_to_say(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answers: list[bool], command: list[str]
) -> None:
    fast, normal = both_ways(monkeypatch, tmp_path / "none", *command[1:], command=command[0])
    assert normal.exit_code != 0 and "does not exist" in normal.stderr
    assert outcome(fast) == outcome(normal)
    assert answers == [False]


def test_a_reference_is_what_the_normal_path_reads_in_the_store(tmp_path: Path) -> None:
    # GIVEN a dump, a snapshot file, a folder and a name that is nothing here
    dump = real("6.12", 1, 0)
    parquet = tmp_path / "one.parquet"
    single_file.write_snapshot_file(parquet, _snap("6.12", 1, 0, T0, "vm1"))
    folder = tmp_path / "latest"
    folder.mkdir()
    for ref in ("-", str(dump), str(parquet), str(folder), str(tmp_path / "nothing"), "latest"):
        # THEN a reference is what analysis.load looks up in the store
        in_store = not analysis.is_dump(ref) and not Path(ref).is_file()
        assert stored.is_reference(ref) == in_store, ref


@pytest.mark.slow
def test_two_filters_or_two_kernels_are_the_normal_paths_to_compare(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool]
) -> None:
    # GIVEN a filtered snapshot against an unfiltered one, and two named kernels' snapshots
    vm1, vm3, web3 = (ids_of(store, host) for host in ("vm1", "vm3", "web3"))
    for pair, said in (((vm1[-1], vm3[0]), "different filters"), (tuple(web3), "7.3.4")):
        # THEN the fast path declines, and the normal path compares them as it does
        fast, normal = both_ways(monkeypatch, store, *pair, "-f", "json", command="diff")
        assert normal.exit_code == 0 and said in normal.stdout + normal.stderr
        assert outcome(fast) == outcome(normal)
    assert answers == [False, False]


@pytest.mark.parametrize(
    "args", [["first", "nosuch"], ["latest", "2026-13-45"], ["first", "latest", "--min-delta", "x"]]
)
def test_a_diff_the_normal_path_refuses_is_refused_in_its_words(
    monkeypatch: pytest.MonkeyPatch, store: Path, answers: list[bool], args: list[str]
) -> None:
    fast, normal = both_ways(monkeypatch, store, *args, command="diff")
    assert normal.exit_code != 0
    assert outcome(fast) == outcome(normal)
    assert answers == [False]
