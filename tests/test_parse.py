"""parse.parse on every public excerpt, the real captures and the edge cases of the format."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from allocsnap import model
from allocsnap.errors import ParseError
from allocsnap.kernel.parse import ParsedAllocinfo, parse
from tests import oracle
from tests.conftest import DATA, public, real

REAL = sorted((DATA / "real").glob("*/*/snap-*.txt"))


def as_tuples(table: pa.Table) -> list[tuple[object, ...]]:
    cols = ["bytes", "calls", "file", "line", "module", "function"]
    return list(zip(*(table[c].to_pylist() for c in cols), strict=True))


def expected_tuples(rows: list[oracle.Row]) -> list[tuple[object, ...]]:
    return [(r.bytes, r.calls, r.file, r.line, r.module, r.function) for r in rows]


def is_decoration(line: str) -> bool:
    """A line a script or a person added: not blank, not a header, no func: field."""
    return bool(line.strip()) and "func:" not in line and not line.startswith("allocinfo")


# -- public excerpts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["01", "02", "06", "11", "12", "13", "16a", "16b", "16c", "16d", "16e"]
)
def test_public_excerpt_parses_completely(prefix: str) -> None:
    # GIVEN an excerpt SOURCES.md lists under "Parse completely"
    path = public(prefix)
    expected = oracle.rows(path)

    # WHEN it is parsed strictly
    parsed = parse(path.read_bytes(), source=path.name)

    # THEN every row is kept, with the values a whitespace split reads
    assert parsed.skipped_lines == 0
    assert as_tuples(parsed.samples) == expected_tuples(expected)
    assert parsed.samples["ordinal"].to_pylist() == list(range(len(expected)))


@pytest.mark.parametrize(
    ("prefix", "fmt", "rows"),
    [("01", "1.0", 9), ("02", "2.0", 10), ("06", "none", 8), ("11", "none", 15), ("16a", "1.0", 2)],
)
def test_public_excerpt_format_and_row_count_match_sources_md(
    prefix: str, fmt: str, rows: int
) -> None:
    # GIVEN an excerpt whose rows SOURCES.md counts (and whose header we can see in the file)
    path = public(prefix)

    # WHEN it is parsed
    parsed = parse(path.read_text())

    # THEN the format is its header's version and the row count is the documented one
    assert parsed.format == fmt
    assert parsed.samples.num_rows == rows


@pytest.mark.parametrize(("prefix", "decorations"), [("04", 1), ("08", 5), ("09", 23), ("17", 2)])
def test_decorated_excerpt_fails_strict_and_parses_lenient(prefix: str, decorations: int) -> None:
    # GIVEN an excerpt with lines a script or a person added ("...", "====", "Before ...:")
    path = public(prefix)
    lines = path.read_text().splitlines()
    decoration_numbers = [n for n, line in enumerate(lines, start=1) if is_decoration(line)]
    assert len(decoration_numbers) == decorations  # as counted by hand from the file
    first = decoration_numbers[0]

    # WHEN it is parsed strictly
    with pytest.raises(ParseError) as info:
        parse(path.read_text(), source=path.name)

    # THEN the error names the first decoration line's number and text
    assert info.value.line_number == first
    assert info.value.line == lines[first - 1]
    assert f"line {first}" in str(info.value)
    assert path.name in str(info.value)

    # WHEN it is parsed leniently
    parsed = parse(path.read_text(), lenient=True)

    # THEN exactly the decoration lines are skipped and every real row is kept
    assert parsed.skipped_lines == decorations
    kept = [line for line in lines if not is_decoration(line)]
    assert as_tuples(parsed.samples) == expected_tuples(oracle.rows_of(kept))
    assert any(f"line {first}" in note for note in parsed.notes)


@pytest.mark.parametrize(
    ("prefix", "line_number", "reason"),
    [
        ("05", 1, "human-readable size"),
        ("14", 1, "human-readable size"),
        ("15", 1, "human-readable size"),
        ("07", 1, "extra column"),
        ("18", 1, "kernel log"),
    ],
)
def test_non_stock_excerpt_is_refused_with_reason(
    prefix: str, line_number: int, reason: str
) -> None:
    # GIVEN an excerpt in a format that is not /proc/allocinfo (numfmt, patched kernel, dmesg)
    path = public(prefix)
    lines = path.read_text().splitlines()

    for lenient in (False, True):
        # WHEN it is parsed, strictly or leniently
        with pytest.raises(ParseError) as info:
            parse(path.read_bytes(), source=path.name, lenient=lenient)

        # THEN it is refused, naming the line, its text and why
        assert info.value.line_number == line_number
        assert info.value.line == lines[line_number - 1]
        assert reason in info.value.why
        assert repr(lines[line_number - 1][:100])[:-1] in str(info.value)


def test_extra_column_excerpt_10_is_refused_naming_the_patched_row() -> None:
    # GIVEN fixture 10: "====" separators around rows with an extra 5th column
    path = public("10")
    lines = path.read_text().splitlines()

    # WHEN parsed strictly, THEN the first bad line (the separator) is named
    with pytest.raises(ParseError) as strict:
        parse(path.read_text())
    assert (strict.value.line_number, strict.value.line) == (1, lines[0])

    # WHEN parsed leniently, THEN nothing is left, and the error names the first patched row
    with pytest.raises(ParseError) as lenient:
        parse(path.read_text(), lenient=True)
    assert (lenient.value.line_number, lenient.value.line) == (2, lines[1])
    assert "extra column" in lenient.value.why


def test_asterisk_rows_of_03_are_refused_each_by_line() -> None:
    # GIVEN fixture 03, whose never-released format marks two rows with '*'
    path = public("03")
    lines = path.read_text().splitlines()
    starred = [n for n, line in enumerate(lines, start=1) if "*" in line]
    assert starred == [4, 9]

    for n in starred:
        # WHEN the text up to that row is parsed (earlier starred rows blanked, numbering kept)
        upto = ["" if i in starred and i != n else line for i, line in enumerate(lines[:n], 1)]
        with pytest.raises(ParseError) as info:
            parse("\n".join(upto) + "\n")

        # THEN the error names that row's number, text and the asterisk
        assert info.value.line_number == n
        assert info.value.line == lines[n - 1]
        assert "'*'" in info.value.why

    # WHEN parsed leniently, THEN exactly the two starred rows are skipped
    parsed = parse(path.read_text(), lenient=True)
    assert parsed.skipped_lines == 2
    plain = [line for line in lines if "*" not in line]
    assert as_tuples(parsed.samples) == expected_tuples(oracle.rows_of(plain))


def test_negative_bytes_and_underflowed_calls_are_kept_exact() -> None:
    # GIVEN fixture 06 (6.12.0: negative bytes, calls wrapped near 2^64, a [btrfs] row)
    parsed = parse(public("06").read_text())
    rows = parsed.samples.to_pylist()

    # THEN the values are the kernel's, not clamped or wrapped
    assert rows[0]["bytes"] == -4096
    assert rows[0]["calls"] == 18446744073709551615 == 2**64 - 1
    assert rows[4]["bytes"] == 10547565210 and rows[4]["calls"] == 0
    assert rows[7]["bytes"] == -2332479488
    assert rows[7]["calls"] == 18446744073708982163
    assert rows[7]["module"] == "btrfs"
    assert rows[7]["file"] == "fs/btrfs/extent_io.c"
    assert rows[7]["function"] == "btrfs_alloc_page_array"
    assert [r["module"] for r in rows[:7]] == [None] * 7
    assert parsed.samples.schema.field("calls").type == pa.uint64()


def test_wide_numbers_without_padding_parse() -> None:
    # GIVEN a row whose numbers overflow the %12/%8 fields, so no space precedes them
    text = "1000000000000 18446744073709551615 mm/a.c:1 func:f \n-100000000000 1 mm/b.c:2 func:g \n"

    # WHEN parsed
    rows = parse(text).samples.to_pylist()

    # THEN both are read exactly
    assert [(r["bytes"], r["calls"]) for r in rows] == [
        (10**12, 2**64 - 1),
        (-(10**11), 1),
    ]


def test_out_of_range_counter_is_refused() -> None:
    # GIVEN a calls value one past u64
    text = f"           0 {2**64} mm/a.c:1 func:f \n"

    # WHEN parsed, THEN refused at line 1
    with pytest.raises(ParseError) as info:
        parse(text)
    assert info.value.line_number == 1
    assert "out of range" in info.value.why


def test_module_rows_have_their_module() -> None:
    # GIVEN fixture 04 with one [ctagmod] row and 16a with [xfs] rows
    rows04 = parse(public("04").read_text(), lenient=True).samples.to_pylist()
    rows16 = parse(public("16a").read_text()).samples.to_pylist()

    # THEN module is the bracketed name, and NULL elsewhere
    modules04 = [r["module"] for r in rows04]
    assert modules04.count("ctagmod") == 1 and modules04.count(None) == 10
    assert rows04[8]["file"] == "drivers/staging/ctagmod/ctagmod.c"
    assert {r["module"] for r in rows16} == {"xfs"}


# -- real captures -------------------------------------------------------------------------------


def meta_for(path: Path) -> dict[str, Any]:
    meta = json.loads((path.parent / "meta.json").read_text())
    [entry] = [s for s in meta["snapshots"] if s["file"] == path.name]
    assert isinstance(entry, dict)
    return entry


def test_all_real_captures_are_present() -> None:
    # GIVEN the copies in tests/data, THEN all 10 captures are there (fails rather than skips)
    assert [str(p.relative_to(DATA)) for p in REAL] == [
        *(f"real/6.12.117-allocsnap/boot-1/snap-{i}.txt" for i in range(5)),
        *(f"real/6.12.117-allocsnap/boot-3/snap-{i}.txt" for i in range(3)),
        *(f"real/7.3.4-allocsnap/boot-2/snap-{i}.txt" for i in range(2)),
    ]


@pytest.mark.parametrize(
    "path", REAL, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}"
)
def test_real_capture_matches_independent_reader(path: Path) -> None:
    # GIVEN a complete capture and what meta.json recorded about it
    meta = meta_for(path)
    text = path.read_bytes()
    assert hashlib.md5(text).hexdigest() == meta["md5"]  # the copy is unedited
    expected = oracle.rows(path)

    # WHEN it is parsed strictly
    parsed = parse(text, source=str(path))

    # THEN it has tag_line_count rows, equal one by one to the whitespace-split reader's
    assert parsed.samples.num_rows == meta["tag_line_count"] == len(expected)
    assert parsed.format == str(meta["header_lines"][0]).rsplit(" ", 1)[1]
    assert parsed.notes == () and parsed.skipped_lines == 0
    assert as_tuples(parsed.samples) == expected_tuples(expected)
    assert sum(parsed.samples["bytes"].to_pylist()) == sum(r.bytes for r in expected)
    assert sum(parsed.samples["calls"].to_pylist()) == sum(r.calls for r in expected)
    # every row ended with the kernel's " \n"; the space is not part of the function name
    assert all(line.endswith(" ") for line in text.decode().splitlines()[2:])
    assert not any(" " in f for f in parsed.samples["function"].to_pylist())


def test_real_module_rows_when_modules_are_loaded() -> None:
    # GIVEN boot-1 snap-3, taken with loop, zram, ext4, dummy (and dependencies) loaded
    path = real("6.12", 1, 3)
    expected = Counter(r.module for r in oracle.rows(path) if r.module)

    # WHEN parsed
    modules = parse(path.read_text()).samples["module"].to_pylist()

    # THEN each module's rows carry its name, and the set of modules is the loaded set
    assert Counter(m for m in modules if m) == expected
    assert set(expected) <= set(meta_for(path)["modules_loaded"])
    assert set(expected) >= {"ext4", "zram", "loop"}


@pytest.mark.parametrize("index", [0, 1])
def test_accurate_no_rows_in_7_3(index: int) -> None:
    # GIVEN a 7.3 capture; count the "accurate:no" rows the grep way
    path = real("7.3", 2, index)
    lines = path.read_text().splitlines()
    inaccurate = {n for n, line in enumerate(lines[2:]) if " accurate:no " in line + " "}
    assert inaccurate  # this capture has some

    # WHEN parsed
    samples = parse(path.read_text()).samples

    # THEN exactly those rows have accurate=False, and "accurate:no" is not left in extras
    flags = samples["accurate"].to_pylist()
    assert {i for i, ok in enumerate(flags) if not ok} == inaccurate
    assert samples["extras"].null_count == samples.num_rows


def independent_tag_id(module: str | None, file: str, line: int, function: str) -> int:
    """docs/storage.md: BLAKE2b-64 of module\\0file\\0line\\0function, little-endian signed."""
    key = f"{module or ''}\0{file}\0{line}\0{function}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little", signed=True)


@pytest.mark.parametrize("path", [real("6.12", 1, 3), real("7.3", 2, 0), public("09")])
def test_duplicate_keys_get_occurrences_and_one_tag_id(path: Path) -> None:
    # GIVEN a capture with keys the kernel prints more than once
    lines = [line for line in path.read_text().splitlines() if not is_decoration(line)]
    expected = oracle.rows_of(lines)
    seen: Counter[tuple[object, ...]] = Counter()
    occurrences = []
    for r in expected:
        k = (r.module, r.file, r.line, r.function)
        occurrences.append(seen[k])
        seen[k] += 1
    assert max(seen.values()) >= 2

    # WHEN parsed
    samples = parse("\n".join(lines) + "\n").samples

    # THEN occurrences count 0, 1, … per key, and tag_id is the documented hash of the key
    assert samples["occurrence"].to_pylist() == occurrences
    ids = [independent_tag_id(r.module, r.file, r.line, r.function) for r in expected]
    assert samples["tag_id"].to_pylist() == ids
    assert len(set(ids)) == len(seen)


def test_the_ids_remembered_across_dumps_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN room for 8 remembered ids, and dumps of two kernels with thousands of call sites
    monkeypatch.setattr(model, "TAG_IDS_KEPT", 8)
    model.tag_ids.clear()  # what earlier tests left
    for path in (real("6.12", 1, 3), real("7.3", 2, 0), real("6.12", 1, 3)):
        lines = [line for line in path.read_text().splitlines() if not is_decoration(line)]
        # WHEN each is parsed, as an import of many kernels' dumps or a months-long recorder do
        samples = parse("\n".join(lines) + "\n").samples
        # THEN no more than 8 ids are kept, and every id is still the documented hash
        assert len(model.tag_ids) <= 8
        expected = oracle.rows_of(lines)
        assert samples["tag_id"].to_pylist() == [
            independent_tag_id(r.module, r.file, r.line, r.function) for r in expected
        ]


def test_mm_slot_pair_of_09_keeps_both_values() -> None:
    # GIVEN fixture 09's mm/mm_slot.h:28 pair, which differs in value
    rows = parse(public("09").read_text(), lenient=True).samples.to_pylist()
    pair = [r for r in rows if r["file"] == "mm/mm_slot.h"]
    lines = [line for line in public("09").read_text().splitlines() if not is_decoration(line)]
    expected = [r for r in oracle.rows_of(lines) if r.file == "mm/mm_slot.h"]

    # THEN both rows are kept, in order, as occurrences 0 and 1
    assert [(r["bytes"], r["calls"], r["occurrence"]) for r in pair] == [
        (e.bytes, e.calls, i) for i, e in enumerate(expected)
    ]
    assert len(pair) == 2 and pair[0]["bytes"] != pair[1]["bytes"]


# -- inline edge cases ---------------------------------------------------------------------------


def test_future_extras_are_kept_raw() -> None:
    # GIVEN v2.0 rows with accurate:no and key:value pairs no kernel prints yet
    text = (
        "allocinfo - version: 2.0\n"
        "#     <size>  <calls> <tag info>\n"
        "        4096        1 mm/a.c:10 func:f accurate:no numa:1 \n"
        "        8192        2 mm/b.c:20 [mod_x] func:g color:blue \n"
        "           0        0 mm/c.c:30 func:h \n"
    )

    # WHEN parsed
    rows = parse(text).samples.to_pylist()

    # THEN accurate is read and other pairs are kept in extras, in order
    assert [(r["accurate"], r["extras"]) for r in rows] == [
        (False, "numa:1"),
        (True, "color:blue"),
        (True, None),
    ]
    assert rows[1]["module"] == "mod_x" and rows[1]["function"] == "g"


def test_unknown_version_is_noted() -> None:
    # GIVEN a header version no released kernel prints
    text = "allocinfo - version: 3.1\n#     <size>  <calls> <tag info>\n  0  0 mm/a.c:1 func:f \n"

    # WHEN parsed
    parsed: ParsedAllocinfo = parse(text)

    # THEN the row is read and the version is recorded with a note
    assert parsed.format == "3.1"
    assert parsed.samples.num_rows == 1
    assert any("unknown format version 3.1" in note for note in parsed.notes)


def test_trailing_spaces_are_optional() -> None:
    # GIVEN the same rows with and without the kernel's trailing space (16e mixes both)
    with_space = "  16  1 fs/a.c:1 [xfs] func:f \n  32  2 fs/b.c:2 func:g \n"
    without = "  16  1 fs/a.c:1 [xfs] func:f\n  32  2 fs/b.c:2 func:g\n"

    # THEN both parse to the same rows
    assert parse(with_space).samples.equals(parse(without).samples)


@pytest.mark.parametrize("text", ["", "\n\n", "   \n"])
def test_empty_input_is_refused(text: str) -> None:
    # GIVEN text with nothing in it, WHEN parsed, THEN a ParseError says it is empty
    with pytest.raises(ParseError) as info:
        parse(text, source="empty.txt")
    assert "empty" in info.value.why
    assert "empty.txt: line" in str(info.value)


@pytest.mark.parametrize(
    ("junk", "line_number"),
    [
        (b"\x00\x01\x02ELF\x00\x00\n", 1),
        (b"allocinfo - version: 1.0\n\x7fELF\x02\x01\x01\x00\x00\x00\n", 2),
        (b"          0        0 mm/a.c:1 func:f \n\xff\xfe\x00\x00binary", 2),
    ],
)
def test_binary_junk_is_refused(junk: bytes, line_number: int) -> None:
    # GIVEN bytes with NULs (e.g. a core file passed by mistake)
    # WHEN parsed strictly
    with pytest.raises(ParseError) as info:
        parse(junk)

    # THEN the error names the line and says it is binary
    assert info.value.line_number == line_number
    assert "binary" in info.value.why


def test_binary_junk_is_skipped_and_counted_when_lenient() -> None:
    # GIVEN one good row followed by junk
    junk = b"          0        0 mm/a.c:1 func:f \n\xff\xfe\x00\x00binary"

    # WHEN parsed leniently
    parsed = parse(junk, lenient=True)

    # THEN the row is kept and the junk line counted as skipped
    assert parsed.samples.num_rows == 1 and parsed.skipped_lines == 1
    assert "line 2: binary" in parsed.notes[0]


@pytest.mark.parametrize("cut", [3, 8, 14])
def test_truncated_last_line_of_real_capture_is_refused(cut: int) -> None:
    # GIVEN a real capture whose last row was cut mid-way (no trailing space, no newline)
    path = real("6.12", 1, 0)
    text = path.read_text()
    lines = text.splitlines()
    truncated = text[: len(text) - cut]
    assert not truncated.endswith("\n")
    last = truncated.rsplit("\n", 1)[1]

    # WHEN parsed
    with pytest.raises(ParseError) as info:
        parse(truncated, source=path.name)

    # THEN the error names the last line's number and its cut text
    assert info.value.line_number == len(lines)
    assert info.value.line == last


def test_last_line_without_newline_but_complete_is_accepted() -> None:
    # GIVEN a real capture missing only its final newline (the row kept its trailing space)
    path = real("6.12", 1, 0)
    text = path.read_text()[:-1]

    # WHEN parsed, THEN every row is there
    assert parse(text).samples.num_rows == len(oracle.rows(path))
