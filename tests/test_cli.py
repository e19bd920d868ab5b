"""The allocsnap CLI through typer's CliRunner: exit codes, stdout (data) and stderr apart."""

from __future__ import annotations

import ast
import csv
import errno
import functools
import importlib.metadata
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from allocsnap.cli import app, core
from allocsnap.errors import ExitCode
from allocsnap.kernel import source
from tests import oracle
from tests.conftest import DATA, Golden, public, real

runner = CliRunner()

BOOT1 = "real/6.12.117-allocsnap/boot-1"


def invoke(*args: str, input: str | bytes | None = None, **env: str) -> Result:
    return runner.invoke(app, list(args), input=input, env=env or None)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.stderr + repr(result.exception)
    return result.stdout


def expected_rows(before: Path, after: Path, by: str = "tag") -> list[oracle.Change]:
    return oracle.diff(oracle.rows(before), oracle.rows(after), by)


# -- exit codes ------------------------------------------------------------------------------


def test_missing_store_is_exit_4_with_one_line(tmp_path: Path) -> None:
    # GIVEN a store path with nothing there
    absent = tmp_path / "absent"

    # WHEN listing it, THEN exit 4, nothing on stdout, one line on stderr
    result = invoke("ls", "--store", str(absent))
    assert result.exit_code == ExitCode.NO_STORE
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: store {absent} does not exist")
    assert result.stderr.count("\n") == 1

    # AND a diff of names against it fails the same way
    result = invoke("diff", "before", "after", "--store", str(absent))
    assert result.exit_code == ExitCode.NO_STORE
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: 'before'")


def test_snap_without_allocinfo_is_exit_3(store_dir: Path) -> None:
    # GIVEN the guard: no /proc/allocinfo and no sysctl (a kernel without profiling)
    # WHEN snap reads the kernel
    result = invoke("snap", "--store", str(store_dir))

    # THEN exit 3 with one line naming the kernel option, and no store is created
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "CONFIG_MEM_ALLOC_PROFILING" in result.stderr
    assert str(source.ALLOCINFO) in result.stderr
    assert not store_dir.exists()


def test_allocinfo_absent_with_sysctl_means_never(store_dir: Path) -> None:
    # GIVEN the sysctl exists (profiling built in) but the file does not: booted with never
    (source.PROC / "sys/vm").mkdir(parents=True)
    (source.PROC / "sys/vm/mem_profiling").write_text("0\n")

    # WHEN snap reads the kernel, THEN exit 3 and the fix is the boot parameter
    result = invoke("snap", "--store", str(store_dir))
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "sysctl.vm.mem_profiling=1" in result.stderr


def test_permission_denied_message() -> None:
    # GIVEN an EACCES (root reads everything, so the error is made, not provoked)
    e = PermissionError(errno.EACCES, "Permission denied")

    # THEN the message says how to get access
    message = source.explain_unavailable(Path("/proc/allocinfo"), e)
    assert "permission denied" in message and "root" in message and "\n" not in message


