"""Stores in object storage, against a real S3 server (moto's) on 127.0.0.1.

The server is moto's Flask app serving HTTP on a free loopback port; allocsnap reaches it
through pyarrow's S3 client exactly as it would reach AWS or MinIO (``AWS_ENDPOINT_URL``). The
bucket is set up and inspected with boto3, a client independent of the code under test.
"""

from __future__ import annotations

import csv
import io
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner, Result

from allocsnap import recorder
from allocsnap.cli import app
from allocsnap.errors import EpochWarning, ExitCode
from allocsnap.store import layout, remote, upload
from tests import oracle
from tests.conftest import real

pytestmark = pytest.mark.slow  # an S3 server, and recorders uploading to it

runner = CliRunner()
BUCKET = "allocsnap-test"
KEY, SECRET = "allocsnap", "allocsnap-secret"
# (capture, taken at, name): two boots of 6.12 over three hours of one day and the next day
IMPORTS = [
    (("6.12", 1, 0), "2026-01-01T10:05:00Z", "s0"),
    (("6.12", 1, 1), "2026-01-01T10:35:00Z", "s1"),
    (("6.12", 1, 2), "2026-01-01T11:05:00Z", "s2"),
    (("6.12", 1, 3), "2026-01-01T23:30:00Z", "s3"),
    (("6.12", 1, 4), "2026-01-02T01:00:00Z", "s4"),
    (("6.12", 3, 0), "2026-01-02T02:00:00Z", "t0"),
    (("6.12", 3, 1), "2026-01-02T02:20:00Z", "t1"),
    (("6.12", 3, 2), "2026-01-02T02:40:00Z", "t2"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """moto's S3 server on a fixed loopback port, which can be stopped and started again (its
    buckets live in this process, so they survive a restart)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
        )

    def keys(self, prefix: str) -> list[str]:
        """Return the files below ``prefix``; not the empty ``folder/`` markers that pyarrow
        leaves where it deleted a folder's last file."""
        listed = self.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
        keys = (o["Key"][len(prefix) + 1 :] for o in listed.get("Contents", []))
        return sorted(k for k in keys if not k.endswith("/"))


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    s = Server()
    s.start()
    s.client().create_bucket(Bucket=BUCKET)
    yield s
    s.stop()


def point_at(server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Server:
    """Point this process's (and its children's) AWS settings at the server."""
    for name, value in {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask a metadata address off this machine
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    return server


@pytest.fixture
def s3(server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Server:
    """The session's server, with the AWS settings pointing at it."""
    return point_at(server, monkeypatch, tmp_path)


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.stderr + repr(result.exception)
    return result.stdout


def import_captures(root: Path) -> None:
    for (kernel, boot, index), at, name in IMPORTS:
        dump = str(real(kernel, boot, index))
        ok(invoke("import", dump, "--store", str(root), "--at", at, "--host", "vm", "--name", name))


@pytest.fixture(scope="module")
def uploaded(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A local store of real captures compacted into hours, and its copy in the bucket."""
    mp = pytest.MonkeyPatch()
    try:
        tmp = tmp_path_factory.mktemp("remote")
        point_at(server, mp, tmp)
        root = tmp / "store"
        import_captures(root)
        ok(invoke("compact", "--hours-only", "--store", str(root)))
        url = f"s3://{BUCKET}/parity"
        ok(invoke("upload", "--to", url, "--store", str(root)))
    finally:
        mp.undo()
    return root, url


READ_COMMANDS = [
    ["ls"],
    ["ls", "-f", "json"],
    ["show", "s3", "--by", "dir:2", "-n", "10"],
    ["show", "latest", "--module", "ext4", "-f", "csv", "-n", "0"],
    ["diff", "s1", "s3", "-f", "csv", "-n", "0"],
    ["diff", "s0", "t2", "--by", "module"],
    ["leaks", "--min-growth", "0", "--min-rate", "0", "-f", "csv"],
    ["growth", "-f", "csv", "-n", "0"],
    ["top", "-n", "10"],
    ["top", "--since", "2026-01-02T00:00:00Z", "--by", "file", "-f", "json"],
    ["history", "shmem_alloc_folio", "-f", "csv"],
    [
        "sql",
        "select host, date, count(*) as n, sum(bytes) as b from samples group by all order by all",
    ],
    ["sql", "select * from snapshots order by taken_at", "-f", "csv"],
]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=lambda a: " ".join(a)[:40])
def test_read_only_commands_give_the_same_output_from_s3(
    s3: Server, uploaded: tuple[Path, str], args: list[str]
) -> None:
    # GIVEN a store and its upload / WHEN a read-only command reads either
    root, url = uploaded
    local_out = ok(invoke(*args, "--store", str(root)))
    remote_out = ok(invoke(*args, "--store", url))
    # THEN the output is the same, and not empty
    assert remote_out == local_out
    assert remote_out.strip()


def test_diff_from_s3_agrees_with_the_reader(s3: Server, uploaded: tuple[Path, str]) -> None:
    # GIVEN the uploaded store / WHEN s1 and s3 are diffed from the bucket
    _root, url = uploaded
    out = ok(invoke("diff", "s1", "s3", "-f", "csv", "-n", "0", "--store", url))
    # THEN the changes are those the independent reader computes from the dumps
    rows = list(csv.DictReader(io.StringIO(out)))
    expected = oracle.diff(oracle.rows(real("6.12", 1, 1)), oracle.rows(real("6.12", 1, 3)))
    assert [(r["key"], int(r["delta_bytes"]), int(r["bytes_after"])) for r in rows] == [
        (c.key, c.delta_bytes, c.bytes_after) for c in expected
    ]


def test_the_store_env_var_and_the_notebook_api_take_a_url(
    s3: Server, uploaded: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, url = uploaded
    monkeypatch.setenv("ALLOCSNAP_STORE", url)
    assert ok(invoke("ls")) == ok(invoke("ls", "--store", str(root)))
    import allocsnap

    query = "select snapshot_id, rows, total_bytes from snapshots order by taken_at"
    with allocsnap.open(url) as remote_db, allocsnap.open(root) as local_db:
        assert remote_db.arrow(query) == local_db.arrow(query)
        assert remote_db.arrow(query).num_rows == len(IMPORTS)
        with pytest.warns(EpochWarning, match="modules loaded"):
            remote_diff = remote_db.diff("s1", "s3")
        with pytest.warns(EpochWarning, match="modules loaded"):
            assert remote_diff.equals(local_db.diff("s1", "s3"))
        assert repr(remote_db) == f"allocsnap.Database({url!r})"


def test_upload_layout_order_and_rerun(s3: Server, tmp_path: Path) -> None:
    # GIVEN a store compacted into hours
    root = tmp_path / "store"
    import_captures(root)
    ok(invoke("compact", "--hours-only", "--store", str(root)))
    target = remote.Remote(f"s3://{BUCKET}/layout")

    # WHEN uploaded
    first = upload.upload(root, target)

    # THEN the bucket holds the marker, the tags and every compacted hour, no hot file
    hours = sorted(
        p.relative_to(root).as_posix() for p in root.glob("s*/host=*/date=*/h*-g*.parquet")
    )
    tags = sorted(p.relative_to(root).as_posix() for p in root.glob("tags/*.parquet"))
    assert s3.keys("layout") == sorted([layout.MARKER, *tags, *hours])
    assert first.units == len(hours) // 2 == 5  # 10h, 11h, 23h on the 1st; 01h, 02h on the 2nd
    assert first.files == len(hours) + len(tags) + 1

    # AND a second run finds everything there and uploads nothing
    again = upload.upload(root, target)
    assert (again.files, again.units, again.present) == (0, 0, first.units)

    # WHEN the closed days are compacted and uploaded again, with no grace for readers
    ok(invoke("compact", "--store", str(root)))
    upload.upload(root, target, grace_s=0)

    # THEN the day files replaced the hours in the bucket as they did locally
    days = sorted(p.relative_to(root).as_posix() for p in root.glob("s*/host=*/date=*/day-*"))
    assert len(days) == 4
    assert s3.keys("layout") == sorted([layout.MARKER, *tags, *days])
    assert ok(invoke("ls", "--store", str(target))) == ok(invoke("ls", "--store", str(root)))


def test_an_interrupted_upload_is_invisible_then_completed(s3: Server, tmp_path: Path) -> None:
    # GIVEN an hour's samples file in the bucket without its snapshots file (a run cut short
    # between the two, the commit point), beside a committed hour
    root = tmp_path / "store"
    import_captures(root)
    ok(invoke("compact", "--hours-only", "--store", str(root)))
    target = remote.Remote(f"s3://{BUCKET}/cut")
    upload.upload(root, target)
    client = s3.client()
    cut = "snapshots/host=vm/date=2026-01-02/h02-g1.parquet"
    client.delete_object(Bucket=BUCKET, Key=f"cut/{cut}")

    # WHEN the bucket is read, THEN the uncommitted hour's snapshots are not there at all
    names = ok(invoke("sql", "select name from snapshots order by name", "--store", str(target)))
    assert names.split()[1:] == ["s0", "s1", "s2", "s3", "s4"]

    # WHEN the upload runs again, THEN it commits the hour and the bucket reads like the store
    again = upload.upload(root, target)
    assert (again.units, again.files) == (1, 1)
    assert ok(invoke("ls", "--store", str(target))) == ok(invoke("ls", "--store", str(root)))


def test_record_with_upload_copies_closed_hours(s3: Server, tmp_path: Path) -> None:
    # GIVEN a store with hot snapshots in closed hours (imported), and a saved dump to record
    root = tmp_path / "store"
    import_captures(root)
    url = f"s3://{BUCKET}/recorded"

    # WHEN the recorder runs a few snapshots with --upload, as a process of its own
    done = subprocess.run(
        [sys.executable, "-m", "allocsnap", "record", "--count", "3", "--interval", "0.2s"]
        + ["--source", str(real("6.12", 1, 4)), "--host", "rec", "--store", str(root)]
        + ["--upload", url],
        capture_output=True,
        text=True,
        timeout=300,
    )

    # THEN it compacted the closed hours and uploaded them before it stopped
    assert done.returncode == 0, done.stderr
    assert "uploaded 2 compacted file(s) to s3://allocsnap-test/recorded" in done.stderr
    keys = s3.keys("recorded")
    assert sum(k.startswith("snapshots/host=vm/") for k in keys) == 2  # closed days: day files
    assert not any("host=rec" in k for k in keys)  # the current hour is not closed yet
    # AND the bucket reads as the imported snapshots
    listed = ok(invoke("sql", "select name from snapshots order by name", "--store", url))
    assert listed.split()[1:] == sorted(name for _, _, name in IMPORTS)


def test_the_recorder_keeps_recording_while_the_server_is_down(tmp_path: Path) -> None:
    # GIVEN a server of its own that is down when the first upload is due
    server = Server()
    server.start()
    server.client().create_bucket(Bucket=BUCKET)
    server.stop()
    mp = pytest.MonkeyPatch()
    point_at(server, mp, tmp_path)
    root = tmp_path / "store"
    events: list[tuple[str, int, str]] = []
    try:
        import_captures(root)
        plan = recorder.Plan(
            interval=0.25,
            count=40,
            source=str(real("6.12", 1, 4)),
            host="rec",
            upload=f"s3://{BUCKET}/outage",
            upload_retry_s=0.5,
        )

        def on_status(status: recorder.Status) -> None:
            events.append((status.event, status.taken, status.message))
            if status.event == "upload-failed" and status.upload_failures == 1:
                server.start()  # back after the first failure, while the recorder goes on

        # WHEN the recorder runs through the outage
        status = recorder.record(root, plan, on_status=on_status)

        # THEN it took every snapshot, logged the failed upload, and uploaded once back
        assert status.taken == 40
        kinds = [e for e, _, _ in events]
        assert "upload-failed" in kinds and "uploaded" in kinds
        failed = next(m for e, _, m in events if e == "upload-failed")
        assert "NETWORK_CONNECTION" in failed and "still recording" in failed
        assert kinds.index("upload-failed") < kinds.index("uploaded")
        assert kinds.count("snapshot") == 40
        assert status.uploaded == 2
        assert sum(k.startswith("snapshots/") for k in server.keys("outage")) == 2
    finally:
        server.stop()
        mp.undo()


# -- what cannot work, said in one line --------------------------------------------------------


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.stderr + repr(result.exception)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    return result.stderr


def test_a_missing_bucket_is_exit_4(s3: Server) -> None:
    err = one_line_error(invoke("ls", "--store", "s3://no-such-bucket/x"), ExitCode.NO_STORE)
    assert "bucket 'no-such-bucket'" in err and "does not exist" in err


def test_an_empty_prefix_is_exit_4(s3: Server) -> None:
    err = one_line_error(invoke("ls", "--store", f"s3://{BUCKET}/nothing"), ExitCode.NO_STORE)
    assert err == f"Error: no snapshots in s3://{BUCKET}/nothing\n"


def test_an_unreachable_endpoint_is_exit_1(s3: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody there
    err = one_line_error(invoke("ls", "--store", f"s3://{BUCKET}/x"), ExitCode.FAILURE)
    assert "NETWORK_CONNECTION" in err and "AWS_ENDPOINT_URL" in err


def test_bad_credentials_are_exit_1(s3: Server, uploaded: tuple[Path, str]) -> None:
    # GIVEN a server that checks keys, which do not know ours
    _root, url = uploaded
    with enable_iam_authentication():
        err = one_line_error(invoke("ls", "--store", url), ExitCode.FAILURE)
    assert "AWS_ACCESS_KEY_ID" in err


def test_the_endpoint_in_the_url_wins(s3: Server, uploaded: tuple[Path, str]) -> None:
    # GIVEN no endpoint in the environment, and the URL naming it as pyarrow reads it
    _root, url = uploaded
    endpoint = s3.endpoint.removeprefix("http://")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AWS_ENDPOINT_URL")
        out = ok(invoke("ls", "--store", f"{url}?endpoint_override={endpoint}&scheme=http"))
    assert out == ok(invoke("ls", "--store", url))


@pytest.mark.parametrize(
    "args",
    [
        ["snap", "--source"],
        ["import"],
        ["record", "--count", "1", "--source"],
        ["compact"],
        ["prune", "--older-than", "1d"],
    ],
    ids=lambda a: a[0],
)
def test_commands_that_write_refuse_a_url_and_say_what_works(args: list[str]) -> None:
    dump = str(real("6.12", 1, 0))
    full = [*args, dump] if args[-1] in ("--source", "import") else args
    err = one_line_error(invoke(*full, "--store", "s3://b/p"), ExitCode.USAGE)
    assert "s3://b/p is read-only" in err and "--upload s3://b/p" in err


def test_upload_options_take_only_urls(tmp_path: Path) -> None:
    err = one_line_error(invoke("upload", "--to", str(tmp_path)), ExitCode.USAGE)
    assert "--to takes s3://bucket/prefix" in err
    err = one_line_error(invoke("record", "--upload", "gs://b/p"), ExitCode.USAGE)
    assert "only s3:// stores are supported" in err


def test_a_notebook_sees_new_uploads_on_refresh_and_a_stopped_server_in_one_line(
    tmp_path: Path,
) -> None:
    import allocsnap
    from allocsnap.errors import AllocsnapError

    # GIVEN a server of its own and a bucket holding the first day of a store
    server = Server()
    server.start()
    server.client().create_bucket(Bucket=BUCKET)
    mp = pytest.MonkeyPatch()
    point_at(server, mp, tmp_path)
    try:
        root = tmp_path / "store"
        import_captures(root)
        ok(invoke("compact", "--hours-only", "--store", str(root)))
        target = remote.Remote(f"s3://{BUCKET}/notebook")
        upload.upload(root, target)
        day2 = "snapshots/host=vm/date=2026-01-02/"
        for key in server.keys("notebook"):
            if key.startswith(day2):
                server.client().delete_object(Bucket=BUCKET, Key=f"notebook/{key}")
        count = "select count(*) as n from snapshots"
        with allocsnap.open(str(target)) as db:
            assert db.arrow(count)["n"].to_pylist() == [4]

            # WHEN the rest is uploaded and the notebook refreshes, THEN it sees all of it
            upload.upload(root, target)
            assert db.arrow(count)["n"].to_pylist() == [4]
            db.refresh()
            assert db.arrow(count)["n"].to_pylist() == [len(IMPORTS)]

            # WHEN the server stops, THEN a query fails with one line saying why
            server.stop()
            with pytest.raises(AllocsnapError) as failed:
                db.arrow("select sum(bytes) from samples")
        message = str(failed.value)
        assert "\n" not in message and "NETWORK_CONNECTION" in message
    finally:
        server.stop()
        mp.undo()


def test_threads_sharing_a_remote_file_each_read_at_their_own_position(tmp_path: Path) -> None:
    from pyarrow import fs

    from allocsnap.store import remote_reads

    # GIVEN a file opened once through the file system DuckDB is handed for remote stores
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)))
    wrapper = remote_reads.filesystem(fs.LocalFileSystem(), {})
    shared = wrapper.open(f"{remote_reads.PROTOCOL}://{path}", "rb")
    turns = [threading.Event() for _ in range(3)]
    got: dict[str, bytes] = {}

    def first() -> None:
        shared.seek(10)
        turns[0].set()
        turns[1].wait()  # the other thread seeks elsewhere between our seek and our read
        got["first"] = shared.read(4)
        turns[2].set()

    def second() -> None:
        turns[0].wait()
        shared.seek(200)
        turns[1].set()
        turns[2].wait()
        got["second"] = shared.read(4)

    # WHEN two threads seek, then read, interleaved as DuckDB's Parquet reader may
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)

    # THEN each read what is at its own position
    assert got == {"first": bytes([10, 11, 12, 13]), "second": bytes([200, 201, 202, 203])}
    assert shared.tell() == 0  # this thread has not moved
    shared.seek(-2, 2)
    assert shared.read() == bytes([254, 255])


def test_an_upload_with_nothing_compacted_says_what_is_uploaded(s3: Server, tmp_path: Path) -> None:
    # GIVEN a store of imported dumps, none compacted yet
    root = tmp_path / "store"
    import_captures(root)

    # WHEN uploaded, THEN nothing goes, and stderr says what is uploaded and how to get there
    result = invoke("upload", "--to", f"s3://{BUCKET}/uncompacted", "--store", str(root))
    assert result.exit_code == 0, result.stderr
    assert "uploaded 0 compacted file(s)" in result.stderr
    assert "only closed hours that were compacted are uploaded" in result.stderr
    assert f"allocsnap compact --store {root}" in result.stderr

    # AND after compact, the upload copies them
    ok(invoke("compact", "--store", str(root)))
    again = invoke("upload", "--to", f"s3://{BUCKET}/uncompacted", "--store", str(root))
    assert "note: nothing to upload" not in again.stderr
