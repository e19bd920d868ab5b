"""A root-run allocsnap in a store another local user can touch (issue 21, cases 1 and 2).

Each planted link of the issue is made by an unprivileged user (``nobody``, through setpriv)
in a store that user owns, and root's command must leave the victim untouched and fail with a
clear error (the ownership check); then the same link is planted in a root-owned store with
the ownership checks switched off, to show that opening alone (O_NOFOLLOW, O_EXCL temp files
with unpredictable names) follows no link either.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from allocsnap.cli import app
from allocsnap.errors import StoreError
from allocsnap.kernel import capture, source
from allocsnap.model import Snapshot
from allocsnap.store import compaction, durable, layout, locks, merge, writing
from tests.conftest import real

AT = datetime(2026, 11, 26, 14, 0, 5, tzinfo=UTC)
PRECIOUS = b"root's precious file\n"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the ownership checks and setpriv need root (allocsnap's user)"
)


def snapshot(host: str = "vm1") -> Snapshot:
    raw = source.RawRead(text=real("6.12", 1, 3).read_bytes(), source="file", taken_at=AT)
    return capture.snapshot(raw, host=host)


def as_nobody(*command: str | Path) -> None:
    """Run a command as the unprivileged user ``nobody``."""
    argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *map(str, command)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot act as nobody here: {done.stderr.strip()}")


@pytest.fixture
def world() -> Iterator[Path]:
    """Return a folder any user can reach (pytest's own is root's, mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="allocsnap-hostile-", dir="/tmp"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def victim(world: Path) -> Path:
    """Return a root-owned file that a planted link points at."""
    path = world / "victim"
    path.write_bytes(PRECIOUS)
    path.chmod(0o600)
    return path


@pytest.fixture
def nobodys_store(world: Path) -> Path:
    """Return a real store (one snapshot) handed over to ``nobody``, as a careless chown would."""
    store = world / "store"
    writing.write(store, snapshot())
    for folder, _dirs, files in os.walk(store):
        for name in [folder, *(os.path.join(folder, f) for f in files)]:
            os.chown(name, 65534, 65534)
    return store


@pytest.fixture
def no_owner_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch the ownership and link checks off: what remains is how files are opened."""
    monkeypatch.setattr(durable, "check_owner", lambda fd, where, root: None, raising=False)
    monkeypatch.setattr(locks, "check_owner", lambda fd, where, root: None, raising=False)
    monkeypatch.setattr(layout, "check_tree", lambda root: None, raising=False)


def test_store_owned_by_another_user_is_refused_with_the_fix(nobodys_store: Path) -> None:
    # GIVEN a store that nobody owns (and could plant links in)
    # WHEN root writes a snapshot to it
    with pytest.raises(StoreError) as info:
        writing.write(nobodys_store, snapshot())
    # THEN it is refused, saying who owns it and how to fix it
    message = str(info.value)
    assert "owned by uid 65534" in message and f"chown -R root: {nobodys_store}" in message


def test_store_folder_writable_by_others_is_refused(tmp_path: Path) -> None:
    # GIVEN a root-owned store whose samples folder anyone may write
    store = tmp_path / "store"
    writing.write(store, snapshot())
    (store / "samples").chmod(0o777)
    # WHEN root writes to it, THEN it is refused with the chmod that fixes it
    with pytest.raises(StoreError, match=r"writable by group or others .*chmod -R go-w"):
        writing.write(store, snapshot("vm2"))


def test_partition_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    # GIVEN a root-owned store in which one partition folder belongs to nobody
    store = tmp_path / "store"
    writing.write(store, snapshot())
    (partition,) = (store / "samples" / "host=vm1").iterdir()
    os.chown(partition, 65534, 65534)
    # WHEN root writes there (and when it only opens the store)
    with pytest.raises(StoreError, match=re.escape(f"{partition} is owned by uid 65534")):
        writing.write(store, snapshot())
    with pytest.raises(StoreError, match="owned by uid 65534"):
        layout.ensure_store(store)


def test_recorder_lock_link_does_not_truncate_the_victim(nobodys_store: Path, victim: Path) -> None:
    # GIVEN nobody's link recorder.lock -> a root-only file (issue 21: record truncated it)
    as_nobody("ln", "-s", victim, nobodys_store / layout.RECORDER_LOCK)
    # WHEN root starts a recorder on the store (the CLI, as a user would)
    dump = real("6.12", 1, 3)
    result = CliRunner().invoke(
        app,
        ["record", "--store", str(nobodys_store), "--source", str(dump), "--count", "1"],
    )
    # THEN it fails with a clear error and the victim is as it was
    assert result.exit_code == 1, result.output
    assert "owned by uid 65534" in result.output
    assert victim.read_bytes() == PRECIOUS


def test_recorder_lock_link_is_not_followed_by_the_open_itself(
    tmp_path: Path, victim: Path, no_owner_check: None
) -> None:
    # GIVEN a root-owned store with recorder.lock -> victim, the ownership checks off
    store = tmp_path / "store"
    writing.write(store, snapshot())
    (store / layout.RECORDER_LOCK).symlink_to(victim)
    # WHEN the recorder takes its lock
    with pytest.raises(StoreError, match="is a symbolic link"):
        with locks.recorder_lock(store):
            pass
    # THEN the victim is untouched
    assert victim.read_bytes() == PRECIOUS


def test_writer_lock_link_creates_nothing(nobodys_store: Path, world: Path) -> None:
    # GIVEN nobody's link writer.lock -> a file that does not exist (issue 21: root created it)
    target = world / "created-by-root"
    as_nobody("rm", nobodys_store / layout.WRITER_LOCK)
    as_nobody("ln", "-s", target, nobodys_store / layout.WRITER_LOCK)
    # WHEN root imports a snapshot into the store
    with pytest.raises(StoreError):
        writing.write(nobodys_store, snapshot("vm2"))
    # THEN nothing was created
    assert not target.exists()


def test_writer_lock_link_is_not_followed_by_the_open_itself(
    tmp_path: Path, world: Path, no_owner_check: None
) -> None:
    store = tmp_path / "store"
    writing.write(store, snapshot())
    target = world / "created-by-root"
    (store / layout.WRITER_LOCK).unlink()
    (store / layout.WRITER_LOCK).symlink_to(target)
    with pytest.raises(StoreError, match="is a symbolic link"):
        writing.write(store, snapshot("vm2"))
    assert not target.exists()


def _tags_name(tmp_path: Path) -> str:
    """Return the tags file name of the test's snapshot (content-addressed: predictable)."""
    scratch = tmp_path / "scratch"
    writing.write(scratch, snapshot())
    (name,) = [p.name for p in (scratch / "tags").iterdir()]
    return name


def test_planted_temp_name_does_not_overwrite_the_victim(
    nobodys_store: Path, victim: Path, tmp_path: Path
) -> None:
    # GIVEN nobody's link at the temp name the tags file of the next import would use
    # (issue 21: .<hash>.parquet.<pid>.tmp; the pid of this process is the writer's)
    tags = _tags_name(tmp_path)
    as_nobody("rm", nobodys_store / "tags" / tags)
    as_nobody("ln", "-s", victim, nobodys_store / "tags" / f".{tags}.{os.getpid()}.tmp")
    # WHEN root imports the dump (the CLI runs in this process)
    result = CliRunner().invoke(
        app, ["import", str(real("6.12", 1, 3)), "--host", "vm2", "--store", str(nobodys_store)]
    )
    # THEN it is refused and the victim is intact
    assert result.exit_code == 1
    assert victim.read_bytes() == PRECIOUS


def test_temp_files_are_created_anew_under_names_nobody_can_guess(
    tmp_path: Path, victim: Path, no_owner_check: None
) -> None:
    # GIVEN a root-owned store where a link sits at the old, predictable temp name
    store = tmp_path / "store"
    layout.ensure_store(store)
    tags = _tags_name(tmp_path)
    (store / "tags").mkdir(mode=0o700)
    planted = store / "tags" / f".{tags}.{os.getpid()}.tmp"
    planted.symlink_to(victim)
    # WHEN a snapshot is written
    writing.write(store, snapshot())
    # THEN the victim is untouched, the link is still a link, and the tags file a regular file
    assert victim.read_bytes() == PRECIOUS
    assert planted.is_symlink()
    assert stat.S_ISREG((store / "tags" / tags).lstat().st_mode)
    # AND the temp names follow .{name}.{pid}.{16 hex}.tmp
    name = durable.temp_name("x.parquet")
    prefix, pid, token, suffix = name.rsplit(".", 3)
    assert (prefix, pid, suffix, len(token)) == (".x.parquet", str(os.getpid()), "tmp", 16)
    assert int(token, 16) >= 0 and durable.temp_name("x.parquet") != name


def test_samples_link_sends_no_data_out_of_the_store(nobodys_store: Path, world: Path) -> None:
    # GIVEN nobody's samples -> /elsewhere, a folder of root's (issue 21: the data went there)
    elsewhere = world / "elsewhere"
    elsewhere.mkdir()
    as_nobody("mv", nobodys_store / "samples", nobodys_store / "old-samples")
    as_nobody("ln", "-s", elsewhere, nobodys_store / "samples")
    # WHEN root writes a snapshot
    with pytest.raises(StoreError):
        writing.write(nobodys_store, snapshot("vm2"))
    # THEN nothing landed there
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("link", ["samples", "samples/host=vm2", "snapshots/host=vm2"])
def test_partition_folder_link_is_not_followed_by_the_open_itself(
    tmp_path: Path, world: Path, link: str, no_owner_check: None
) -> None:
    # GIVEN a root-owned store where a folder on the way to a partition is a link
    store = tmp_path / "store"
    writing.write(store, snapshot())
    elsewhere = world / "elsewhere"
    elsewhere.mkdir()
    planted = store / link
    if planted.exists():
        planted.rename(tmp_path / "moved")
    planted.symlink_to(elsewhere)
    # WHEN a snapshot of host vm2 is written, THEN it is refused naming the link
    with pytest.raises(StoreError, match=re.escape(f"{planted} is a symbolic link")):
        writing.write(store, snapshot("vm2"))
    assert list(elsewhere.iterdir()) == []


def test_store_files_are_0600_and_folders_0700_whatever_the_umask(tmp_path: Path) -> None:
    # GIVEN the usual umask (issue 21: files came out 0644, folders 0755)
    old = os.umask(0o022)
    try:
        # WHEN a store is written and a snapshot file made with snap -o
        store = tmp_path / "store"
        writing.write(store, snapshot())
        out = tmp_path / "one.parquet"
        result = CliRunner().invoke(
            app, ["snap", "-o", str(out), "--source", str(real("6.12", 1, 3))]
        )
        assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    # THEN every file is 0600 and every folder 0700
    modes = {str(p.relative_to(store)): stat.S_IMODE(p.stat().st_mode) for p in store.rglob("*")}
    modes["."] = stat.S_IMODE(store.stat().st_mode)
    assert len(modes) > 8
    assert {p: m for p, m in modes.items() if m != (0o700 if (store / p).is_dir() else 0o600)} == {}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def _two_snapshots(store: Path) -> None:
    raw = source.RawRead(text=real("6.12", 1, 3).read_bytes(), source="file", taken_at=AT)
    for minutes in (0, 1):
        writing.write(store, capture.snapshot(raw, host="vm1", at=AT + timedelta(minutes=minutes)))


def _modes(store: Path) -> dict[str, int]:
    return {str(p.relative_to(store)): stat.S_IMODE(p.lstat().st_mode) for p in store.rglob("*")}


def test_compaction_and_merge_write_0600_files_in_0700_folders(tmp_path: Path) -> None:
    # GIVEN a store whose 14:00 hour is closed, compacted, then merged into another store
    store, dest = tmp_path / "store", tmp_path / "dest"
    _two_snapshots(store)
    old = os.umask(0o022)
    try:
        done = compaction.compact(store, AT + timedelta(hours=2), days=False, grace_s=0)
        merge.merge([store], dest)
    finally:
        os.umask(old)
    assert done.units == 1
    # THEN the compacted and the merged files are root's alone
    for root in (store, dest):
        modes = _modes(root)
        assert any(name.endswith("-g1.parquet") for name in modes)
        wrong = {n: m for n, m in modes.items() if m != (0o700 if (root / n).is_dir() else 0o600)}
        assert wrong == {}


def test_compaction_writes_no_merged_file_through_a_partition_link(
    tmp_path: Path, world: Path, no_owner_check: None
) -> None:
    # GIVEN a root-owned store whose samples partition is a link to a folder elsewhere
    store = tmp_path / "store"
    _two_snapshots(store)
    (partition,) = (store / "samples" / "host=vm1").iterdir()
    elsewhere = world / "elsewhere"
    partition.rename(elsewhere)
    partition.symlink_to(elsewhere)
    before = sorted(p.name for p in elsewhere.iterdir())
    # WHEN the closed hour is compacted, THEN the link is refused and nothing lands there
    with pytest.raises(StoreError, match="is a symbolic link"):
        compaction.compact(store, AT + timedelta(hours=2), days=False, grace_s=0)
    assert sorted(p.name for p in elsewhere.iterdir()) == before


def nobody_reads(path: Path) -> bool:
    """Return True when the user nobody (group nogroup) can read ``path``."""
    argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat", str(path)]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def test_a_store_is_unreadable_to_other_users(world: Path) -> None:
    store = world / "store"
    writing.write(store, snapshot())
    samples = next((store / "samples").rglob("*.parquet"))
    assert not nobody_reads(samples)
    # AND allocsnap run by that user says why and what to do
    argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable]
    done = subprocess.run(
        [*argv, "-m", "allocsnap", "ls", "--store", str(store)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "permission denied; a store is root's alone" in done.stderr
    assert "--group" in done.stderr


def test_a_store_given_a_group_is_readable_by_it_now_and_later(world: Path) -> None:
    # GIVEN a store with a snapshot, then given the group nogroup (as --group nogroup does)
    store = world / "store"
    writing.write(store, snapshot())
    layout.ensure_store(store, "nogroup")
    # WHEN more snapshots come, from a writer that knows nothing of the group, and compaction
    _two_snapshots(store)
    compaction.compact(store, AT + timedelta(hours=2), days=False, grace_s=0)
    # THEN every file is 0640 and every folder 0750, of group nogroup (the lock files aside)
    data = [p for p in store.rglob("*") if not p.name.endswith(".lock")]
    assert any(p.name.endswith("-g1.parquet") for p in data)
    wrong = [
        str(p)
        for p in [store, *data]
        if p.stat().st_gid != 65534
        or stat.S_IMODE(p.stat().st_mode) != (0o750 if p.is_dir() else 0o640)
    ]
    assert wrong == []
    # AND nobody, of that group, reads them; the marker keeps the setting
    assert nobody_reads(next((store / "samples").rglob("*-g1.parquet")))
    assert json.loads((store / layout.MARKER).read_text())["group"] == "nogroup"


def test_an_unknown_group_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["import", str(real("6.12", 1, 3)), "--store", str(tmp_path / "s"), "--group", "no-such"],
    )
    assert result.exit_code == 2
    assert "no group 'no-such'" in result.output
    assert not (tmp_path / "s").exists()


def test_a_shared_folder_that_is_no_store_is_named_as_such_not_blamed(world: Path) -> None:
    # GIVEN a world-writable folder with other files in it, as /tmp (sticky, 1777)
    shared = world / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "someone-elses").write_text("x")
    # WHEN root is pointed at it, THEN it is not a store: no chmod advice for /tmp, no walk
    with pytest.raises(StoreError, match="exists and is not an allocsnap store"):
        layout.ensure_store(shared)


