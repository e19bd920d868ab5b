"""Input bounds (issue 21, cases 3, 9 and 10, and the sql sandbox): streams read with a size and
a line-length limit, control characters in dumps, host and snapshot names, globs, and
``allocsnap sql`` kept to the store's files."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from allocsnap.cli import app
from allocsnap.errors import ExitCode, InputTooLarge, ParseError, UsageError
from allocsnap.kernel import capture, parse, source
from allocsnap.model import MAX_DUMP_BYTES, MAX_LINE_BYTES, check_snapshot_name
from allocsnap.store import layout
from tests import oracle
from tests.conftest import real

runner = CliRunner()
AT = datetime(2026, 11, 26, 14, 0, 5, tzinfo=UTC)
NAME_RULE = "A-Z a-z 0-9 . _ -"


def invoke(*args: str | Path, input: bytes | None = None) -> Result:
    return runner.invoke(app, [str(a) for a in args], input=input)


def dump_text() -> bytes:
    return real("6.12", 1, 3).read_bytes()


# -- case 3: every source read is bounded --------------------------------------------------------


def _one_gib() -> None:
    """Limit a child to 1 GiB of address space: an unbounded read fails there, not the host."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_record_from_dev_zero_fails_fast_without_filling_memory() -> None:
    # GIVEN a child allowed 1 GiB of address space (the old code read /dev/zero until the
    # OOM killer came, at 24 GB)
    # WHEN it takes a snapshot of /dev/zero
    done = subprocess.run(
        [sys.executable, "-m", "allocsnap", "snap", "-o", "/dev/null", "--source", "/dev/zero"],
        capture_output=True,
        text=True,
        preexec_fn=_one_gib,
        timeout=120,
        check=False,
    )
    # THEN it fails with one clear line, not a MemoryError
    assert done.returncode == ExitCode.FAILURE, done.stderr
    assert done.stderr.strip() == (
        f"Error: /dev/zero: not a text dump: a line longer than {MAX_LINE_BYTES:,} bytes"
    )


