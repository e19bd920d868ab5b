"""The recorder's cached parser gives exactly what the full parser gives, on every real capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocsnap.errors import ParseError
from allocsnap.kernel import fastparse, parse

REAL = Path(__file__).parent / "data" / "real"
CAPTURES = sorted(REAL.rglob("snap-*.txt"))


def test_real_captures_are_present() -> None:
    # a missing capture must fail, not quietly shrink the tests below
    assert len(CAPTURES) == 10, CAPTURES


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(REAL)))
def test_equal_to_full_parser_on_every_real_capture(path: Path) -> None:
    # GIVEN a parser that has cached the layout of every capture of the same boot
    cached = fastparse.CachedParser()
    text = path.read_bytes()
    for other in sorted(path.parent.glob("snap-*.txt")):
        cached(other.read_bytes())

    # WHEN the capture is parsed twice (a cold parse, then one from the cache)
    first = cached(text)
    second = cached(text)

    # THEN both equal the full parser's result, and the second came from the cache
    full = parse.parse(text)
    for got in (first, second):
        assert got.samples.equals(full.samples)
        assert (got.format, got.notes, got.skipped_lines) == (full.format, full.notes, 0)
    assert cached.hits >= 1


def test_same_tags_new_numbers_come_from_the_cache() -> None:
    # GIVEN two reads of one boot with the same tags but different counters
    boot = REAL / "6.12.117-allocsnap" / "boot-1"
    a, b = (boot / "snap-0.txt").read_bytes(), (boot / "snap-4.txt").read_bytes()
    assert a != b and len(a) == len(b)
    cached = fastparse.CachedParser()
    cached(a)

    # WHEN the second is parsed
    got = cached(b)

    # THEN it is a cache hit whose numbers are the second text's own
    assert (cached.hits, cached.misses) == (1, 1)
    assert got.samples.equals(parse.parse(b).samples)


def _row(nbytes: int, calls: int, tag: str) -> str:
    return f"{nbytes:12d} {calls:8d} {tag} \n"


HEADER = "allocinfo - version: 2.0\n#     <size>  <calls> <tag info>\n"
TAGS = ["mm/a.c:1 func:a", "mm/b.c:2 [ext4] func:b", "mm/c.c:3 func:c accurate:no"]


def _text(values: list[tuple[int, int]], tags: list[str] = TAGS) -> bytes:
    return (
        HEADER + "".join(_row(b, c, t) for (b, c), t in zip(values, tags, strict=True))
    ).encode()


@pytest.mark.parametrize(
    ("later", "hit"),
    [
        ([(4096, 1), (-8192, 3), (0, 0)], True),  # negative bytes fit the field
        ([(10**12, 1), (1, 1), (0, 0)], False),  # 13 digits: wider than %12lli
        ([(1, 10**8), (1, 1), (0, 0)], False),  # 9 digits: wider than %8llu
        ([(1, 2**64 - 1), (1, 1), (0, 0)], False),  # an underflowed calls counter
    ],
)
def test_numbers_that_do_not_fit_their_field_go_to_the_full_parser(
    later: list[tuple[int, int]], hit: bool
) -> None:
    # GIVEN a cached layout
    cached = fastparse.CachedParser()
    cached(_text([(100, 1), (200, 2), (300, 3)]))

    # WHEN a text with other numbers is parsed
    text = _text(later)
    got = cached(text)

    # THEN the result is the full parser's, from the cache only when every number fit
    assert got.samples.equals(parse.parse(text).samples)
    assert got.samples["bytes"].to_pylist() == [b for b, _ in later]
    assert cached.hits == int(hit)


def test_a_series_of_reads_decodes_only_what_changed_and_stays_exact() -> None:
    # GIVEN a cached layout and a series of reads where some rows change, change back, turn
    # negative, or do not change at all (unchanged rows keep the numbers of the last read)
    series = [
        [(100, 1), (200, 2), (300, 3)],
        [(100, 1), (250, 3), (300, 3)],  # one row changed
        [(100, 1), (250, 3), (300, 3)],  # nothing changed
        [(100, 1), (200, 2), (-40, 7)],  # one back, one negative
        [(10**12, 1), (200, 2), (-40, 7)],  # too wide: the full parser, no layout
        [(7, 1), (200, 2), (-40, 7)],  # the full parser again, a new layout
    ]
    cached = fastparse.CachedParser()

    for values in series:
        # WHEN each read is parsed
        text = _text(values)
        got = cached(text)

        # THEN it equals the full parser's result
        assert got.samples.equals(parse.parse(text).samples)
        assert got.samples["bytes"].to_pylist() == [b for b, _ in values]
    assert (cached.hits, cached.misses) == (3, 3)


def test_a_changed_tag_of_the_same_length_is_not_taken_from_the_cache() -> None:
    # GIVEN a cached layout, and a text where one function name changed but not its length
    cached = fastparse.CachedParser()
    cached(_text([(1, 1), (2, 2), (3, 3)]))
    text = _text([(1, 1), (2, 2), (3, 3)], [TAGS[0], "mm/b.c:2 [ext4] func:x", TAGS[2]])

    # WHEN parsed, THEN the new name is seen
    got = cached(text)
    assert got.samples["function"].to_pylist() == ["a", "x", "c"]
    assert got.samples.equals(parse.parse(text).samples)
    assert cached.hits == 0


@pytest.mark.parametrize("junk", [b"x", b"!", b")", b"-"])
def test_malformed_fields_fall_back_and_fail_like_the_full_parser(junk: bytes) -> None:
    # GIVEN a cached layout, and the same text with a stray character in the calls field
    cached = fastparse.CachedParser()
    good = _text([(1, 1), (2, 2), (3, 3)])
    cached(good)
    bad = good.replace(b"           2        2", b"           2       " + junk + b"2")

    # WHEN parsed, THEN the full parser's error is raised
    assert bad != good
    with pytest.raises(ParseError) as fast_error:
        cached(bad)
    with pytest.raises(ParseError) as full_error:
        parse.parse(bad)
    assert str(fast_error.value) == str(full_error.value)


def _digit_positions(text: bytes) -> list[int]:
    """Return the offsets of every digit in the two number fields of each row of ``text``."""
    out, at = [], 0
    for line in text.splitlines(keepends=True):
        if not line.startswith((b"allocinfo", b"#")):
            out += [at + i for i in range(21) if line[i : i + 1].isdigit()]
        at += len(line)
    return out


def test_each_digit_changed_alone_is_decoded_from_the_cache() -> None:
    # GIVEN a cached layout whose fields are full of digits (the text is compared 8 bytes at a
    # time, so every position of a word and every row, first and last, must map right)
    values = [(123456789012, 12345678), (-12345678901, 87654321), (987654321098, 11111111)]
    base = _text(values)
    positions = _digit_positions(base)
    assert len(positions) == 3 * 20 - 1  # the minus sign takes one digit's place

    for at in positions:
        # WHEN a read differs from the cached one in that one digit
        cached = fastparse.CachedParser()
        cached(base)
        text = base[:at] + (b"5" if base[at : at + 1] != b"5" else b"6") + base[at + 1 :]
        got = cached(text)

        # THEN it comes from the cache and equals the full parser's result
        assert cached.hits == 1, at
        assert got.samples.equals(parse.parse(text).samples), at


def test_each_tag_byte_changed_alone_is_seen() -> None:
    # GIVEN a cached layout
    base = _text([(1, 1), (2, 2), (3, 3)])
    digits = set(_digit_positions(base))

    for at in range(len(HEADER), len(base)):
        if at in digits or base[at : at + 1] == b" ":
            continue  # a digit, or a space (the fields' own tests change those)
        # WHEN a read differs in one byte of a tag (or a newline), the last row's included
        cached = fastparse.CachedParser()
        cached(base)
        text = base[:at] + (b"Z" if base[at : at + 1] != b"Z" else b"Y") + base[at + 1 :]

        # THEN the cache is not used: the result is the full parser's, or its error
        try:
            expected = parse.parse(text).samples
        except ParseError:
            with pytest.raises(ParseError):
                cached(text)
        else:
            assert cached(text).samples.equals(expected), at
        assert cached.hits == 0, at
