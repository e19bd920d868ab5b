"""Parse the text of /proc/allocinfo into rows; pure, no I/O.

Accepts every released format (header 1.0 and 2.0, or no header at all as in excerpts), module
rows, ``accurate:no`` and any future ``key:value`` extras, signed bytes and calls up to 2^64-1.
Anything else — human-readable ``numfmt`` sizes, a patched kernel's extra column, a truncated
last line, binary junk — is refused with the line number and text, or, when ``lenient``, skipped
and counted. The format is described in docs/storage.md and the kernel facts in
../shared/docs/allocinfo.md (§2, §12).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from allocsnap.errors import ParseError
from allocsnap.model import MAX_LINE_BYTES, SAMPLE_SCHEMA, remembered_tag_id, tag_ids

KNOWN_VERSIONS = ("1.0", "2.0")

_HEADER = re.compile(r"^allocinfo - version: (\d+\.\d+)\s*$")
_ROW = re.compile(
    r"^\s*(-?\d+)\s+(\d+)\s+(.+?):(\d+)(?:\s+\[([^\]\s]+)\])?\s+func:(\S+)"
    r"((?:\s+[A-Za-z_]\w*:\S*)*)\s*$"
)
_HUMAN_SIZE = re.compile(r"^\s*-?\d+(\.\d+)?\s?([KMGTPE]i?B?|[KMGTPE]iB|B)\s", re.IGNORECASE)
_DMESG = re.compile(r"^\[\s*\d+\.\d+\]")
_EXTRA_COLUMN = re.compile(r"func:\S+(\s+\S+)*\s+\d+\s*$")
# C0 and C1 controls but tab, and a carriage return not ending its line: the kernel prints
# none, and a terminal would obey them when a name is shown (an escape sequence in a dump)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n|$)")
_PLAIN = b"\t\n" + bytes(range(0x20, 0x7F))  # bytes that are never one (the kernel's text)
_MAX_U64 = 2**64 - 1
_MAX_U32 = 2**32 - 1


@dataclass(frozen=True)
class ParsedAllocinfo:
    """The rows of one text dump and what the parser saw besides them."""

    format: str  # header version, or "none" when the text had no header line
    samples: pa.Table  # SAMPLE_SCHEMA, in the order of the text
    skipped_lines: int  # lines skipped because lenient was set
    notes: tuple[str, ...]  # anomalies worth recording (unknown version, skipped lines)


def parse(text: str | bytes, *, source: str = "<text>", lenient: bool = False) -> ParsedAllocinfo:
    """Return the rows of an allocinfo text; raise ``ParseError`` on the first bad line.

    ``source`` names the input in error messages. With ``lenient``, bad lines are skipped and
    counted instead (at least one row or a header must remain).
    """
    raw = text if isinstance(text, bytes) else text.encode("utf-8", errors="surrogatepass")
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text.strip():
        raise ParseError(source, 0, text[:80], "empty input: no allocinfo header and no rows")

    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    # Two scans at C speed (0.3 ms on a real dump, where a regular expression took 3 to 9);
    # lines are looked at one by one only when they find something.
    suspect = (bool(raw.translate(None, _PLAIN)) and _CONTROL.search(text) is not None) or (
        len(text) > MAX_LINE_BYTES and max(map(len, lines)) > MAX_LINE_BYTES
    )

    version: str | None = None
    notes: list[str] = []
    skipped: list[tuple[int, str, str]] = []
    cols: dict[str, list[object]] = {name: [] for name in SAMPLE_SCHEMA.names}
    seen: dict[tuple[str | None, str, int, str], int] = {}
    rows_with_trailing_space = 0

    for number, line in enumerate(lines, start=1):
        if suspect and (refused := _not_text(line)) is not None:
            if not lenient:
                raise ParseError(source, number, line, refused)
            skipped.append((number, line, refused))
            continue
        match = _ROW.match(line)
        if match is None:
            header = _HEADER.match(line)
            if header is not None:
                version = header.group(1)
                if version not in KNOWN_VERSIONS:
                    notes.append(f"unknown format version {version}; parsed as 2.0")
                continue
            stripped = line.strip()
            if not stripped or (stripped.startswith("#") and "\0" not in stripped):
                continue
            why = _why_not_a_row(line)
            if not lenient:
                raise ParseError(source, number, line, why)
            skipped.append((number, line, why))
            continue

        bytes_s, calls_s, file, line_s, module, function, extras_s = match.groups()
        calls = int(calls_s)
        lineno = int(line_s)
        if calls > _MAX_U64 or lineno > _MAX_U32 or not -(2**63) <= int(bytes_s) < 2**63:
            why = "number out of range for the kernel's s64/u64/u32 fields"
            if not lenient:
                raise ParseError(source, number, line, why)
            skipped.append((number, line, why))
            continue
        if line.endswith(" "):
            rows_with_trailing_space += 1
        accurate = True
        other: list[str] = []
        for token in extras_s.split():
            if token == "accurate:no":
                accurate = False
            else:
                other.append(token)
        key = (module, file, lineno, function)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        ident = tag_ids.get(key)
        if ident is None:
            ident = remembered_tag_id(key)
        cols["ordinal"].append(len(cols["ordinal"]))
        cols["tag_id"].append(ident)
        cols["occurrence"].append(occurrence)
        cols["file"].append(file)
        cols["line"].append(lineno)
        cols["module"].append(module)
        cols["function"].append(function)
        cols["bytes"].append(int(bytes_s))
        cols["calls"].append(calls)
        cols["accurate"].append(accurate)
        cols["extras"].append(" ".join(other) if other else None)

    row_count = len(cols["ordinal"])
    _check_truncated(source, lines, ends_with_newline, row_count, rows_with_trailing_space)
    if skipped:
        first_number, first_line, first_why = skipped[0]
        notes.append(
            f"skipped {len(skipped)} line(s) not in allocinfo format; first: line {first_number}: "
            f"{first_why}: {first_line[:80]!r}"
        )
        if row_count == 0 and version is None:
            # Name the most telling refusal, not a decoration line such as "====".
            number, line, why = min(skipped, key=lambda s: s[2].startswith("not an allocinfo row"))
            raise ParseError(source, number, line, f"no allocinfo rows ({why})")
    samples = pa.Table.from_pydict(cols, schema=SAMPLE_SCHEMA)
    return ParsedAllocinfo(
        format=version or "none",
        samples=samples,
        skipped_lines=len(skipped),
        notes=tuple(notes),
    )


def _check_truncated(
    source: str, lines: list[str], ends_with_newline: bool, rows: int, trailing: int
) -> None:
    """Refuse a last row cut short: the kernel ends every row with a space and a newline."""
    if ends_with_newline or not lines or rows < 2:
        return
    last = lines[-1]
    # Every earlier row had the kernel's trailing space, this one has neither it nor a newline.
    if _ROW.match(last) and not last.endswith(" ") and trailing == rows - 1:
        raise ParseError(source, len(lines), last, "truncated last line (no newline at the end)")


def _not_text(line: str) -> str | None:
    """Return why a line cannot be a line of the kernel's text, or None."""
    if "\0" in line or "\ufffd" in line:
        return "binary data, not text"
    if len(line) > MAX_LINE_BYTES:
        return f"a line longer than {MAX_LINE_BYTES:,} characters, not an allocinfo row"
    control = _CONTROL.search(line)
    if control is not None:
        return (
            f"control character {control.group()!r} at column {control.start() + 1} (the "
            "kernel prints none; an edited or corrupted dump?)"
        )
    return None


def _why_not_a_row(line: str) -> str:
    """Return why a line is not an allocinfo row, naming the look-alike when there is one."""
    if "\0" in line or "\ufffd" in line:
        return "binary data, not text"
    if _DMESG.match(line):
        return "a kernel log line (show_mem() output?), not /proc/allocinfo"
    if _HUMAN_SIZE.match(line):
        return "human-readable size (numfmt output?); allocsnap needs the raw byte counts"
    if re.match(r"^\s*-?\d+\*\s+\d+\*", line):
        return "counters marked with '*' (a never-released format)"
    if "func:" in line and _EXTRA_COLUMN.search(line):
        return "extra column after func: (a patched kernel's format?)"
    return (
        "not an allocinfo row (expected '<bytes> <calls> <file>:<line> [module] func:<name>'; "
        "lenient parsing skips such lines)"
    )