def test_stdin_larger_than_the_bound_is_refused() -> None:
    # GIVEN a stream of well-formed rows, just over the bound (the old code read it all)
    rows = b"".join(line + b"\n" for line in dump_text().splitlines()[1:])
    stream = rows * (MAX_DUMP_BYTES // len(rows) + 1)
    assert len(stream) > MAX_DUMP_BYTES
    # WHEN show reads it from stdin
    result = invoke("show", "-", input=stream)
    # THEN it is refused, naming stdin and the bound
    assert result.exit_code == ExitCode.FAILURE
    assert f"stdin: more than {MAX_DUMP_BYTES >> 20} MiB" in result.output


def test_regular_file_larger_than_the_bound_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(MAX_DUMP_BYTES + 1)  # sparse: its size says enough
    with pytest.raises(InputTooLarge, match=f"{big}: more than 16 MiB"):
        source.read_dump(str(big))


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "dump.fifo"
    os.mkfifo(path)
    yield path


def _feed(path: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        try:
            with open(path, "wb") as f:
                f.write(data)
        except BrokenPipeError:  # the reader stopped at its bound
            pass

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_a_pipe_is_read_as_a_dump(fifo: Path) -> None:
    # GIVEN a real dump written into a named pipe (bash's <(...) is one); the old code said
    # the pipe was "neither a file nor a snapshot in the store"
    writer = _feed(fifo, dump_text())
    # WHEN show reads it
    result = invoke("show", fifo, "--format", "csv", "--top", "0")
    writer.join(timeout=30)
    # THEN its rows are those of an independent reading of the dump
    assert result.exit_code == 0, result.output
    expected = oracle.rows(real("6.12", 1, 3))
    lines = result.output.strip().splitlines()
    assert len(lines) - 1 == len({(r.module, r.file, r.line, r.function) for r in expected})


def test_an_endless_pipe_stops_at_the_line_bound(fifo: Path) -> None:
    writer = _feed(fifo, b"x" * (MAX_LINE_BYTES * 4))
    with pytest.raises(InputTooLarge, match="a line longer than 4,096 bytes"):
        source.read_dump(str(fifo))
    writer.join(timeout=30)


def test_a_line_longer_than_the_bound_inside_a_chunk_is_refused_by_the_parser() -> None:
    text = dump_text().decode()
    long = "           0        0 mm/a.c:1 func:" + "f" * MAX_LINE_BYTES + " \n"
    with pytest.raises(ParseError) as info:
        parse.parse(long + text)
    assert info.value.line_number == 1
    assert "longer than 4,096 characters" in info.value.why


# -- control characters in dumps ------------------------------------------------------------------


@pytest.mark.parametrize("control", ["\x1b[31m", "\x07", "\x9b2J", "\x08", "\r"])
def test_control_characters_are_refused_with_the_line_number(control: str) -> None:
    # GIVEN a real dump whose 4th line has a control character in a function name (the old
    # parser kept it, and a terminal obeyed it when the name was shown)
    lines = dump_text().decode().split("\n")
    lines[3] = lines[3].replace("func:", "func:" + control, 1)
    text = "\n".join(lines)
    # WHEN parsed, THEN the error names line 4 and the character
    with pytest.raises(ParseError) as info:
        parse.parse(text, source="x.txt")
    assert info.value.line_number == 4
    assert f"control character {control[0]!r}" in info.value.why
    # AND lenient parsing skips that line alone
    kept = parse.parse(text, lenient=True)
    assert kept.skipped_lines == 1
    assert kept.samples.num_rows == len(oracle.rows(real("6.12", 1, 3))) - 1


def test_crlf_line_ends_are_still_read() -> None:
    text = dump_text().replace(b"\n", b"\r\n")
    assert parse.parse(text).samples.num_rows == len(oracle.rows(real("6.12", 1, 3)))


# -- case 9: names ------------------------------------------------------------------------------


BAD_HOSTS = ["a=b", "host=x", "date=2026-01-01", "a\nb", "a\\b", "x%2Fy", "a/b", ".x", "-x", ""]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_bad_host_names_are_refused_at_the_cli_and_the_store_stays_readable(
    host: str, store_dir: Path
) -> None:
    # GIVEN a store with one good snapshot
    assert (
        invoke("import", real("6.12", 1, 3), "--host", "web1", "--store", store_dir).exit_code == 0
    )
    # WHEN a dump is imported under a bad host name (the old code wrote host=a=b/..., and
    # every later command failed with "Hive partition mismatch")
    result = invoke("import", real("6.12", 1, 4), "--host", host, "--store", store_dir)
    # THEN it is a usage error naming the allowed characters
    assert result.exit_code == ExitCode.USAGE
    assert NAME_RULE in result.output
    # AND the store still lists its one snapshot
    listed = invoke("ls", "--store", store_dir, "--format", "csv")
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("\n") == 2


@pytest.mark.parametrize("host", [*BAD_HOSTS, "a\0b", "h" * 254])
def test_bad_host_names_are_refused_by_the_library(host: str) -> None:
    raw = source.RawRead(text=dump_text(), source="file", taken_at=AT)
    if host:  # capture reads "" as no host given: the read's own, or "unknown"
        with pytest.raises(UsageError, match=re.escape(NAME_RULE)):
            capture.snapshot(raw, host=host)
    with pytest.raises(UsageError, match=re.escape(NAME_RULE)):
        layout.partition_of(host, AT)


def test_good_names_pass() -> None:
    assert layout.partition_of("web-7.example_1", AT) == ("host=web-7.example_1/date=2026-11-26")
    assert check_snapshot_name("before.v2-1") == "before.v2-1"


@pytest.mark.parametrize("name", ["latest", "first", "LATEST", "a b", "a\nb", "-n", ".."])
def test_reserved_and_bad_snapshot_names_are_refused(name: str, store_dir: Path) -> None:
    # GIVEN the old code stored a snapshot named latest that no reference could reach
    result = invoke("import", real("6.12", 1, 3), "--name", name, "--store", store_dir)
    assert result.exit_code == ExitCode.USAGE
    assert "--name" in result.output
    assert not store_dir.exists()


def test_a_ten_megabyte_name_is_refused_with_a_short_message(store_dir: Path) -> None:
    result = invoke("import", real("6.12", 1, 3), "--name", "n" * 10_000_000, "--store", store_dir)
    assert result.exit_code == ExitCode.USAGE
    assert len(result.output) < 1000


def test_nul_bytes_in_names_are_refused() -> None:
    with pytest.raises(UsageError):
        check_snapshot_name("a\0b")


# -- case 10: globs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "glob", "says"),
    [
        ("--function", "[z-a]", "the range z-a runs backwards"),
        ("--function", "[^]", "never closed"),
        ("--module", "[[:alpha:]", "never closed"),
        ("--file", "[[:nope:]]*", "unknown character class"),
    ],
)
def test_bad_globs_are_usage_errors(option: str, glob: str, says: str) -> None:
    # GIVEN the old code ended in a pyarrow.lib.ArrowInvalid traceback
    result = invoke("show", real("6.12", 1, 3), option, glob)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert says in result.output
    assert "Traceback" not in result.output


def test_bad_host_glob_is_a_usage_error(store_dir: Path) -> None:
    assert (
        invoke("import", real("6.12", 1, 3), "--host", "web1", "--store", store_dir).exit_code == 0
    )
    result = invoke("ls", "--store", store_dir, "--host", "[z-a]")
    assert result.exit_code == ExitCode.USAGE  # the old code: 1
    assert "runs backwards" in result.output


def test_posix_classes_in_globs_match_like_the_shell() -> None:
    # GIVEN functions starting with a digit or a letter, counted by hand from the dump
    rows = oracle.rows(real("6.12", 1, 3))
    alpha = {(r.file, r.line, r.function) for r in rows if r.function[:1].isalpha()}
    # WHEN filtered by [[:alpha:]]* (the old code: ArrowInvalid)
    result = invoke(
        "show", real("6.12", 1, 3), "--function", "[[:alpha:]]*", "-f", "csv", "-n", "0"
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") - 1 == len(alpha)


# -- allocsnap sql: the store's files only, unless --unsafe ----------------------------------


@pytest.fixture
def one_store(store_dir: Path) -> Path:
    assert (
        invoke("import", real("6.12", 1, 3), "--host", "web1", "--store", store_dir).exit_code == 0
    )
    return store_dir


def test_sql_cannot_write_files_outside_the_store(one_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    result = invoke("sql", "--store", one_store, f"copy (select 1 as a) to '{target}'")
    assert result.exit_code == ExitCode.FAILURE
    assert "--unsafe" in result.output
    assert not target.exists()


def test_sql_cannot_read_other_files(one_store: Path) -> None:
    result = invoke("sql", "--store", one_store, "select * from read_csv('/etc/passwd')")
    assert result.exit_code == ExitCode.FAILURE
    assert "Permission Error" in result.output and "root:" not in result.output


def test_sql_cannot_write_into_the_store_or_lift_its_sandbox(one_store: Path) -> None:
    for text in (
        f"copy (select 1 as a) to '{one_store}/samples/x.parquet'",
        "set enable_external_access = true",
        "set lock_configuration = false",
    ):
        result = invoke("sql", "--store", one_store, text)
        assert result.exit_code == ExitCode.FAILURE, text
    assert not (one_store / "samples" / "x.parquet").exists()


def test_sql_cannot_point_the_views_at_other_files(one_store: Path, tmp_path: Path) -> None:
    # GIVEN a Parquet file outside the store, and the views reading their paths from variables
    # (queries/store_files.sql)
    outside = tmp_path / "outside.parquet"
    pq.write_table(pa.table({"secret": ["root:x:0:0"]}), outside)
    # WHEN the user's SQL sets the variable that tag_files reads to that file, then reads it
    text = f"set variable allocsnap_tag_paths = ['{outside}']; select * from tag_files"  # noqa: S608
    result = invoke("sql", "--store", one_store, text)
    # THEN the sandbox refuses the read, as it refuses read_parquet of that path
    assert result.exit_code == ExitCode.FAILURE
    assert "Permission Error" in result.output and "root:x" not in result.output


def test_sql_views_still_work_in_the_sandbox(one_store: Path) -> None:
    rows = oracle.rows(real("6.12", 1, 3))
    result = invoke(
        "sql",
        "--store",
        one_store,
        "select count(*) as n, sum(bytes) as b from latest",
        "-f",
        "csv",
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == f"{len(rows)},{sum(r.bytes for r in rows)}"


def test_sql_unsafe_lets_the_user_write_a_file(one_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "x.parquet"
    text = f"copy (select count(*) as n from samples) to '{target}'"  # noqa: S608  the user's SQL
    result = invoke("sql", "--unsafe", "--store", one_store, text)
    assert result.exit_code == 0, result.output
    assert pq.read_table(target).to_pylist() == [{"n": len(oracle.rows(real("6.12", 1, 3)))}]


def test_sql_query_file_is_read_with_a_bound(one_store: Path) -> None:
    # GIVEN the old code read --query-file /dev/zero until the memory ran out: a child with
    # 1 GiB of address space
    done = subprocess.run(
        [sys.executable, "-m", "allocsnap", "sql", "--store", str(one_store)]
        + ["--query-file", "/dev/zero"],
        capture_output=True,
        text=True,
        preexec_fn=_one_gib,
        timeout=120,
        check=False,
    )
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "/dev/zero: more than 1,048,576 characters of SQL" in done.stderr
