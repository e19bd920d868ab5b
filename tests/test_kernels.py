"""Call sites across kernel builds: the matching on hand-made sites, and on the real 6.12.117
and 7.3.4 captures against the exact mapping from their source diff (tests/data/kernel-map)."""

from __future__ import annotations

import io
import json
from csv import DictReader
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from allocsnap import analysis
from allocsnap.analysis import kernel_files, kernels
from allocsnap.analysis.kernel_files import Renames
from allocsnap.analysis.kernels import Site, Status
from allocsnap.cli import app
from allocsnap.errors import ExitCode, InputTooLarge, ParseError
from allocsnap.kernel import capture, source
from allocsnap.store import compaction, writing
from bench.kernel_map import map_line
from tests.conftest import data_path, real
from tests.test_trends import snapshot

MAP = "kernel-map/6.12.117-to-7.3.4.tsv"
runner = CliRunner()


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
        kernel_files.read_renames(path)
    assert str(raised.value) == (
        f"{path}: line 3: expected 'file OLD NEW' or 'function OLD NEW': 'function only_one'"
    )


def test_the_source_map_names_the_line_it_cannot_read(tmp_path: Path) -> None:
    # GIVEN a source map whose second row has a word for a line number
    path = tmp_path / "map.tsv"
    path.write_text("file\told_line\tnew_line\tkind\nmm/a.c\t1\t2\tsame\nmm/a.c\tx\t3\tsame\n")

    # WHEN it is read THEN
    with pytest.raises(ParseError, match=r"line 3: old_line and new_line must be numbers"):
        kernel_files.read_source_map(path)
    path.write_text("file old new\n")
    with pytest.raises(ParseError, match=r"line 1: expected the header"):
        kernel_files.read_source_map(path)


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
    source_map = kernel_files.read_source_map(data_path(MAP))
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


# -- allocsnap diff across kernels ----------------------------------------------------------


@pytest.fixture
def two_kernels(tmp_path: Path) -> Path:
    """A store of one host before and after its upgrade from 6.12.117 to 7.3.4, each after
    the same tmpfs workload."""
    store = tmp_path / "store"
    for kernel, dump, at, name in (
        ("6.12.117-allocsnap", real("6.12", 1, 1), "2026-11-26T10:00Z", "old"),
        ("7.3.4-allocsnap", real("7.3", 2, 1), "2026-11-27T10:00Z", "new"),
    ):
        args = ["import", str(dump), "--at", at, "--host", "vm", "--kernel", kernel]
        result = runner.invoke(app, [*args, "--name", name, "--store", str(store)])
        assert result.exit_code == 0, result.output
    return store


def test_diff_across_kernels_pairs_moved_sites_and_names_both_kernels(two_kernels: Path) -> None:
    # GIVEN the upgrade; WHEN diffed by call site as CSV and as a table
    args = ["diff", "old", "new", "--store", str(two_kernels), "--top", "0"]
    csv = runner.invoke(app, [*args, "--format", "csv"])
    table = runner.invoke(app, [*args, "--top", "3"])

    # THEN shmem_alloc_folio, at 6.12's mm/shmem.c:1812 and 7.3's :1938 (the source diff's
    # mapping), is one MOVED row rather than a GONE and a NEW one
    assert csv.exit_code == 0, csv.output
    rows = list(DictReader(io.StringIO(csv.stdout)))
    [folio] = [r for r in rows if r["key"].endswith("func:shmem_alloc_folio")]
    assert folio["key"] == "mm/shmem.c:1938 func:shmem_alloc_folio"
    assert (folio["status"], folio["moved_from"]) == ("moved", ":1812")
    assert not [r for r in rows if r["key"].startswith("mm/shmem.c:1812 ")]
    # AND the header names both kernels and the counts of test_the_heuristic_... above
    assert table.exit_code == 0, table.output
    assert (
        "kernels: 6.12.117-allocsnap -> 7.3.4-allocsnap  (3,633 call sites: 744 matched, "
        "2,062 moved, 535 new, 292 gone; matched by line order)\n"
    ) in table.stdout


def test_no_match_lines_keeps_the_plain_diff(two_kernels: Path) -> None:
    # GIVEN the upgrade; WHEN diffed with the matching off
    args = ["diff", "old", "new", "--store", str(two_kernels), "--format", "csv", "--top", "0"]
    off = runner.invoke(app, [*args, "--no-match-lines"])
    table = runner.invoke(app, [*args[:-4], "--no-match-lines"])

    # THEN every site that moved is a GONE and a NEW row, and no row is moved
    rows = list(DictReader(io.StringIO(off.stdout)))
    keys = {r["key"]: r["status"] for r in rows}
    assert keys["mm/shmem.c:1812 func:shmem_alloc_folio"] == "gone"
    assert keys["mm/shmem.c:1938 func:shmem_alloc_folio"] == "new"
    assert "moved_from" not in rows[0]
    assert "\nkernels: " not in table.stdout and " was " not in table.stdout