@pytest.mark.slow
def test_snap_from_fake_kernel_file(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN source.ALLOCINFO pointed at a copy of a real capture, modules listed in PROC
    fake = tmp_path / "allocinfo"
    fake.write_bytes(real("7.3", 2, 0).read_bytes())
    monkeypatch.setattr(source, "ALLOCINFO", fake)
    (source.PROC / "modules").write_text("zram 1 0 - Live 0x0\nloop 1 0 - Live 0x0\n")
    (source.PROC / "sys/vm").mkdir(parents=True)
    (source.PROC / "sys/vm/mem_profiling").write_text("1\n")

    # WHEN snap reads "the kernel" and lists the store as JSON
    ok(invoke("snap", "--store", str(store_dir), "--name", "k"))
    listing = json.loads(ok(invoke("ls", "--store", str(store_dir), "-f", "json")))

    # THEN it is a procfs snapshot with the capture's rows and the profiling state
    [row] = listing["rows"]
    assert (row["name"], row["source"], row["profiling"]) == ("k", "procfs", 1)
    assert row["rows"] == len(oracle.rows(real("7.3", 2, 0)))


@pytest.mark.parametrize(
    "args",
    [
        ["--min-size", "1X"],
        ["--max-size", "lots"],
        ["--min-delta", "3 apples"],
        ["--by", "colour"],
        ["--sort", "x"],
        ["--no-such-option"],
    ],
)
def test_bad_option_is_exit_2(args: list[str]) -> None:
    # GIVEN a bad size, grouping or option
    cmd = "show" if args[0] == "--sort" else "diff"
    operands = [str(real("6.12", 1, 0))] * (1 if cmd == "show" else 2)

    # WHEN run, THEN exit 2 and nothing on stdout
    result = invoke(cmd, *operands, *args)
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert result.stderr.strip()


def test_bad_text_is_exit_1_naming_the_line(tmp_path: Path) -> None:
    # GIVEN the numfmt excerpt, WHEN shown, THEN exit 1 with the file, line and reason
    path = public("05")
    result = invoke("show", str(path))
    assert result.exit_code == ExitCode.FAILURE
    assert result.stdout == ""
    assert f"{path}: line 1: human-readable size" in result.stderr
    # AND a path that does not exist is taken as a store reference: no store, exit 4
    missing = invoke("show", str(tmp_path / "x.txt"), "--store", str(tmp_path))
    assert missing.exit_code == ExitCode.NO_STORE


# -- workflows -------------------------------------------------------------------------------


def diff_csv(stdout: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(stdout)))


def check_csv_against_reader(stdout: str, before: Path, after: Path, top: int) -> None:
    rows = diff_csv(stdout)
    expected = expected_rows(before, after)[:top]
    assert [(r["key"], int(r["delta_bytes"]), int(r["bytes_after"])) for r in rows] == [
        (c.key, c.delta_bytes, c.bytes_after) for c in expected
    ]


def minutes_apart(tmp_path: Path, *captures: Path) -> list[Path]:
    """Copy captures with mtimes a minute apart: a clone gives them one, and a host has one
    snapshot per instant (snap --source takes a dump's time from its mtime)."""
    copies = []
    for i, capture in enumerate(captures):
        copy = tmp_path / f"{i}-{capture.name}"
        copy.write_bytes(capture.read_bytes())
        os.utime(copy, (1_765_000_000 + 60 * i, 1_765_000_000 + 60 * i))
        copies.append(copy)
    return copies


@pytest.mark.slow
def test_snap_names_then_diff_with_store_option(store_dir: Path, tmp_path: Path) -> None:
    # GIVEN two dumps snapped into a store under names
    b, a = minutes_apart(tmp_path, real("6.12", 1, 2), real("6.12", 1, 3))
    first = invoke("snap", "--source", str(b), "--name", "before", "--store", str(store_dir))
    second = invoke("snap", "--source", str(a), "--name", "after", "--store", str(store_dir))

    # THEN each prints only its id on stdout, and a status line on stderr
    for result in (first, second):
        out = ok(result)
        assert len(out.strip()) == 12 and out.endswith("\n") and "\n" not in out.strip()
        assert "rows" in result.stderr

    # WHEN diffed by name as CSV
    out = ok(invoke("diff", "before", "after", "--store", str(store_dir), "-f", "csv", "-n", "15"))

    # THEN the rows are the reader's top 15
    check_csv_against_reader(out, b, a, 15)


@pytest.mark.slow
def test_snap_then_diff_with_env_store(store_dir: Path, tmp_path: Path) -> None:
    # GIVEN ALLOCSNAP_STORE instead of --store
    env = {"ALLOCSNAP_STORE": str(store_dir)}
    b, a = minutes_apart(tmp_path, real("6.12", 1, 0), real("6.12", 1, 1))
    ok(invoke("snap", "--source", str(b), "--name", "before", **env))
    ok(invoke("snap", "--source", str(a), "--name", "after", **env))

    # WHEN diffed with the environment only
    out = ok(invoke("diff", "before", "after", "-f", "csv", "--top", "0", **env))

    # THEN every change is there, and the store is where the variable said
    check_csv_against_reader(out, b, a, 10**6)
    assert (store_dir / "allocsnap-store.json").is_file()