def test_merge_reads_no_source_file_through_a_planted_link(
    nobodys_store: Path, victim: Path, tmp_path: Path
) -> None:
    # GIVEN a store that nobody prepared for root to merge, whose samples file nobody replaced
    # with a link to a root-only file (the old code copied that file into root's store)
    (samples,) = (nobodys_store / "samples").rglob("*.parquet")
    as_nobody("rm", samples)
    as_nobody("ln", "-s", victim, samples)
    dest = tmp_path / "dest"

    # WHEN root merges it, THEN the link is refused by name, before anything is written
    with pytest.raises(StoreError, match="is a symbolic link") as caught:
        merge.merge([nobodys_store], dest)
    assert str(samples) in str(caught.value)
    copied = [p for p in dest.rglob("*") if p.is_file() and p.read_bytes() == PRECIOUS]
    assert copied == []
    assert not (dest / "samples").exists() or not any((dest / "samples").rglob("*.parquet"))


def test_merge_opens_no_source_file_through_a_link_even_unchecked(
    tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a root-owned source store whose samples file is a link to a root-only file, and
    # the link check switched off: what remains is how merge opens what it copies
    source = tmp_path / "source"
    writing.write(source, snapshot())
    (samples,) = (source / "samples").rglob("*.parquet")
    samples.unlink()
    samples.symlink_to(victim)
    monkeypatch.setattr(durable, "check_tree", lambda root, owners=True: None)
    dest = tmp_path / "dest"

    # WHEN root merges it, THEN opening the link fails (O_NOFOLLOW) and nothing is copied
    with pytest.raises(StoreError, match="cannot copy|cannot read|cannot write"):
        merge.merge([source], dest)
    assert [p for p in dest.rglob("*") if p.is_file() and p.read_bytes() == PRECIOUS] == []