def test_diff_by_function_across_kernels_compares_like_with_like(two_kernels: Path) -> None:
    # GIVEN the upgrade; WHEN diffed by function, with the source map
    args = ["diff", "old", "new", "--store", str(two_kernels), "--by", "function"]
    source_map = ["--source-map", str(data_path(MAP))]
    csv = runner.invoke(app, [*args, *source_map, "--top", "0", "--format", "csv"])
    mapped = runner.invoke(app, [*args, *source_map, "--top", "2"])

    # THEN shmem_alloc_folio is one row whose bytes and calls are the captures' own sums for
    # it (awk over the two dumps: 77004800 bytes in 18800 calls, 77426688 in 18903), and the
    # heuristic is scored against the map
    assert csv.exit_code == 0, csv.output
    rows = {r["key"]: r for r in DictReader(io.StringIO(csv.stdout))}
    folio = rows["shmem_alloc_folio"]
    assert (folio["bytes_before"], folio["calls_before"]) == ("77004800", "18800")
    assert (folio["bytes_after"], folio["calls_after"]) == ("77426688", "18903")
    assert (
        "heuristic: 2,532 of its 2,806 pairs agree with the map's 2,558 "
        "(precision 90.2%, recall 99.0%)\n"
    ) in mapped.stdout


def test_a_malformed_rename_file_is_one_line_naming_its_line(
    two_kernels: Path, tmp_path: Path
) -> None:
    # GIVEN a rename file with a wrong kind on line 2
    renames = tmp_path / "renames.txt"
    renames.write_text("function a b\nmodule ext4 ext5\n")

    # WHEN diffed with it
    result = runner.invoke(
        app, ["diff", "old", "new", "--store", str(two_kernels), "--rename", str(renames)]
    )

    # THEN exit 1, and stderr names the file, the line and its text
    assert result.exit_code == ExitCode.FAILURE
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {renames}: line 2: expected 'file OLD NEW' or 'function OLD NEW': "
        "'module ext4 ext5'\n"
    )


def test_diff_across_kernels_as_json_counts_the_pairing(two_kernels: Path) -> None:
    # GIVEN the upgrade; WHEN diffed as JSON
    args = ["diff", "old", "new", "--store", str(two_kernels), "--format", "json", "--top", "1"]
    result = runner.invoke(app, args)

    # THEN the document names both kernels and the counts of the table's header
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kernels"] == {
        "before": "6.12.117-allocsnap",
        "after": "7.3.4-allocsnap",
        "matched": 744,
        "moved": 2062,
        "new": 535,
        "gone": 292,
    }


# -- history and growth --across-kernels -----------------------------------------------------


def test_history_across_kernels_follows_a_site_whose_line_moved(two_kernels: Path) -> None:
    # GIVEN the upgrade; WHEN shmem_alloc_folio's history is asked with and without following
    args = ["history", "shmem_alloc_folio", "--store", str(two_kernels), "--format", "csv"]
    followed = runner.invoke(app, [*args, "--across-kernels"])
    plain = runner.invoke(app, args)

    # THEN with it, one call site (7.3's line) holds both epochs, the awk sums of each dump;
    # without it, each kernel's epoch has its own line
    assert followed.exit_code == 0, followed.output
    rows = list(DictReader(io.StringIO(followed.stdout)))
    assert [(r["key"], r["epoch"], r["bytes"]) for r in rows] == [
        ("mm/shmem.c:1938 func:shmem_alloc_folio", "vm 6.12.117-allocsnap", "77004800"),
        ("mm/shmem.c:1938 func:shmem_alloc_folio", "vm 7.3.4-allocsnap", "77426688"),
    ]
    assert "across kernels: 6.12.117-allocsnap -> 7.3.4-allocsnap: 3,633 call sites" in (
        followed.stderr
    )
    keys = {r["key"] for r in DictReader(io.StringIO(plain.stdout))}
    assert keys == {
        "mm/shmem.c:1812 func:shmem_alloc_folio",
        "mm/shmem.c:1938 func:shmem_alloc_folio",
    }


def test_across_kernels_still_follows_when_a_reading_is_retried(two_kernels: Path) -> None:
    # GIVEN a session that follows call sites across the upgrade, then the store compacted
    # under it (its listing names files that are gone: the reading is retried afresh)
    with analysis.across_kernels(two_kernels) as across:
        done = compaction.compact(two_kernels, grace_s=0)
        assert done.files_removed, "nothing was compacted: the retry is not exercised"
        # WHEN shmem_alloc_folio's history is read on that session
        result = analysis.history(across.session, "shmem_alloc_folio")
    # THEN the retry's fresh connection follows the site too: one series over both kernels
    assert set(result.rows["key"].to_pylist()) == {"mm/shmem.c:1938 func:shmem_alloc_folio"}