@pytest.mark.slow
def test_snap_to_files_then_diff_files(tmp_path: Path) -> None:
    # GIVEN two snapshot files written with -o
    b, a = real("6.12", 1, 3), real("6.12", 1, 4)
    x, y = tmp_path / "x.parquet", tmp_path / "y.parquet"
    assert ok(invoke("snap", "--source", str(b), "-o", str(x))) == f"{x}\n"
    assert ok(invoke("snap", "--source", str(a), "-o", str(y))) == f"{y}\n"

    # WHEN diffed as files (no store exists anywhere)
    out = ok(
        invoke("diff", str(x), str(y), "-f", "csv", "-n", "10", "--store", str(tmp_path / "none"))
    )

    # THEN the rows are the reader's, and the unloaded module rows say so
    check_csv_against_reader(out, b, a, 10)
    statuses = {r["status"] for r in diff_csv(out) if "[" in r["key"]}
    assert statuses <= {"unloaded"}


@pytest.mark.slow
def test_diff_text_dumps_and_stdin() -> None:
    # GIVEN two text dumps
    b, a = real("6.12", 1, 1), real("6.12", 1, 2)

    # WHEN diffed directly, and with the later one on stdin
    direct = ok(invoke("diff", str(b), str(a), "-f", "csv", "-n", "8"))
    piped = ok(invoke("diff", str(b), "-", "-f", "csv", "-n", "8", input=a.read_bytes()))

    # THEN both give the reader's rows
    check_csv_against_reader(direct, b, a, 8)
    assert piped == direct

    # AND '-' twice is refused
    twice = invoke("diff", "-", "-", input=b"")
    assert twice.exit_code == ExitCode.USAGE


def test_show_from_stdin_csv() -> None:
    # GIVEN a dump on stdin
    path = real("7.3", 2, 1)
    sums = oracle.sums(oracle.rows(path), "module")

    # WHEN shown by module as CSV, all groups
    out = ok(invoke("show", "-", "--by", "module", "-f", "csv", "-n", "0", input=path.read_text()))

    # THEN the groups and sums are the reader's
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["key"]: (int(r["bytes"]), int(r["calls"])) for r in rows} == sums


@pytest.mark.slow
def test_formats_parse_back_and_agree(tmp_path: Path) -> None:
    # GIVEN boot-1 2 -> 3 by module
    b, a = real("6.12", 1, 2), real("6.12", 1, 3)
    expected = expected_rows(b, a, "module")
    args = ["diff", str(b), str(a), "--by", "module", "-n", "0"]

    # WHEN rendered as CSV, JSON and Markdown
    as_csv = diff_csv(ok(invoke(*args, "-f", "csv")))
    as_json = json.loads(ok(invoke(*args, "-f", "json")))
    as_md = ok(invoke(*args, "-f", "markdown"))

    # THEN CSV and JSON carry the reader's raw numbers, and Markdown one table row per group
    want = [(c.key, c.bytes_before, c.bytes_after, c.delta_calls) for c in expected]
    assert [
        (r["key"], int(r["bytes_before"]), int(r["bytes_after"]), int(r["delta_calls"]))
        for r in as_csv
    ] == want
    assert [
        (r["key"], r["bytes_before"], r["bytes_after"], r["delta_calls"]) for r in as_json["rows"]
    ] == want
    assert as_json["by"] == "module" and as_json["changed"] == len(expected)
    totals = as_json["totals"]
    assert (
        totals["bytes_after"] - totals["bytes_before"]
        == totals["delta_bytes"]
        == sum(r.bytes for r in oracle.rows(a)) - sum(r.bytes for r in oracle.rows(b))
    )
    table_rows = [
        line for line in as_md.splitlines() if line.startswith("| ") and "Δbytes" not in line
    ]
    assert [line.rsplit("|", 2)[1].strip() for line in table_rows] == [c.key for c in expected]


