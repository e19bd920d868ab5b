"""units: sizes, durations, times and labels parsed at the edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from allocsnap.errors import ExitCode, UsageError
from allocsnap.units import format_size, parse_duration, parse_label, parse_size, parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("4096", 4096),
        ("1K", 1024),
        ("64k", 64 * 1024),
        ("1M", 1024 * 1024),
        ("1MiB", 1024 * 1024),
        ("1MB", 1024 * 1024),
        ("4.0 MiB", 4 * 1024 * 1024),
        ("2.5GiB", 5 * 1024**3 // 2),
        ("1T", 1024**4),
        ("1E", 1024**6),
        (" 512 ", 512),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    # GIVEN a size as people write it, WHEN parsed, THEN it is binary bytes
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "M", "1X", "1i", "one", "1.2.3M", "1 M B x"])
def test_parse_size_refuses_junk(text: str) -> None:
    # GIVEN text that is no size, WHEN parsed, THEN a usage error (exit 2) names it
    with pytest.raises(UsageError) as info:
        parse_size(text)
    assert info.value.exit_code == ExitCode.USAGE
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (-1023, "-1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (-3 * 1024**3 // 2, "-1.5 GiB"),
        (4 * 1024**2, "4.0 MiB"),
        (1024**5, "1.0 PiB"),
        (1024**6, "1.0 EiB"),
    ],
)
def test_format_size(n: int, expected: str) -> None:
    # GIVEN a byte count, WHEN formatted, THEN it reads as binary units with one decimal
    assert format_size(n) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("500ms", 0.5), ("5m", 300), ("1h30m", 5400), ("7d", 604800),
     ("2w", 1209600), ("1.5h", 5400)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    # GIVEN a duration, WHEN parsed, THEN it is that many seconds
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "s", "10x", "1h 30m", "h1", "7", "0.5"])
def test_parse_duration_refuses_junk(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_parse_time_is_utc() -> None:
    # GIVEN times with Z, an offset, and no zone
    # THEN each becomes an aware UTC time; no zone means UTC
    expected = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    assert parse_time("2026-11-26T14:00:00Z") == expected
    assert parse_time("2026-11-26T15:00:00+01:00") == expected
    assert parse_time("2026-11-26 14:00") == expected
    assert parse_time("2026-11-26T15:00:00+01:00").tzinfo == UTC
    with pytest.raises(UsageError):
        parse_time("yesterday")


def test_parse_label() -> None:
    assert parse_label("ticket=1234") == ("ticket", "1234")
    assert parse_label("note=a=b") == ("note", "a=b")
    assert parse_label("empty=") == ("empty", "")
    for bad in ("novalue", "=x"):
        with pytest.raises(UsageError):
            parse_label(bad)
