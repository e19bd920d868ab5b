"""The catalog of a store's snapshots (allocsnap/store/catalog.py) and ``ls`` read without
typer (allocsnap/cli/store_argv.py).

Every answer given through the catalog is compared with the answer of the store's own views
(queries/snapshots.sql, queries/resolve.sql), computed here with the catalog turned off, on
stores written for real: the recorder's write path, ``allocsnap import`` of real captures,
compaction of hours, an hour compacted again, a file deleted, a file replaced, a day, and
several hosts.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from allocsnap import analysis, filters
from allocsnap.analysis import compare, reading
from allocsnap.cli import app, store_argv
from allocsnap.kernel import capture, source
from allocsnap.model import Snapshot
from allocsnap.present.render import Format
from allocsnap.store import catalog, compaction, writing
from tests.conftest import real

runner = CliRunner()
T0 = datetime(2026, 11, 25, 13, 40, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
FORMATS = ("table", "csv", "json", "markdown")
HOSTS: list[Any] = [None, "vm1", ["web*", "v?2"], "nohost", "[v]m1", "[[:alpha:]]m1"]


def _snap(index: int, at: datetime, host: str, **given: Any) -> Snapshot:
    raw = source.read_dump(str(real("6.12", 1, index % 5)))
    profiling = given.pop("profiling", None)
    if profiling is not None:
        raw = replace(raw, profiling=profiling)
    return capture.snapshot(raw, host=host, at=at, **given)


@contextlib.contextmanager
def no_catalog() -> Iterator[None]:
    """Answer the old way: the store's own views, as before the catalog."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(catalog, "open_catalog", lambda *_a, **_k: None)
        yield


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as e:  # noqa: BLE001 - an error is an answer too: the same one
        return (type(e).__name__, str(e))


def _refs(root: Path) -> list[str]:
    with no_catalog():
        metas = analysis.snapshots(root)
    refs = ["first", "latest", "nosuch", "0000", "2000-01-01T00:00:00Z", "2099-01-01"]
    for m in metas:
        refs += [m.snapshot_id, m.snapshot_id[:4], m.taken_at.isoformat()]
        refs.append((m.taken_at + timedelta(seconds=30)).isoformat())
        if m.name:
            refs.append(m.name)
    return sorted(set(refs))


def _ls(root: Path, fmt: str, *hosts: str) -> tuple[int, str, str]:
    args = ["ls", "--store", str(root), "-f", fmt]
    for h in hosts:
        args += [h] if h.startswith("--") else ["--host", h]
    result = runner.invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def _fast_ls(root: Path, fmt: str, *hosts: str) -> str | None:
    argv = ["ls", "--store", str(root), "--format", fmt]
    for h in hosts:
        argv += ["--host", h]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        answered = store_argv.answered(argv)
    return out.getvalue() if answered else None


def assert_same_answers(root: Path) -> None:
    """Assert that listing and resolving through the catalog give what the views give."""
    refs = _refs(root)
    cat = catalog.open_catalog(root)
    assert cat is not None
    for host in HOSTS:
        # the views' answers, on one connection (compare's own path without a catalog)
        with no_catalog():
            listed = _outcome(lambda: analysis.snapshots(root, host))  # noqa: B023
            resolved = reading.read_store(
                root,
                lambda con: {
                    r: _outcome(lambda: compare._resolve(con, root, r, host))  # noqa: B023
                    for r in refs
                },
            )
        assert _outcome(lambda: analysis.snapshots(root, host)) == listed, host  # noqa: B023
        for r in refs:
            through = _outcome(lambda: compare._resolve(None, root, r, host, cat))  # noqa: B023
            if catalog.host_test(filters.hosts_regex(host)) is None:
                continue  # a POSIX class: the catalog declines, the views answer
            assert through == resolved[r], (r, host)
        for r in ("first", "latest", refs[-1]):  # and through the public function
            assert _outcome(lambda: analysis.resolve(root, r, host)) == resolved[r]  # noqa: B023
    # AND ls prints the same bytes, through typer and without it, in every format
    for fmt, hosts in [*((f, []) for f in FORMATS), ("csv", ["vm1"]), ("table", ["web*", "vm?"])]:
        with no_catalog():
            expected = _ls(root, fmt, *hosts)
        assert expected[0] == 0
        assert _ls(root, fmt, *hosts) == expected, (fmt, hosts)
        assert _fast_ls(root, fmt, *hosts) == expected[1], (fmt, hosts)
    # AND the catalog answered: it is stored, fresh, and read without a rebuild
    cat = catalog.open_catalog(root, rebuild=False)
    assert cat is not None
    assert len(cat.entries) == len(listed_all(root))