@pytest.mark.slow
def test_import_with_at_host_label_shows_in_ls(store_dir: Path) -> None:
    # GIVEN the ice leak excerpts imported with explicit time, host and labels
    for prefix, day in (("11", "2025-06-26"), ("12", "2025-06-30")):
        out = ok(invoke("import", str(public(prefix)), "--store", str(store_dir),
                        "--at", f"{day}T08:00:00Z", "--host", "pulchart", "--label", "ticket=ice",
                        "--label", "day=" + day, "--name", f"ice-{prefix}"))  # fmt: skip
        assert len(out.strip()) == 12

    # WHEN listed as JSON
    listing = json.loads(ok(invoke("ls", "--store", str(store_dir), "-f", "json")))

    # THEN both appear oldest first with the given time, host, name and labels
    assert listing["snapshots"] == 2
    rows = listing["rows"]
    assert [r["name"] for r in rows] == ["ice-11", "ice-12"]
    assert [r["taken_at"] for r in rows] == [
        "2025-06-26T08:00:00+00:00",
        "2025-06-30T08:00:00+00:00",
    ]
    assert {r["host"] for r in rows} == {"pulchart"}
    assert [r["labels"] for r in rows] == [
        "day=2025-06-26, ticket=ice",
        "day=2025-06-30, ticket=ice",
    ]
    assert [r["rows"] for r in rows] == [15, 15]
    assert (store_dir / "snapshots/host=pulchart/date=2025-06-30").is_dir()

    # AND the diff over four days names the ice row's growth first, with a per-hour rate
    out = json.loads(
        ok(invoke("diff", "ice-11", "ice-12", "--store", str(store_dir), "-f", "json"))
    )
    expected = expected_rows(public("11"), public("12"))
    first = out["rows"][0]
    assert (first["key"], first["delta_bytes"]) == (expected[0].key, expected[0].delta_bytes)
    assert first["bytes_per_hour"] == round(expected[0].delta_bytes / 96)


# -- help and golden files ---------------------------------------------------------------------


def commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return sorted(group.list_commands(typer.Context(group)))


def test_every_registered_command_is_in_its_family() -> None:
    # GIVEN every module of the CLI imported (not only the families the table names: a new
    # module left out of it would be a command nobody can run), so that each registered its
    # commands
    import importlib
    import pkgutil

    import typer.main

    import allocsnap.cli
    from allocsnap.cli import core

    for module in pkgutil.iter_modules(allocsnap.cli.__path__):
        importlib.import_module(f"allocsnap.cli.{module.name}")
    # WHEN the registered commands are listed, by name and module
    registered = {
        info.name or typer.main.get_command_name(info.callback.__name__): info.callback.__module__
        for info in app.registered_commands
        if info.callback is not None
    }
    # THEN the table the command line loads them from names each in its module, and no other
    assert registered == {name: f"allocsnap.cli.{f}" for name, f in core.FAMILIES.items()}


def test_the_top_level_help_lists_every_command_without_loading_one() -> None:
    # GIVEN a new process that asks for the top level's help
    report = "sorted(m for m in sys.modules if m.startswith('allocsnap.cli.'))"
    # WHEN it runs
    out, loaded = probed(["--help"], report)
    # THEN it lists every command, and loaded no family of commands
    assert loaded == "['allocsnap.cli.core']"
    from allocsnap.cli import core

    listed = [line.split()[0] for line in out.split("Commands")[1].splitlines()[1:] if line.strip()]
    assert [name.strip("│ ") for name in listed if name.strip("│ ")] == list(core.FAMILIES)


