"""The one-shot path (allocsnap/oneshot) against the normal one: the same rows as
queries/diff.sql and show.sql, the same bytes on stdout and stderr, the same errors; and no
pyarrow, numpy or DuckDB in the process that takes it."""

from __future__ import annotations

import functools
import io
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import allocsnap.oneshot
from allocsnap import analysis, model
from allocsnap.cli import app, oneshot_argv
from allocsnap.kernel import capture, parse
from allocsnap.oneshot import dumps, groups
from allocsnap.present import tables
from allocsnap.present.render import Format, render
from tests.conftest import DATA

REAL = sorted((DATA / "real").glob("*/boot-*/snap-*.txt"))
PUBLIC = sorted((DATA / "public").glob("*.txt"))
BY = ["tag", "function", "file", "module", "dir", "dir:1", "dir:3"]
ROOT = Path(__file__).parent.parent


def same_kernel_pairs() -> Iterator[tuple[Path, Path]]:
    """Every real capture against every other of its kernel, both ways round."""
    for _, files in itertools.groupby(REAL, key=lambda p: p.parent.parent.name):
        yield from itertools.permutations(list(files), 2)


def consecutive_pairs() -> Iterator[tuple[Path, Path]]:
    """Each capture in tests/data (real, then public) against the next one."""
    everything = REAL + PUBLIC
    yield from zip(everything, everything[1:], strict=False)


PAIRS = sorted(set(same_kernel_pairs()) | set(consecutive_pairs()))


def quick_dump(path: Path) -> dumps.Dump | None:
    try:
        return dumps.read(str(path))
    except dumps.NotQuick:
        return None


def quick(*paths: Path) -> bool:
    """Return True when the one-shot path reads every one of ``paths`` (the others, refused,
    are the normal path's: the error tests below)."""
    return all(quick_dump(p) is not None for p in paths)


QUICK = [p for p in REAL + PUBLIC if quick(p)]
QUICK_PAIRS = [pair for pair in PAIRS if quick(*pair)]


@functools.cache
def normal(path: Path) -> model.Snapshot:
    return analysis.load(str(path), Path("no-store"))


def pair_id(pair: tuple[Path, Path]) -> str:
    return "-".join(f"{p.parent.parent.name[:4]}/{p.parent.name}/{p.stem}"[:40] for p in pair)


# -- the rows: queries/diff.sql and show.sql are the definition --------------------------------


@pytest.mark.parametrize("pair", QUICK_PAIRS, ids=[pair_id(p) for p in QUICK_PAIRS])
def test_diff_rows_are_diff_sql_rows_for_every_grouping(pair: tuple[Path, Path]) -> None:
    # GIVEN two captures the one-shot path reads
    old, new = (quick_dump(p) for p in pair)
    assert old is not None and new is not None

    for by in BY:
        # WHEN both paths diff them, all groups, THEN the rows are diff.sql's, in its order
        rows, changed = groups.diff_rows(
            old, new, groups.Grouping.parse(by), min_delta=0, top_n=None
        )
        result = analysis.diff(
            normal(pair[0]),
            normal(pair[1]),
            grouping=analysis.Grouping.parse(by),
            top_n=None,
            per_hour=False,
        )
        assert rows == result.rows.to_pylist(), by
        assert changed == result.changed

        # AND a --top and a --min-delta cut them as diff.sql does
        if by not in ("tag", "dir"):
            continue
        rows, changed = groups.diff_rows(
            old, new, groups.Grouping.parse(by), min_delta=4096, top_n=3
        )
        result = analysis.diff(
            normal(pair[0]),
            normal(pair[1]),
            grouping=analysis.Grouping.parse(by),
            top_n=3,
            min_delta=4096,
            per_hour=False,
        )
        assert (rows, changed) == (result.rows.to_pylist(), result.changed), by


@pytest.mark.parametrize("path", QUICK, ids=lambda p: p.stem[:40])
def test_show_rows_are_show_sql_rows_for_every_grouping_and_sort(path: Path) -> None:
    dump = quick_dump(path)
    assert dump is not None
    for by, sort, top in itertools.product(BY, ("bytes", "calls", "tag"), (0, 5)):
        rows, count = groups.show_rows(dump, groups.Grouping.parse(by), sort=sort, top_n=top)
        result = analysis.show(
            normal(path), grouping=analysis.Grouping.parse(by), sort=sort, top_n=top
        )
        assert (rows, count) == (result.rows.to_pylist(), result.groups), (by, sort, top)


def test_every_real_capture_takes_the_one_shot_path() -> None:
    # The equalities above run on the captures the one-shot path reads: those that matter must
    # stay among them
    assert all(quick(p) for p in REAL)
    assert sum(quick(p) for p in PUBLIC) >= 10