def listed_all(root: Path) -> list[Any]:
    with no_catalog():
        return analysis.snapshots(root)


def _fill(root: Path) -> None:
    """Snapshots of the recorder's write path: names (one used twice), two hosts at one
    instant, a snapshot taken with profiling off, labels."""
    for i in range(5):
        name = {1: "before", 3: "before", 4: "after"}.get(i)
        writing.write(root, _snap(i, T0 + 2 * i * MINUTE, "vm1", name=name))
    writing.write(root, _snap(2, T0 + 4 * MINUTE, "vm2", labels={"role": "db", "az": "b"}))
    writing.write(root, _snap(3, T0 + 9 * MINUTE, "vm2", profiling=0))


def _import(root: Path, host: str, at: datetime, *indexes: int) -> None:
    dumps = [str(real("6.12", 3, i)) for i in indexes]
    args = ["import", *dumps, "--host", host, "--at", at.isoformat(), "--every", "1m"]
    result = runner.invoke(app, [*args, "--store", str(root)])
    assert result.exit_code == 0, result.stderr


# -- one definition of the answers ---------------------------------------------------------


@pytest.mark.slow
def test_the_catalog_answers_as_the_views_do_as_a_store_is_written_and_compacted(
    tmp_path: Path,
) -> None:
    # GIVEN snapshots written by the recorder's path and imported by `allocsnap import`
    root = tmp_path / "store"
    _fill(root)
    _import(root, "web1", T0 + MINUTE, 0, 1, 2)
    # THEN listing and resolving through the catalog is the views' answer
    assert_same_answers(root)

    # WHEN the closed hour is compacted (hot files replaced by a generation-1 file)
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    # THEN the same
    assert_same_answers(root)

    # WHEN a late snapshot lands in the compacted hour, which is compacted again
    writing.write(root, _snap(4, T0 + 19 * MINUTE, "vm1", name="after"))
    assert_same_answers(root)
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    assert_same_answers(root)

    # WHEN a hot snapshot is written, then its files deleted (prune, or by hand)
    late = _snap(0, T0 + timedelta(hours=1, minutes=5), "web1", name="gone")
    path = writing.write(root, late)
    assert_same_answers(root)
    path.unlink()
    Path(str(path).replace("/snapshots/", "/samples/")).unlink()
    assert_same_answers(root)

    # WHEN a snapshots file is replaced by another one of the same name (a name changed)
    (compacted,) = (root / "snapshots" / "host=vm1").rglob("h13-*.parquet")
    table = pq.read_table(compacted)
    renamed = table.set_column(
        table.schema.get_field_index("name"),
        "name",
        pc.if_else(pc.equal(table["name"], "after"), "renamed", table["name"]),
    )
    pq.write_table(renamed.cast(table.schema), compacted.with_suffix(".tmp"))
    os.replace(compacted.with_suffix(".tmp"), compacted)
    assert_same_answers(root)
    assert analysis.resolve(root, "renamed").name == "renamed"

    # WHEN the day is compacted
    compaction.compact(root, T0 + timedelta(days=2), days=True, grace_s=0)
    assert_same_answers(root)


def test_a_tie_in_time_is_ambiguous_through_the_catalog_as_through_the_views(
    tmp_path: Path,
) -> None:
    # GIVEN two hosts' snapshots at the same instant, the newest of the store
    root = tmp_path / "store"
    for host in ("vm1", "vm2"):
        writing.write(root, _snap(0, T0, host))
    # WHEN `latest` is resolved, THEN both ways refuse it with the same words
    with no_catalog():
        expected = _outcome(lambda: analysis.resolve(root, "latest"))
    assert expected[0] == "UsageError"
    assert _outcome(lambda: analysis.resolve(root, "latest")) == expected
    # AND a host narrows it down the same way
    for host in ("vm1", "vm2"):
        with no_catalog():
            meta = analysis.resolve(root, "latest", host)
        assert analysis.resolve(root, "latest", host) == meta
        assert meta.host == host