def test_each_summary_the_top_level_lists_is_its_commands_own() -> None:
    # GIVEN every command built (every module of the CLI imported)
    import importlib
    import pkgutil

    import typer.main

    import allocsnap.cli
    from allocsnap.cli import core

    for module in pkgutil.iter_modules(allocsnap.cli.__path__):
        importlib.import_module(f"allocsnap.cli.{module.name}")
    group = typer.main.get_command(core.app)
    # WHEN each command's help is read, THEN its first paragraph is the summary --help lists
    assert set(core.SUMMARIES) == set(core.FAMILIES)
    for name, summary in core.SUMMARIES.items():
        command = group.get_command(None, name)  # type: ignore[attr-defined]
        first = " ".join(command.help.split("\n\n")[0].split())
        assert first == summary, name


def test_a_command_imports_only_its_own_family() -> None:
    # GIVEN a new process that asks for one command's help
    report = "sorted(m for m in sys.modules if m.startswith('allocsnap.cli.'))"
    # WHEN it runs
    out, loaded = probed(["diff", "--help"], report)
    # THEN its help is shown, and no other family of commands (windows, recording...) was
    # loaded: only the shared options (line_options: diff's --match-lines, typer alone), and
    # the reader of diff's and show's plain command lines that looked first (oneshot_argv)
    assert "Example: allocsnap diff" in out
    assert loaded == str(
        [
            f"allocsnap.cli.{m}"
            for m in ("core", "line_options", "oneshot_argv", "options", "snapshots")
        ]
    )


# Every command's name, as the top level's --help lists them ("" is the top level itself)
HELPS = ["", *core.FAMILIES]
# Imported by no command's --help: the libraries that read and query a store (the commands
# import them when they run)
NOT_FOR_HELP = ("duckdb", "pyarrow", "numpy", "pandas")
# allocsnap's modules a command's --help may import beside its family's: the package, its
# errors, and the present package for Format alone. The layers below the command line (the
# renderers, the store...) are imported by the commands when they run: importing them, and
# compiling them without .pyc files, made some commands' --help slow (issue 17).
ALLOCSNAP_FOR_HELP = {"allocsnap", "allocsnap.errors", "allocsnap.cli", "allocsnap.present"}
SHARED_CLI = ("core", "options", "line_options", "oneshot_argv")  # modules of allocsnap.cli


@functools.cache
def help_run(name: str) -> tuple[str, list[str]]:
    """Return the --help of command ``name`` as a new process prints it, and the modules that
    process had imported: the third-party ones of NOT_FOR_HELP and allocsnap's own."""
    argv = [name, "--help"] if name else ["--help"]
    report = "\n".join(
        [
            "import io, sys",
            "from contextlib import redirect_stdout",
            "from allocsnap.cli import main",
            f"sys.argv = ['allocsnap', *{argv!r}]",
            "out = io.StringIO()",
            "try:",
            "    with redirect_stdout(out):",
            "        main()",
            "except SystemExit as e:",
            "    assert e.code in (None, 0), e.code",
            f"top = {NOT_FOR_HELP!r}",
            "print(sorted(m for m in sys.modules if m.split('.')[0] in (*top, 'allocsnap')))",
            "print(out.getvalue(), end='')",
        ]
    )
    # the help's width follows the terminal: pin it, and keep the store's setting out
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOCSNAP_")}
    env["COLUMNS"] = "80"
    done = subprocess.run(
        [sys.executable, "-c", report], capture_output=True, text=True, env=env, check=True
    )
    loaded, _, text = done.stdout.partition("\n")
    return text, ast.literal_eval(loaded)


@pytest.mark.parametrize("name", HELPS)
def test_each_commands_help_is_its_reviewed_text(name: str, golden: Golden) -> None:
    # GIVEN a command (tests/golden/help/ holds the text the CLI printed before the commands
    # were made to load less for --help: the text must not change with what is loaded)
    # WHEN its --help is printed by a new process
    text, _ = help_run(name)
    # THEN it is that text, byte for byte
    golden.check(f"help/{name or 'allocsnap'}.txt", text)


