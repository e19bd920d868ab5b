"""render: table, CSV, JSON and Markdown of a small hand-made report, written out by hand."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from allocsnap.present.render import Column, Format, Report, plural, render


def make_report() -> Report:
    """Return the report every test here renders (a function, so that a subprocess can too)."""
    rows = pa.table(
        {
            "key": ["mm/a.c:1 func:f", "fs/b|c.c:2 [ext4] func:g"],
            "status": ["", "new"],
            "delta_bytes": [1536, -2048],
            "delta_pct": [50.0, None],
            "calls": [1234567, -3],
            "share_pct": [12.345, None],
            "at": [datetime(2026, 11, 26, 14, 0, 5, tzinfo=UTC)] * 2,
        }
    )
    columns = [
        Column("delta_bytes", "Δbytes", "delta_size"),
        Column("delta_pct", "Δ%", "delta_pct"),
        Column("calls", "calls", "delta_count"),
        Column("share_pct", "share", "pct"),
        Column("at", "at", "time"),
        Column("key", "call site"),
    ]
    return Report(rows=rows, columns=columns, header=["h1", "h2"], footer=["f1"], info={"n": 2})


@pytest.fixture
def report() -> Report:
    return make_report()


def rendered(report: Report, fmt: Format) -> str:
    out = io.StringIO()
    render(report, fmt, out)
    return out.getvalue()


def test_table(report: Report) -> None:
    # GIVEN a report, WHEN rendered as a table, THEN numbers right, text left, sizes humanised
    assert rendered(report, Format.table) == (
        "h1\n"
        "h2\n"
        "\n"
        "  Δbytes      Δ%       calls  share                   at  call site\n"
        "+1.5 KiB  +50.0%  +1,234,567  12.3%  2026-11-26 14:00:05  mm/a.c:1 func:f\n"
        "-2.0 KiB     NEW          -3         2026-11-26 14:00:05  fs/b|c.c:2 [ext4] func:g\n"
        "\n"
        "f1\n"
    )


def test_markdown_escapes_pipes(report: Report) -> None:
    assert rendered(report, Format.markdown) == (
        "h1  \n"
        "h2  \n"
        "\n"
        "| Δbytes | Δ% | calls | share | at | call site |\n"
        "|---:|---:|---:|---:|---:|---|\n"
        "| +1.5 KiB | +50.0% | +1,234,567 | 12.3% | 2026-11-26 14:00:05 | mm/a.c:1 func:f |\n"
        "| -2.0 KiB | NEW | -3 |  | 2026-11-26 14:00:05 | fs/b\\|c.c:2 [ext4] func:g |\n"
        "\n"
        "f1\n"
    )


def test_csv_is_raw_values_of_every_column(report: Report) -> None:
    assert rendered(report, Format.csv) == (
        "key,status,delta_bytes,delta_pct,calls,share_pct,at\n"
        "mm/a.c:1 func:f,,1536,50.0,1234567,12.345,2026-11-26T14:00:05+00:00\n"
        "fs/b|c.c:2 [ext4] func:g,new,-2048,,-3,,2026-11-26T14:00:05+00:00\n"
    )


def test_json_has_info_and_rows(report: Report) -> None:
    document = json.loads(rendered(report, Format.json))
    assert document["n"] == 2
    assert document["rows"][1] == {
        "key": "fs/b|c.c:2 [ext4] func:g",
        "status": "new",
        "delta_bytes": -2048,
        "delta_pct": None,
        "calls": -3,
        "share_pct": None,
        "at": "2026-11-26T14:00:05+00:00",
    }


@pytest.mark.slow
def test_output_does_not_depend_on_the_machine(report: Report) -> None:
    # GIVEN another process with another time zone, hash seed, terminal width and locale
    env = {
        **os.environ,
        "TZ": "Pacific/Chatham",  # +13:45 in November: any local-time rendering shows
        "PYTHONHASHSEED": "12345",
        "COLUMNS": "30",
        "LC_ALL": "C.UTF-8",
    }
    script = (
        "import json; from tests.test_render import Format, make_report, rendered;"
        "print(json.dumps({f.value: rendered(make_report(), f) for f in Format}))"
    )
    # WHEN it renders the same report in every format
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[1],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # THEN its output is this process's, byte for byte
    assert json.loads(done.stdout) == {f.value: rendered(report, f) for f in Format}


def test_plural_keeps_words_that_are_their_own_plural() -> None:
    # GIVEN the one plural rule every table and page uses (two copies drifted apart before)
    # THEN counts read as English, "series" included
    assert [plural(1, "epoch"), plural(2, "epoch"), plural(3, "series"), plural(1_000, "host")] == [
        "1 epoch",
        "2 epochs",
        "3 series",
        "1,000 hosts",
    ]