def test_diff_and_show_of_store_references_print_what_the_views_give(tmp_path: Path) -> None:
    # GIVEN a store with two hosts, compacted
    root = tmp_path / "store"
    _fill(root)
    compaction.compact(root, T0 + timedelta(hours=1), days=False, grace_s=0)
    writing.write(root, _snap(4, T0 + timedelta(hours=1), "vm1"))
    for args in (
        ["diff", "first", "latest"],
        ["diff", "before", "after", "--host", "vm1"],
        ["show", "latest", "-n", "5"],
        ["show", "first", "--host", "vm2"],
    ):
        # WHEN each command runs, THEN stdout, stderr and the exit code are the views'
        with no_catalog():
            expected = runner.invoke(app, [*args, "--store", str(root)])
        result = runner.invoke(app, [*args, "--store", str(root)])
        assert expected.exit_code == 0, expected.stderr
        assert (result.exit_code, result.stdout, result.stderr) == (
            expected.exit_code,
            expected.stdout,
            expected.stderr,
        ), args


def test_the_fast_host_globs_are_the_filters_expressions() -> None:
    for globs in (["vm1"], ["web*", "a?c"], ["x.y+z", "(a)|b", "*"], ["", "ümlaut*"]):
        assert catalog.globs_regex(globs) == filters.hosts_regex(globs)


# -- a cache, never an authority -------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    for i in range(3):
        writing.write(root, _snap(i, T0 + i * MINUTE, "vm1", name=f"s{i}"))
    writing.write(root, _snap(3, T0, "vm2"))
    return root


def _expected_csv(root: Path) -> str:
    with no_catalog():
        code, out, _ = _ls(root, "csv")
    assert code == 0
    return out


def test_a_catalog_is_written_owner_only_and_then_read_without_a_rebuild(store: Path) -> None:
    # WHEN ls runs on a store without a catalog
    assert _fast_ls(store, "csv") == _expected_csv(store)
    # THEN the catalog is there, a regular file of mode 0600, and fresh
    st = os.lstat(store / catalog.NAME)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert catalog.open_catalog(store, rebuild=False) is not None
    # AND a snapshot written since makes it stale until it is read again
    writing.write(store, _snap(4, T0 + 9 * MINUTE, "vm1", name="new"))
    assert catalog.open_catalog(store, rebuild=False) is None
    assert _fast_ls(store, "csv") == _expected_csv(store)
    assert "new" in _expected_csv(store)
    assert catalog.open_catalog(store, rebuild=False) is not None


def _catalog_bytes(root: Path) -> bytes:
    catalog.open_catalog(root)
    return (root / catalog.NAME).read_bytes()


def _signed(body: bytes) -> bytes:
    return catalog.MAGIC + f" {catalog.VERSION} {zlib.crc32(body)}\n".encode() + body