# -- the output: the same bytes as the normal path's --------------------------------------------


def normal_diff(before: Path, after: Path, by: str, top: int, fmt: Format) -> tuple[str, str]:
    """stdout and stderr of the normal path's diff of two dumps (the CLI's steps)."""
    grouping = analysis.Grouping.parse(by)
    old, new = normal(before), normal(after)
    result = analysis.diff(old, new, grouping=grouping, top_n=top, per_hour=False)
    out, err = io.StringIO(), io.StringIO()
    for warning in result.warnings:
        if fmt in (Format.csv, Format.json) or warning in result.comparability:
            err.write(f"warning: {warning}\n")
    render(tables.diff_report(result, grouping), fmt, out)
    return out.getvalue(), err.getvalue()


def quick_diff(before: Path, after: Path, by: str, top: int, fmt: Format) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    answered = allocsnap.oneshot.diff(
        str(before), str(after), by=by, top=top, min_delta="0", fmt=fmt, out=out, err=err
    )
    assert answered
    return out.getvalue(), err.getvalue()


OUTPUT_PAIRS = [pair for pair in sorted(set(consecutive_pairs())) if quick(*pair)]


@pytest.mark.parametrize("pair", OUTPUT_PAIRS, ids=[pair_id(p) for p in OUTPUT_PAIRS])
def test_diff_output_is_the_normal_paths_in_every_format(pair: tuple[Path, Path]) -> None:
    for fmt, by in itertools.product(Format, ("tag", "dir:1")):
        assert quick_diff(*pair, by, 20, fmt) == normal_diff(*pair, by, 20, fmt), (fmt, by)
    assert quick_diff(*pair, "module", 0, Format.table) == normal_diff(
        *pair, "module", 0, Format.table
    )


@pytest.mark.parametrize("path", QUICK, ids=lambda p: p.stem[:40])
def test_show_output_is_the_normal_paths_in_every_format(path: Path) -> None:
    for fmt, by in itertools.product(Format, ("tag", "file", "dir")):
        grouping = analysis.Grouping.parse(by)
        expected = io.StringIO()
        render(
            tables.show_report(analysis.show(normal(path), grouping=grouping), grouping),
            fmt,
            expected,
        )
        out = io.StringIO()
        shown = allocsnap.oneshot.show
        assert shown(str(path), sort="bytes", by=by, top=20, fmt=fmt, out=out, err=io.StringIO())
        assert out.getvalue() == expected.getvalue(), (fmt, by)


def test_the_warnings_of_two_dumps_are_the_normal_paths(tmp_path: Path) -> None:
    # GIVEN one dump twice (the same snapshot), and a later dump older on disk with a module
    a = REAL[0]
    b = tmp_path / "b.txt"
    b.write_text(a.read_text() + "        4096        1 fs/x.c:1 [xmod] func:x \n")
    os.utime(b, (1, 1))

    # THEN each path says the same, in every format
    for pair, fmt in itertools.product([(a, a), (a, b), (b, a)], Format):
        assert quick_diff(*pair, "tag", 20, fmt) == normal_diff(*pair, "tag", 20, fmt)


# -- through the command line: the same bytes, the same errors -----------------------------------

runner = CliRunner()