@pytest.mark.parametrize("name", HELPS)
def test_a_commands_help_imports_no_store_reader_nor_library_layer(name: str) -> None:
    # GIVEN a command
    # WHEN a new process prints its --help
    text, loaded = help_run(name)
    assert "Usage: allocsnap" in text
    # THEN it imported neither DuckDB, pyarrow nor numpy, nor any module of allocsnap but the
    # command line's shared ones, the command's own family, and those of ALLOCSNAP_FOR_HELP
    assert [m for m in loaded if m.split(".")[0] in NOT_FOR_HELP] == []
    cli = {f"allocsnap.cli.{m}" for m in (*SHARED_CLI, core.FAMILIES.get(name, "core"))}
    assert [
        m for m in loaded if m.startswith("allocsnap") and m not in ALLOCSNAP_FOR_HELP | cli
    ] == []


def test_a_command_is_built_without_the_others_of_its_family() -> None:
    # GIVEN the command line's group, before any command was asked for, in a new process
    probe = (
        "import typer.main; from allocsnap.cli import core; "
        "group = typer.main.get_command(core.app); group.get_command(None, 'ls'); "
        "print(sorted(group.commands))"
    )
    # WHEN one command of the snapshots family is asked for
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    # THEN that command alone was built (typer reads each parameter of a command it builds)
    assert done.stdout == "['ls']\n"


@pytest.mark.slow
def test_every_command_has_an_example() -> None:
    # GIVEN every command of the app
    names = commands()
    assert {"snap", "import", "ls", "show", "diff"} <= set(names)
    for name in names:
        # WHEN its help is shown, THEN it has an "Example:" line
        out = ok(invoke(name, "--help"))
        assert "Example: allocsnap" in out or "Example: sudo allocsnap" in out, name
    assert "Example:" in ok(invoke("--help"))


@pytest.fixture
def dated_store(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """boot-1 snapshots 2 and 3 imported with fixed times, from tests/data as working folder."""
    monkeypatch.chdir(DATA)
    for index, hour in ((2, "14"), (3, "15")):
        at = f"2026-01-01T{hour}:30:00Z"
        dump = f"{BOOT1}/snap-{index}.txt"
        store = str(store_dir)
        ok(
            invoke(
                "import",
                dump,
                "--store",
                store,
                "--at",
                at,
                "--host",
                "qemu",
                "--name",
                f"s{index}",
            )
        )
    return store_dir


def test_golden_diff_table(dated_store: Path, golden: Golden) -> None:
    # GIVEN two dated snapshots, WHEN diffed as a table, THEN the output is the reviewed one
    out = ok(invoke("diff", "s2", "s3", "--store", str(dated_store), "-n", "12"))
    golden.check("diff-boot1-2-3.txt", out)
    # (the numbers in it are checked against the reader by the CSV tests above)
    rows = expected_rows(DATA / BOOT1 / "snap-2.txt", DATA / BOOT1 / "snap-3.txt")
    assert all(c.key in out for c in rows[:12])
    assert f"{len(rows) - 12} more changed" in out


def test_golden_show_table(dated_store: Path, golden: Golden) -> None:
    out = ok(invoke("show", "s3", "--store", str(dated_store), "--by", "dir:2", "-n", "10"))
    golden.check("show-boot1-3-dir2.txt", out)
    sums = oracle.sums(oracle.rows(DATA / BOOT1 / "snap-3.txt"), "dir", 2)
    top = sorted(sums, key=lambda k: (-sums[k][0], k))[:10]
    assert [line.rsplit("  ", 1)[1] for line in out.splitlines()[4:14]] == top


def test_no_rate_per_hour_from_the_guessed_times_of_dumps(tmp_path: Path) -> None:
    # GIVEN a dump whose file is two days old, and another one on stdin (read "now")
    old = tmp_path / "old.txt"
    old.write_bytes(real("6.12", 1, 2).read_bytes())
    two_days_ago = old.stat().st_mtime - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))

    # WHEN they are diffed
    out = ok(invoke("diff", str(old), "-", "-f", "json", input=real("6.12", 1, 3).read_bytes()))

    # THEN no change is turned into a rate per hour: neither time is when the text was read
    rows = json.loads(out)["rows"]
    assert rows and all(row["bytes_per_hour"] is None for row in rows)


