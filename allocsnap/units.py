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
    return round(float(m.group(1)) * (1 << (10 * _POWERS[m.group(2).upper()])))


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
    """Return the duration of ``10s``, ``500ms``, ``1h30m``, ``7d`` or a plain number of seconds."""
    text = text.strip()
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
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


def parse_label(text: str) -> tuple[str, str]:
    """Return the key and value of ``key=value``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"not a label: {text!r} (expected key=value)")
    return key, value