def both_ways(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[Result, Result]:
    """Run the CLI as it is, then with the one-shot path turned away."""
    quick = runner.invoke(app, list(args))
    with monkeypatch.context() as m:
        m.setattr(allocsnap.oneshot, "diff", lambda *a, **k: False)
        m.setattr(allocsnap.oneshot, "show", lambda *a, **k: False)
        slow = runner.invoke(app, list(args))
    return quick, slow


def same(quick: Result, slow: Result) -> None:
    assert (quick.exit_code, quick.stdout, quick.stderr) == (
        slow.exit_code,
        slow.stdout,
        slow.stderr,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--by", "module", "--top", "3"],
        ["-n", "0", "-f", "json"],
        ["--min-delta", "1M", "--format", "csv"],
        ["--by", "dir:3", "-f", "markdown"],
        ["--module", "built-in"],  # the normal path: a filter
        ["--by", "host"],  # refused by the normal path
        ["--by", "dir:0"],
        ["--min-delta", "lots"],
        ["--lenient"],
    ],
)
def test_cli_diff_is_the_same_with_and_without_the_one_shot_path(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    a, b = REAL[0], REAL[1]
    same(*both_ways(monkeypatch, "diff", str(a), str(b), *args))


@pytest.mark.parametrize(
    "args", [[], ["--sort", "calls", "--by", "file"], ["--sort", "size"], ["-f", "json", "-n", "0"]]
)
def test_cli_show_is_the_same_with_and_without_the_one_shot_path(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    same(*both_ways(monkeypatch, "show", str(REAL[-1]), *args))


@pytest.mark.parametrize("path", PUBLIC, ids=lambda p: p.stem[:40])
def test_a_malformed_dump_gets_the_normal_paths_error(
    monkeypatch: pytest.MonkeyPatch, path: Path
) -> None:
    # every public fixture, the refused ones (a patched column, numfmt sizes, dmesg) included
    same(*both_ways(monkeypatch, "show", str(path)))
    same(*both_ways(monkeypatch, "diff", str(REAL[0]), str(path)))


@pytest.mark.parametrize(
    "bad",
    [
        "   1.5M       3 mm/x.c:1 func:f \n",  # numfmt
        "        4096        1 mm/x.c:1 func:f 7\n",  # a patched kernel's extra column
        "[    1.234] show_mem\n",  # dmesg
        "        4096        1 mm/x.c:1 func:\x1b[31mf \n",  # a control character
        "        4096        1 mm/x.c:99999999999 func:f \n",  # a line past u32
        "        4096        1 mm/x.c:1 func:f",  # truncated: no newline, no trailing space
        "allocinfo - version: 9.9\n",  # an unknown version: a note
        "\xff\xfe junk\n",
    ],
)
def test_a_bad_line_gets_the_normal_paths_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bad: str
) -> None:
    dump = tmp_path / "bad.txt"
    dump.write_bytes(REAL[0].read_bytes() + bad.encode("utf-8", "surrogateescape"))
    quick, slow = both_ways(monkeypatch, "diff", str(REAL[0]), str(dump))
    same(quick, slow)
    if quick.exit_code:
        assert f"{dump}: line " in quick.stderr


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_an_all_zero_dump_is_profiling_off_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fmt: str
) -> None:
    zeros = tmp_path / "zeros.txt"
    zeros.write_text("allocinfo - version: 1.0\n        0        0 mm/x.c:1 func:f \n")
    assert quick_dump(zeros) is not None
    same(*both_ways(monkeypatch, "diff", str(zeros), str(REAL[0]), "-f", fmt))
    same(*both_ways(monkeypatch, "diff", str(REAL[0]), str(zeros), "-f", fmt))
    same(*both_ways(monkeypatch, "show", str(zeros), "-f", fmt))


def test_stdin_takes_the_normal_path() -> None:
    assert not allocsnap.oneshot.show(
        "-", sort="bytes", by="tag", top=20, fmt=Format.table, out=io.StringIO(), err=io.StringIO()
    )


def test_a_snapshot_file_takes_the_normal_path(tmp_path: Path) -> None:
    from allocsnap.kernel import source
    from allocsnap.store import single_file

    path = tmp_path / "s.parquet"
    single_file.write_snapshot_file(path, capture.snapshot(source.read_dump(str(REAL[0]))))
    assert not dumps.is_plain_file(str(path))


# -- one definition of what a dump is ------------------------------------------------------------


def test_the_dump_rules_are_the_parsers_and_the_models() -> None:
    assert dumps.ROW.pattern == parse._ROW.pattern
    assert dumps.HEADER.pattern == parse._HEADER.pattern
    assert dumps.KNOWN_VERSIONS == parse.KNOWN_VERSIONS
    assert (dumps.MAX_DUMP_BYTES, dumps.MAX_LINE_BYTES) == (
        model.MAX_DUMP_BYTES,
        model.MAX_LINE_BYTES,
    )
    assert dumps.SCHEMA_VERSION == model.SCHEMA_VERSION
    assert dumps.UNKNOWN_HOST == capture.UNKNOWN_HOST
    assert dumps.COUNTED_NOTHING_NOTE == capture.COUNTED_NOTHING_NOTE
    assert groups.GROUPINGS == analysis.GROUPINGS
    assert groups.DEFAULT_DIR_DEPTH == analysis.DEFAULT_DIR_DEPTH


@pytest.mark.parametrize("by", [*BY, "dir:12", "host", "dir:0", "dir:x", "tag:2", "", "TAG"])
def test_a_grouping_is_taken_only_as_analysis_reads_it(by: str) -> None:
    try:
        expected = analysis.Grouping.parse(by)
    except Exception:
        with pytest.raises(dumps.NotQuick):
            groups.Grouping.parse(by)
    else:
        quick = groups.Grouping.parse(by)
        assert (quick.by, quick.depth) == (expected.by, expected.depth)


# -- the point of it: no pyarrow, numpy or DuckDB ----------------------------------------------

FOLDER = DATA / "real" / "7.3.4-allocsnap" / "boot-2"


