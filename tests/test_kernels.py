"""Call sites across kernel builds: the matching on hand-made sites, and on the real 6.12.117
and 7.3.4 captures against the exact mapping from their source diff (tests/data/kernel-map)."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocsnap.analysis import kernels
from allocsnap.analysis.kernels import Renames, Site, Status
from allocsnap.errors import ParseError
from allocsnap.kernel import capture, source
from bench.kernel_map import map_line
from tests.conftest import data_path, real

MAP = "kernel-map/6.12.117-to-7.3.4.tsv"


def s(function: str, line: int, file: str = "mm/a.c", module: str | None = None) -> Site:
    return Site(module, file, function, line)


def statuses(matching: kernels.Matching) -> set[tuple[str, int | None, int | None]]:
    return {
        (p.status.value, p.before.line if p.before else None, p.after.line if p.after else None)
        for p in matching.pairs
    }


def test_equal_counts_pair_in_order_and_the_same_line_is_matched() -> None:
    # GIVEN f with three sites that all moved down 10 lines, g unchanged at line 5
    before = [s("f", 100), s("f", 120), s("f", 130), s("g", 5)]
    after = [s("f", 110), s("f", 130), s("f", 140), s("g", 5)]

    # WHEN they are matched
    matching = kernels.match(before, after)

    # THEN f's lines pair in order (120 with 130, not with the old 130's own number)
    assert statuses(matching) == {
        ("moved", 100, 110),
        ("moved", 120, 130),
        ("moved", 130, 140),
        ("matched", 5, 5),
    }
    assert matching.summary() == "4 call sites: 1 matched, 3 moved, 0 new, 0 gone"


def test_a_site_added_in_a_function_is_new_and_the_others_pair_by_distance() -> None:
    # GIVEN h moved +10 (an anchor for the file), and f gained a site between its two
    before = [s("h", 10), s("f", 100), s("f", 200)]
    after = [s("h", 20), s("f", 110), s("f", 150), s("f", 210)]

    # WHEN matched
    matching = kernels.match(before, after)

    # THEN 100 and 200 pair with where the anchor's +10 puts them; 150 is new
    assert statuses(matching) == {
        ("moved", 10, 20),
        ("moved", 100, 110),
        ("moved", 200, 210),
        ("new", None, 150),
    }


def test_a_removed_site_is_gone_and_other_modules_and_functions_never_pair() -> None:
    # GIVEN f lost its middle site; m's function exists built in and in a module
    before = [s("f", 10), s("f", 50), s("f", 90), s("m", 7, module="ext4"), s("old", 3)]
    after = [s("f", 10), s("f", 90), s("m", 7), s("new", 3)]

    # WHEN matched
    matching = kernels.match(before, after)

    # THEN
    assert statuses(matching) == {
        ("matched", 10, 10),
        ("matched", 90, 90),
        ("gone", 50, None),
        ("gone", 7, None),
        ("new", None, 7),
        ("gone", 3, None),
        ("new", None, 3),
    }


def test_renamed_files_and_functions_pair_only_when_the_user_names_them() -> None:
    # GIVEN a function renamed and a file renamed
    before = [s("old_fn", 3), s("k", 8, file="mm/old.c")]
    after = [s("new_fn", 4), s("k", 8, file="mm/new.c")]
    renames = Renames(files={"mm/old.c": "mm/new.c"}, functions={"old_fn": "new_fn"})

    # WHEN matched with and without the renames
    named = kernels.match(before, after, renames)
    unnamed = kernels.match(before, after)

    # THEN only the renames pair them, as moved (the key changed), with both sides kept
    assert statuses(named) == {("moved", 3, 4), ("moved", 8, 8)}
    assert unnamed.count(Status.MOVED) == 0 and unnamed.count(Status.NEW) == 2
    assert kernels.moved_table(named).to_pylist() == [
        {"key": "mm/a.c:4 func:new_fn", "moved_from": "mm/a.c:3 func:old_fn"},
        {"key": "mm/new.c:8 func:k", "moved_from": "mm/old.c:8 func:k"},
    ]


def test_the_rename_file_names_the_line_it_cannot_read(tmp_path: Path) -> None:
    # GIVEN a rename file whose third line has two fields
    path = tmp_path / "renames"
    path.write_text("# kernels 6.12 -> 7.3\nfile mm/a.c mm/b.c\nfunction only_one\n")

    # WHEN it is read THEN the error names the file, the line and its text
    with pytest.raises(ParseError) as raised:
        kernels.read_renames(path)
    assert str(raised.value) == (
        f"{path}: line 3: expected 'file OLD NEW' or 'function OLD NEW': 'function only_one'"
    )


def test_the_source_map_names_the_line_it_cannot_read(tmp_path: Path) -> None:
    # GIVEN a source map whose second row has a word for a line number
    path = tmp_path / "map.tsv"
    path.write_text("file\told_line\tnew_line\tkind\nmm/a.c\t1\t2\tsame\nmm/a.c\tx\t3\tsame\n")

    # WHEN it is read THEN
    with pytest.raises(ParseError, match=r"line 3: old_line and new_line must be numbers"):
        kernels.read_source_map(path)
    path.write_text("file old new\n")
    with pytest.raises(ParseError, match=r"line 1: expected the header"):
        kernels.read_source_map(path)


def test_a_line_maps_through_the_hunks_of_a_diff() -> None:
    # GIVEN the hunks of a b c d e -> X a c D e Y Z, as git diff -U0 numbers them
    hunks = [(0, 0, 1, 1), (2, 1, 2, 0), (4, 1, 4, 1), (5, 0, 6, 2)]

    # THEN a moves down one, b is deleted, c stays, d is edited in place, e stays
    assert [map_line(line, hunks) for line in range(1, 6)] == [
        (2, "same"),
        (None, "changed"),
        (3, "same"),
        (4, "edited"),
        (5, "same"),
    ]


def _sites(path: Path) -> list[Site]:
    return kernels.sites(capture.snapshot(source.read_dump(str(path))).samples)


def _exact_pairs(before: list[Site], after: list[Site]) -> set[tuple[Site, Site]]:
    """Return the pairs the source diff gives, read from the map file by hand."""
    rows = data_path(MAP).read_text().splitlines()[1:]
    mapped = {}
    for row in rows:
        file, old, new, _kind = row.split("\t")
        if new:
            mapped[(file, int(old))] = int(new)
    later = set(after)
    pairs = set()
    for site in before:
        line = mapped.get((site.file, site.line))
        target = Site(site.module, site.file, site.function, line or 0)
        if target in later:
            pairs.add((site, target))
    return pairs


def test_the_heuristic_against_the_source_diff_of_the_two_real_kernels() -> None:
    # GIVEN the two kernels after the same workload, and the exact mapping of their sources
    before, after = _sites(real("6.12", 1, 1)), _sites(real("7.3", 2, 1))
    source_map = kernels.read_source_map(data_path(MAP))
    exact = _exact_pairs(before, after)

    # WHEN the heuristic matches them, and the map does
    heuristic = kernels.match(before, after)
    mapped = kernels.match(before, after, source_map=source_map)

    # THEN the map's pairs are the diff's pairs, and the heuristic finds 99% of them; of its
    # pairs whose earlier line the diff maps, 99% are right (docs/kernels.md has the figures)
    assert set(mapped.paired().items()) == exact
    found = {(a, b) for a, b in heuristic.paired().items() if a.file in source_map.files}
    decidable = {(a, b) for a, b in found if (a.file, a.line) in source_map.lines}
    assert len(exact) == 2558
    assert len(found & exact) == 2532
    assert len(found) == 2806
    assert len(decidable) == 2561
    agreement = kernels.agreement(heuristic, mapped, source_map.files)
    assert (agreement.true_pairs, agreement.heuristic_pairs, agreement.exact_pairs) == (
        2532,
        2806,
        2558,
    )