def probed(argv: list[str], report: str) -> tuple[str, str]:
    """Run the command line with ``argv`` in a process of its own; return its stdout and the
    line the Python expression ``report`` (``sys`` imported) printed when it exited."""
    probe = (
        f"import atexit, sys; atexit.register(lambda: print({report}, file=sys.stderr)); "
        f"from allocsnap.cli import main; sys.argv = ['allocsnap', *{argv!r}]; main()"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_the_command_line_keeps_pandas_out() -> None:
    # GIVEN pandas installed (the dev extra has it) and a CLI run that converts rows to Arrow
    # (a filter: the one-shot path of two dumps, tests/test_quick.py, imports no pyarrow)
    pytest.importorskip("pandas")
    a, b = real("6.12", 1, 2), real("6.12", 1, 3)
    # WHEN it runs in a process of its own
    argv = ["diff", str(a), str(b), "--nonzero"]
    _, seen = probed(argv, "'pyarrow' in sys.modules, 'pandas' in sys.modules")
    # THEN it used pyarrow, which would have imported pandas (0.25 s, 35 MB), and pandas stayed out
    assert seen == "True False"


@pytest.mark.parametrize("command", ["diff", "show"])
def test_a_one_shot_diff_or_show_of_dumps_imports_no_parquet_reader_nor_ioctl(
    command: str,
) -> None:
    # GIVEN two real dumps of one kernel, and modules a one-shot diff or show does not need
    # (typing and dataclasses: about 25 ms of a 0.12 s target, docs/performance.md)
    a, b = real("7.3", 2, 0), real("7.3", 2, 1)
    unneeded = (
        "pyarrow.parquet",
        "pyarrow.fs",
        "allocsnap.kernel.ioctl",
        "allocsnap.store.patching",
        "typing",
        "dataclasses",
    )
    # WHEN they are diffed, or one is shown, in a process of its own
    argv = ["diff", str(a), str(b)] if command == "diff" else ["show", str(a)]
    out, seen = probed(argv, f"[m for m in {unneeded!r} if m in sys.modules]")
    # THEN it printed the answer without loading Parquet, the ioctl reader, the recorder's
    # encoder, typing or dataclasses
    assert "call site" in out
    assert seen == "[]"


@pytest.mark.slow
def test_ls_shows_each_snapshots_boot(store_dir: Path) -> None:
    # GIVEN two snapshots of one boot, as the kernel reader records them, and one of another
    from dataclasses import replace
    from datetime import UTC, datetime

    from allocsnap.kernel import capture
    from allocsnap.store import writing

    raw = source.read_dump(str(real("6.12", 1, 2)))
    boots = ["847023cf-f409-4725-8242-49157f49e88e"] * 2 + ["d8745bef-57c4-4742-b82b-d503e00cfd6a"]
    for hour, boot in enumerate(boots):
        at = datetime(2026, 11, 26, 10 + hour, tzinfo=UTC)
        writing.write(store_dir, capture.snapshot(replace(raw, boot_id=boot), host="vm", at=at))

    # WHEN listed
    table = ok(invoke("ls", "--store", str(store_dir)))
    rows = json.loads(ok(invoke("ls", "--store", str(store_dir), "-f", "json")))["rows"]

    # THEN the table shows each boot's first 8 characters, and JSON the whole id, oldest first
    lines = table.splitlines()
    assert lines[0].split()[:6] == ["id", "name", "taken", "at", "(UTC)", "host"]
    assert [line.split()[4] for line in lines[1:]] == ["847023cf", "847023cf", "d8745bef"]
    assert [r["boot_id"] for r in rows] == boots


def test_version_is_the_installed_distributions() -> None:
    # WHEN allocsnap --version runs
    done = runner.invoke(app, ["--version"])
    # THEN it prints the version the installed package's metadata carries, and exits 0
    assert done.exit_code == 0
    assert done.stdout == f"allocsnap {importlib.metadata.version('allocsnap')}\n"