def _with_document(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(data.partition(b"\n")[2])
    change(document)
    return _signed(json.dumps(document).encode())


def _first_file(document: dict[str, Any]) -> list[Any]:
    return next(iter(document["files"].values()))


def _lie_about_names(document: dict[str, Any]) -> None:
    _first_file(document)[3][1] = ["forged"] * len(_first_file(document)[3][1])


def _wrong_type(document: dict[str, Any]) -> None:
    _first_file(document)[3][2] = ["13:40"]  # taken_at as text


def _other_version(document: dict[str, Any]) -> None:
    document["fields"] = document["fields"][::-1]


SNAPSHOTS_BYTES = [0]  # of the store under test: what the catalog's bound is relative to
CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "a byte flipped": lambda data: data[:-10] + bytes([data[-10] ^ 1]) + data[-9:],
    "garbage": lambda data: os.urandom(len(data)),
    "another version": lambda data: data.replace(b" 1 ", b" 2 ", 1),
    "a value of another type": lambda data: _with_document(data, _wrong_type),
    "other fields": lambda data: _with_document(data, _other_version),
    "oversized": lambda data: data + b" " * catalog.limit(SNAPSHOTS_BYTES[0]),
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_a_damaged_catalog_is_ignored_and_rebuilt(store: Path, how: str) -> None:
    # GIVEN a catalog damaged as `how` says
    SNAPSHOTS_BYTES[0] = sum(p.stat().st_size for p in (store / "snapshots").rglob("*.parquet"))
    data = CORRUPTIONS[how](_catalog_bytes(store))
    (store / catalog.NAME).write_bytes(data)
    expected = _expected_csv(store)
    # WHEN ls runs, THEN its answer is the views' and the catalog is whole again
    assert _fast_ls(store, "csv") == expected
    assert _ls(store, "csv")[1] == expected
    assert catalog.open_catalog(store, rebuild=False) is not None


def test_a_catalog_of_forged_names_is_replaced_once_a_file_changes(store: Path) -> None:
    # GIVEN a catalog whose checksum is right but whose names were forged
    data = _with_document(_catalog_bytes(store), _lie_about_names)
    (store / catalog.NAME).write_bytes(data)
    # WHEN a snapshots file changes (here: replaced by a copy of itself, a new inode)
    (first,) = sorted((store / "snapshots").rglob("*.parquet"))[:1]
    copy = first.with_suffix(".copy")
    copy.write_bytes(first.read_bytes())
    os.replace(copy, first)
    # THEN that file is read again: its names are the file's
    assert _fast_ls(store, "csv") == _expected_csv(store)


def test_a_symlink_planted_as_the_catalog_is_neither_followed_nor_written_through(
    store: Path, tmp_path: Path
) -> None:
    # GIVEN a link in the store's catalog place, pointing at a file outside the store
    outside = tmp_path / "outside.json"
    good = _catalog_bytes(store)
    outside.write_bytes(good)  # even a good catalog: a link is never read
    os.chmod(outside, 0o644)
    writing.write(store, _snap(4, T0 + 9 * MINUTE, "vm1", name="new"))  # (links stop writers)
    (store / catalog.NAME).unlink()
    (store / catalog.NAME).symlink_to(outside)
    # WHEN ls and a resolution run
    assert _fast_ls(store, "csv") == _expected_csv(store)
    assert analysis.resolve(store, "new").name == "new"
    # THEN the file outside is untouched, and the link was replaced by a catalog of its own
    assert outside.read_bytes() == good
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o644
    st = os.lstat(store / catalog.NAME)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_a_link_among_the_snapshots_files_leaves_the_store_to_its_views(
    store: Path, tmp_path: Path
) -> None:
    # GIVEN a snapshots file that is a link to one outside the store
    (first,) = sorted((store / "snapshots").rglob("*.parquet"))[:1]
    outside = tmp_path / "outside.parquet"
    os.replace(first, outside)
    first.symlink_to(outside)
    # WHEN the catalog is asked, THEN it declines (the views answer, as before)
    assert catalog.open_catalog(store) is None
    assert _fast_ls(store, "csv") is None


def test_a_store_root_may_not_write_is_answered_from_memory(store: Path) -> None:
    # GIVEN a store owned by another user (root writes nothing into it)
    if os.geteuid() != 0:
        pytest.skip("needs root: a store root refuses to write to is one another user owns")
    os.chown(store, 1000, 1000)
    try:
        # WHEN ls runs, THEN it answers as the views do, and no catalog is written
        assert _fast_ls(store, "csv") == _expected_csv(store)
        assert _ls(store, "csv")[1] == _expected_csv(store)
        assert not (store / catalog.NAME).exists()
        cat = catalog.open_catalog(store)
        assert cat is not None and not cat.written
    finally:
        os.chown(store, 0, 0)


def test_a_catalog_never_changes_the_store(store: Path) -> None:
    # GIVEN the store's files before any catalog
    def files() -> dict[str, bytes]:
        return {
            str(p.relative_to(store)): p.read_bytes()
            for p in sorted(store.rglob("*"))
            if p.is_file() and p.name != catalog.NAME
        }

    before = files()
    # WHEN the catalog is built and used
    _fast_ls(store, "json")
    analysis.resolve(store, "latest")
    # THEN every other file is as it was
    assert files() == before


# -- ls without typer ------------------------------------------------------------------------


def test_ls_on_a_fresh_catalog_imports_no_duckdb_pyarrow_numpy_typer_or_typing(
    store: Path,
) -> None:
    # GIVEN a fresh catalog
    _catalog_bytes(store)
    probe = (  # an exit handler: an answered command leaves by os._exit, after the handlers
        "import atexit, sys\n"
        "def imported():\n"
        "    heavy = {m.split('.')[0] for m in sys.modules} & {'duckdb', 'pyarrow', 'numpy', "
        "'typer', 'typing', 'dataclasses'}\n"
        "    sys.stderr.write(f'imported: {sorted(heavy)}\\n')\n"
        "atexit.register(imported)\n"
        "from allocsnap.cli import main\n"
        "main()\n"
    )
    for fmt in FORMATS:
        # WHEN ls runs as a new process
        done = subprocess.run(
            [sys.executable, "-c", probe, "ls", "--store", str(store), "-f", fmt],
            capture_output=True,
            text=True,
        )
        # THEN it printed the views' answer, and imported none of them
        with no_catalog():
            expected = _ls(store, fmt)[1]
        assert (done.returncode, done.stdout) == (0, expected)
        assert done.stderr == "imported: []\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "--skip-damaged"],
        ["ls", "--help"],
        ["ls", "extra"],
        ["ls", "-f", "JSON"],
        ["ls", "--format", "csv", "--format", "json"],
        ["ls", "--store", "a", "--store", "b"],
        ["ls", "--store", "s3://bucket/prefix"],
        ["ls", "--host", "[ab]*"],
        ["ls", "--host"],
        ["ls", "-fcsv"],
        ["show", "latest"],
    ],
)
def test_other_command_lines_are_left_to_typer(argv: list[str]) -> None:
    assert store_argv.read(argv) is None


