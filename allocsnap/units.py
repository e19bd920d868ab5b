"""Human units at the edge: sizes (``1M``, ``4.0 MiB``), durations (``10s``, ``2h``) and times.

Sizes are binary: ``K`` is 1024 bytes, ``M`` 1024², with or without ``i`` and ``B``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from allocsnap.errors import UsageError

_SIZE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([KMGTPE]?)(i?)(B?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """Return the number of bytes in ``1048576``, ``1M``, ``1MiB`` or ``4.0 MiB``."""
    m = _SIZE.match(text)
    if m is None or (m.group(3) and not m.group(2)):
        raise UsageError(f"not a size: {text!r} (try 4096, 64K, 1M, 2.5GiB)")
    power: int = _POWERS[m.group(2).upper()]
    return round(float(m.group(1)) * (1 << (10 * power)))


def format_size(n: int | float) -> str:
    """Return a byte count for people: ``512 B``, ``4.0 KiB``, ``-1.5 GiB``."""
    value = float(n)
    if abs(value) < 1024:
        return f"{int(value)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if abs(value) < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} EiB"


def parse_duration(text: str) -> timedelta:
    """Return the duration of ``10s``, ``500ms``, ``1h30m`` or ``7d``.

    The unit is required: a bare ``7`` would be seven seconds to one reader and seven days to
    another (``prune --older-than 7`` once deleted a whole store that way).
    """
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        raise UsageError(
            f"not a duration: {text!r} has no unit (give one of ms, s, m, h, d, w: "
            f"{text}s, {text}m, {text}h, {text}d)"
        )
    pos, seconds = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise UsageError(f"not a duration: {text!r} (try 10s, 5m, 2h, 7d)")
    return timedelta(seconds=seconds)


def parse_time(text: str) -> datetime:
    """Return an aware UTC time from ISO 8601 text; a time without a zone is taken as UTC."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a time: {text!r} (try 2026-11-26T14:00:00Z)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# Times people put in dump names: 2026-11-26T14:52:35Z, 2026-11-26_14-52-35, 20261126T145235,
# 20261126_145235; read as UTC unless the name gives a zone.
_NAME_TIME = re.compile(
    r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})[T_ -](\d{2})[:.-]?(\d{2})[:.-]?(\d{2})(?:[.,](\d{1,6}))?"
    r"(Z|[+-]\d{2}:?\d{2})?(?!\d)"
)
_NAME_EPOCH = re.compile(r"(?<!\d)(\d{10})(?:\.(\d{1,6}))?(?!\d)")  # Unix seconds, 2001-2286
_EPOCH_RANGE = (datetime(2001, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def time_in_name(name: str) -> datetime | None:
    """Return the time a dump's file name gives, or None when it gives none or several.

    ``snap-2026-11-26T14:52:35Z.txt``, ``allocinfo_20261126_145235.txt``,
    ``2026-11-26_14-52-35.txt`` (UTC unless the name has a zone) and Unix seconds
    (``snap-1764168755.txt``) are recognised; a date without a time is not.
    """
    found: set[datetime] = set()
    for m in _NAME_TIME.finditer(name):
        year, month, day, hour, minute, second, fraction, zone = m.groups()
        try:
            when = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second),
                int((fraction or "0").ljust(6, "0")),
            )  # fmt: skip
        except ValueError:
            continue
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        found.add(when.replace(tzinfo=UTC))
    if not found:
        for m in _NAME_EPOCH.finditer(name):
            seconds = int(m.group(1)) + int((m.group(2) or "0").ljust(6, "0")) / 1e6
            when = datetime.fromtimestamp(seconds, UTC)
            if _EPOCH_RANGE[0] <= when < _EPOCH_RANGE[1]:
                found.add(when)
    return found.pop() if len(found) == 1 else None


def natural_key(name: str) -> tuple[tuple[int, str], ...]:
    """Return a sort key that orders ``snap-2`` before ``snap-10`` (digit runs as numbers)."""
    return tuple(
        (int(part), part) if part.isdigit() else (-1, part)
        for part in re.split(r"(\d+)", name)
        if part
    )


def parse_label(text: str) -> tuple[str, str]:
    """Return the key and value of ``key=value``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"not a label: {text!r} (expected key=value)")
    return key, value


def taken_at_text(when: datetime) -> str:
    """Return a snapshot time as people read it: ``2026-11-26 14:52:03 UTC``.

    DuckDB hands TIMESTAMPTZ values over in the machine's time zone: converted here, so the
    label is true wherever allocsnap runs (a naive time is taken as UTC already).
    """
    utc = when.astimezone(UTC) if when.tzinfo is not None else when
    return utc.strftime("%Y-%m-%d %H:%M:%S UTC")