def imported_by(*argv: str, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """Run ``python -m allocsnap ARGV``; return its stdout and the top-level packages imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "allocsnap", *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    lines = done.stderr.splitlines()
    return done.stdout, {line.split("|")[-1].strip().split(".")[0] for line in lines if "|" in line}


@pytest.mark.parametrize("command", [["diff", "snap-0.txt", "snap-1.txt"], ["show", "snap-1.txt"]])
def test_the_one_shot_commands_import_no_pyarrow_numpy_duckdb_nor_typer(command: list[str]) -> None:
    argv = [str(FOLDER / a) if a.endswith(".txt") else a for a in command]
    out, imported = imported_by(*argv)
    assert out.startswith("before:" if command[0] == "diff" else "snapshot:")
    assert not imported & {"pyarrow", "numpy", "duckdb", "pandas", "typer"}


def test_through_typer_the_one_shot_path_imports_no_pyarrow_either(tmp_path: Path) -> None:
    # GIVEN a command line only typer reads (--store), THEN typer answers it without pyarrow
    a, b = str(FOLDER / "snap-0.txt"), str(FOLDER / "snap-1.txt")
    out, imported = imported_by("diff", a, b, "--store", str(tmp_path), "-n", "+3")
    assert out.startswith("before:") and "typer" in imported
    assert not imported & {"pyarrow", "numpy", "duckdb", "pandas"}


# -- the command line read without typer: what it takes, typer would read the same way ----------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--by=module", "-n", "3"],
        ["-f", "json", "--top=0"],
        ["--min-delta", "1M", "--format", "csv"],
        ["--by", "dir:1", "-f", "markdown", "--top", "5"],
        ["-n", "+3"],  # typer's number
        ["-f", "JSON"],  # typer's refusal
        ["--top", "-1"],
        ["--by"],
        ["-n5"],
        ["--by", "tag", "--by", "file"],
        ["--by", "host"],
        ["--module", "ext4"],
    ],
)
def test_a_diff_command_line_reads_as_typer_reads_it(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    a, b = str(REAL[0]), str(REAL[1])
    done = subprocess.run(
        [sys.executable, "-m", "allocsnap", "diff", a, *args[:1], b, *args[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    _, slow = both_ways(monkeypatch, "diff", a, *args[:1], b, *args[1:])
    assert (done.returncode, done.stdout) == (slow.exit_code, slow.stdout)
    if done.returncode == 0:
        assert done.stderr == slow.stderr
    else:  # typer's usage text names the program as it was started
        assert done.stderr.splitlines()[-1] == slow.stderr.splitlines()[-1]


def test_a_closed_pipe_ends_the_command_as_typer_ends_it() -> None:
    # GIVEN a reader that goes away after ten bytes (`allocsnap show ... | head -c 10`)
    dump = FOLDER / "snap-1.txt"
    for top in ("0", "+0"):  # without typer, then through it (typer's number)
        # WHEN show writes more than a pipe holds, THEN exit 1 and nothing on stderr
        line = f"{sys.executable} -m allocsnap show {dump} -n {top} | head -c 10"
        done = subprocess.run(
            ["bash", "-c", line + "; exit ${PIPESTATUS[0]}"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert (done.returncode, done.stdout, done.stderr) == (1, "snapshot: ", ""), top


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "a.txt", "--sort", "calls", "-n", "0"],
        ["diff", "a.txt", "b.txt", "--min-delta=4K"],
        ["show", "latest", "--store", "s", "-f", "json"],
        ["diff", "first", "latest", "--store=s", "-n", "3"],
        ["diff", "first", "latest", "--host", "web*", "--host=db?"],
    ],
)
def test_the_plain_command_lines_are_read_without_typer(argv: list[str]) -> None:
    assert oneshot_argv.read(argv) is not None


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "a.txt", "b.txt"],
        ["diff", "a.txt"],
        ["diff", "a.txt", "-"],
        ["diff", "a.txt", "b.txt", "--", "-c"],
        ["diff", "a.txt", "b.txt", "--help"],
        ["diff", "a.txt", "b.txt", "-n=3"],
        ["diff", "a.txt", "b.txt", "--sort", "calls"],
        ["show", "a.txt", "--min-delta", "1"],
        ["show", "latest", "--host", "[v]m1"],
        ["ls"],
    ],
)
def test_other_command_lines_are_left_to_typer(argv: list[str]) -> None:
    assert oneshot_argv.read(argv) is None


def test_a_store_variable_typer_refuses_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(oneshot_argv.STORE_VARIABLE, "s3://")
    assert not oneshot_argv.answered(["show", str(REAL[0])])