def test_the_plain_command_lines_are_read_without_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALLOCSNAP_STORE", raising=False)
    assert store_argv.read(["ls"]) == (Path("allocsnap-data"), [], Format.table)
    assert store_argv.read(["ls", "--store=d", "--host", "a", "--host=b*", "-f", "json"]) == (
        Path("d"),
        ["a", "b*"],
        Format.json,
    )
    monkeypatch.setenv("ALLOCSNAP_STORE", "env")
    assert store_argv.read(["ls"]) == (Path("env"), [], Format.table)


@pytest.mark.parametrize("skip", [False, True])
def test_a_damaged_samples_file_is_named_or_left_out_as_without_the_catalog(
    store: Path, skip: bool
) -> None:
    # GIVEN the latest snapshot's samples file cut short, and an older one's bytes changed
    with no_catalog():
        latest = analysis.resolve(store, "latest", "vm1")
        first = analysis.resolve(store, "first", "vm1")
    (hot,) = (store / "samples").rglob(f"{latest.snapshot_id}.parquet")
    hot.write_bytes(hot.read_bytes()[:-100])
    (older,) = (store / "samples").rglob(f"{first.snapshot_id}.parquet")
    table = pq.read_table(older)
    bytes_at = table.schema.get_field_index("bytes")
    table = table.set_column(bytes_at, "bytes", pc.add(table["bytes"], 1))
    pq.write_table(table, older)
    for args in (["show", "latest", "--host", "vm1"], ["diff", "first", "latest"]):
        argv = [*args, "--store", str(store), *(["--skip-damaged"] if skip else [])]
        # WHEN the command runs with the catalog and without it
        with no_catalog():
            expected = runner.invoke(app, argv)
        result = runner.invoke(app, argv)
        # THEN the same words, the same exit code
        assert expected.exit_code != 0 or skip
        assert (result.exit_code, result.stdout, result.stderr) == (
            expected.exit_code,
            expected.stdout,
            expected.stderr,
        ), args


def test_ls_of_a_store_with_an_unreadable_samples_file_says_what_the_views_say(
    store: Path,
) -> None:
    # GIVEN a fresh catalog, then a samples file cut short (its footer gone)
    _catalog_bytes(store)
    (cut,) = sorted((store / "samples").rglob("*.parquet"))[:1]
    cut.write_bytes(cut.read_bytes()[:-100])
    for extra in ([], ["--skip-damaged"]):
        # WHEN listed, THEN the same words and exit code as the views (which read every
        # footer): the file named, or left out with its snapshots
        with no_catalog():
            expected = _ls(store, "csv", *extra)
        assert _ls(store, "csv", *extra) == expected
        assert expected[0] == (0 if extra else 1)
    assert _fast_ls(store, "csv") is None
