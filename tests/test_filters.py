"""filters: globs, module 'built-in', inclusive size bounds, nonzero and accuracy."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from allocsnap import filters
from allocsnap.kernel.parse import parse
from allocsnap.model import Filter
from tests import oracle
from tests.conftest import public, real

TEXT = (
    "allocinfo - version: 2.0\n"
    "#     <size>  <calls> <tag info>\n"
    "        4096        1 fs/ext4/super.c:10 [ext4] func:ext4_fill_super \n"
    "        1024        2 fs/ext4/inode.c:20 [ext4] func:ext4_iget accurate:no \n"
    "           0        0 fs/jbd2/journal.c:30 [jbd2] func:jbd2_alloc \n"
    "        2048        3 mm/slub.c:40 func:alloc_slab_page \n"
    "       -4096        1 mm/filemap.c:50 func:filemap_alloc \n"
    "         512        4 drivers/block/loop.c:60 [loop] func:loop_add \n"
)


@pytest.fixture
def table() -> pa.Table:
    return parse(TEXT).samples


def functions(t: pa.Table) -> list[str]:
    return [str(f) for f in t["function"].to_pylist()]


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        (Filter(), ["ext4_fill_super", "ext4_iget", "jbd2_alloc", "alloc_slab_page",
                    "filemap_alloc", "loop_add"]),
        (Filter(module="ext4"), ["ext4_fill_super", "ext4_iget"]),
        (Filter(module="*"), ["ext4_fill_super", "ext4_iget", "jbd2_alloc", "loop_add"]),
        (Filter(module="j?d2"), ["jbd2_alloc"]),
        (Filter(module="[el]*"), ["ext4_fill_super", "ext4_iget", "loop_add"]),
        (Filter(module="[!el]*"), ["jbd2_alloc"]),
        (Filter(module="built-in"), ["alloc_slab_page", "filemap_alloc"]),
        (Filter(function="*alloc*"), ["jbd2_alloc", "alloc_slab_page", "filemap_alloc"]),
        (Filter(file="fs/ext4/*"), ["ext4_fill_super", "ext4_iget"]),
        (Filter(file="fs/*"), ["ext4_fill_super", "ext4_iget", "jbd2_alloc"]),
        (Filter(file="mm/slub.c", line=40), ["alloc_slab_page"]),
        (Filter(line=41), []),
        (Filter(min_size=1024), ["ext4_fill_super", "ext4_iget", "alloc_slab_page"]),
        (Filter(max_size=1024), ["ext4_iget", "jbd2_alloc", "filemap_alloc", "loop_add"]),
        (Filter(min_size=512, max_size=2048), ["ext4_iget", "alloc_slab_page", "loop_add"]),
        (Filter(nonzero=True), ["ext4_fill_super", "ext4_iget", "alloc_slab_page",
                                "filemap_alloc", "loop_add"]),
        (Filter(accurate=False), ["ext4_iget"]),
        (Filter(accurate=True, module="ext4"), ["ext4_fill_super"]),
    ],
)  # fmt: skip
def test_filter_keeps_expected_rows(table: pa.Table, keep: Filter, expected: list[str]) -> None:
    # GIVEN six rows (hand-written above), WHEN filtered, THEN exactly the expected ones remain
    assert functions(filters.apply(table, keep)) == expected


def test_glob_special_characters_are_literal(table: pa.Table) -> None:
    # GIVEN a glob with regex metacharacters ('.' must not match any character)
    # THEN it matches literally
    assert functions(filters.apply(table, Filter(file="mm/slub.c"))) == ["alloc_slab_page"]
    assert functions(filters.apply(table, Filter(file="mm/slub?c"))) == ["alloc_slab_page"]
    assert functions(filters.apply(table, Filter(file="mm/slubxc"))) == []
    assert re.fullmatch(filters.glob_to_regex("a.b+(c)"), "a.b+(c)")
    assert not re.fullmatch(filters.glob_to_regex("a.b"), "axb")


def test_filters_on_real_capture_match_independent_count() -> None:
    # GIVEN boot-1 snap-3 (modules loaded)
    path = real("6.12", 1, 3)
    rows = oracle.rows(path)
    table = parse(path.read_text()).samples

    # WHEN filtered by built-in, by a module glob, and by inclusive size bounds
    built_in = filters.apply(table, Filter(module="built-in"))
    ext = filters.apply(table, Filter(module="ext*", nonzero=True))
    sized = filters.apply(table, Filter(min_size=4096, max_size=65536))

    # THEN the counts equal those of a plain loop over the rows
    assert built_in.num_rows == sum(1 for r in rows if r.module is None)
    assert ext.num_rows == sum(1 for r in rows if (r.module or "").startswith("ext") and r.bytes)
    assert sized.num_rows == sum(1 for r in rows if 4096 <= r.bytes <= 65536)
    assert any(r.bytes == 4096 for r in rows)  # the bound itself occurs: inclusive matters


def test_value_mask_on_negative_bytes() -> None:
    # GIVEN fixture 06 with negative bytes
    table = parse(public("06").read_text()).samples

    # WHEN keeping rows of at most 0 bytes
    kept = filters.apply(table, Filter(max_size=0))

    # THEN the negative rows are kept (never clamped to 0)
    assert kept["bytes"].to_pylist() == [b for b in table["bytes"].to_pylist() if b <= 0]
    assert kept.num_rows == 7


def test_canonical_and_is_empty() -> None:
    assert Filter().is_empty() and Filter().canonical() == ""
    f = Filter(module="ext4", min_size=1024, accurate=False, nonzero=True)
    assert not f.is_empty()
    assert f.canonical() == "module=ext4 min_size=1024 inaccurate nonzero"


def test_tag_masks_are_kept_while_the_parser_hands_out_the_same_tags() -> None:
    # GIVEN the recorder's cached parser and its memo of tag masks, over reads of one boot:
    # idle (snap-0..2), modules loaded (snap-3: other tags), then unloaded (snap-4). The parser
    # hands out its cached tag columns from the first read after a full parse on.
    from allocsnap.kernel.fastparse import CachedParser

    parser, masks = CachedParser(), filters.TagMasks()
    keep, other = Filter(module="ext4"), Filter(module="loop")
    seen = []
    reads = [
        (0, keep),
        (1, keep),
        (2, keep),
        (3, keep),
        (3, keep),
        (3, keep),
        (3, other),
        (4, other),
    ]
    for index, f in reads:
        # WHEN each read's mask is asked for
        table = parser(real("6.12", 1, index).read_bytes()).samples
        mask = masks(table, f)

        # THEN it is the one computed from scratch, with the number of rows the dump has
        expected = filters.tag_mask(table, f)
        assert mask is not None and expected is not None
        assert mask.equals(expected)
        wanted = f"[{f.module}]"
        assert mask.to_pylist().count(True) == sum(
            wanted in line.split() for line in real("6.12", 1, index).read_text().splitlines()
        )
        seen.append(mask)

    # AND it was reused exactly while the tags and the filter stayed the same
    assert [seen[i] is seen[i - 1] for i in range(1, len(seen))] == [
        False,  # snap-1: the parser's cached columns, first time
        True,  # snap-2: the same columns
        False,  # snap-3: modules loaded, a full parse
        False,  # the cached columns, first time
        True,
        False,  # another filter
        False,  # snap-4: another full parse
    ]