def test_growth_across_kernels_compares_the_site_with_itself(two_kernels: Path) -> None:
    # GIVEN the upgrade; WHEN growth follows call sites across it
    args = ["growth", "--store", str(two_kernels), "--format", "csv", "--top", "0"]
    result = runner.invoke(app, [*args, "--across-kernels"])

    # THEN shmem_alloc_folio is one row: 6.12's bytes against 7.3's, not NEW and GONE
    assert result.exit_code == 0, result.output
    rows = {r["key"]: r for r in DictReader(io.StringIO(result.stdout))}
    folio = rows["mm/shmem.c:1938 func:shmem_alloc_folio"]
    assert (folio["status"], folio["median_a"], folio["median_b"]) == ("", "77004800", "77426688")
    assert "mm/shmem.c:1812 func:shmem_alloc_folio" not in rows


def test_when_a_diff_pairs_call_sites() -> None:
    # GIVEN the options as the diff command builds them
    default, off = kernels.LineOptions(), kernels.LineOptions(match=False)
    mapped = kernels.LineOptions(source_map=kernel_files.SourceMap({}, frozenset()))

    # THEN by default only two different known kernels pair; a map asks for it; --no-... wins
    assert default.applies("6.12.117", "7.3.4")
    assert not default.applies("6.12.117", "6.12.117")
    assert not default.applies(None, "7.3.4")
    assert mapped.applies(None, None)
    assert not off.applies("6.12.117", "7.3.4")
    assert kernels.LineOptions(match=True).applies(None, None)


def test_a_real_rename_pairs_only_through_the_rename_file(tmp_path: Path) -> None:
    # GIVEN 7.3 renamed __filemap_get_folio to __filemap_get_folio_mpol: the source diff maps
    # mm/filemap.c:1944 (filemap_alloc_folio in 6.12's function) to 2018 (in 7.3's)
    before, after = _sites(real("6.12", 1, 1)), _sites(real("7.3", 2, 1))
    renames = tmp_path / "renames.txt"
    renames.write_text("# 6.12 -> 7.3\nfunction __filemap_get_folio __filemap_get_folio_mpol\n")
    old = Site(None, "mm/filemap.c", "__filemap_get_folio", 1944)
    new = Site(None, "mm/filemap.c", "__filemap_get_folio_mpol", 2018)

    # WHEN matched without and with the rename file
    plain = kernels.match(before, after)
    renamed = kernels.match(before, after, kernel_files.read_renames(renames))

    # THEN only the rename pairs them, as MOVED
    assert old not in plain.paired()
    assert renamed.paired()[old] == new
    assert [p.status for p in renamed.pairs if p.before == old] == [Status.MOVED]


def test_a_device_given_as_a_mapping_file_is_refused() -> None:
    # GIVEN /dev/zero as a rename file; WHEN read THEN it stops at the bound, saying so
    with pytest.raises(InputTooLarge, match=r"^/dev/zero is larger than 16,777,216 bytes"):
        kernel_files.read_renames(Path("/dev/zero"))


def test_leaks_across_kernels_names_a_moved_site_once(tmp_path: Path) -> None:
    # GIVEN a host that leaks in fs/x.c's grow() on 6.12 (line 100), then upgraded to 7.3,
    # where the same allocation sits at line 120 and still leaks: 100 KiB a minute, 30 minutes
    # each (computed here: 29 x 100 KiB of growth per kernel)
    start = datetime(2026, 11, 20, 8, tzinfo=UTC)
    for k, (kernel, line) in enumerate((("6.12.117-allocsnap", 100), ("7.3.4-allocsnap", 120))):
        for i in range(30):
            at = start + timedelta(days=k, minutes=i)
            site: tuple[str | None, str, int, str] = (None, "fs/x.c", line, "grow")
            values = {site: (4 << 20) + i * (100 << 10)}
            snap = snapshot(at, values, boot=f"boot-{k}")
            writing.write(tmp_path, replace(snap, meta=snap.meta._replace(kernel=kernel)))
    args = ["leaks", "--fleet", "--store", str(tmp_path), "--format", "csv"]
    # WHEN leaks is asked per call site, with and without following the site
    followed = runner.invoke(app, [*args, "--across-kernels"])
    plain = runner.invoke(app, args)
    # THEN following, one call site (7.3's line) leaks in both boots; without, two sites
    assert followed.exit_code == 0, followed.output
    rows = list(DictReader(io.StringIO(followed.stdout)))
    assert [(r["key"], r["series"], r["growth_bytes"]) for r in rows] == [
        ("fs/x.c:120 func:grow", "2", str(2 * 29 * (100 << 10)))
    ]
    assert sorted(r["key"] for r in DictReader(io.StringIO(plain.stdout))) == [
        "fs/x.c:100 func:grow",
        "fs/x.c:120 func:grow",
    ]
