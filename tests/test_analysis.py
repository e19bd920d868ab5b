"""analysis: diff, show, resolve and the epoch warnings, against the independent reader."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from allocsnap import analysis
from allocsnap.analysis import Grouping
from allocsnap.errors import StoreNotFound, UsageError
from allocsnap.kernel import capture, source
from allocsnap.model import Filter, Snapshot
from allocsnap.store import writing
from tests import oracle
from tests.conftest import public, real

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def meta_json(path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((path.parent / "meta.json").read_text())
    [entry] = [s for s in meta["snapshots"] if s["file"] == path.name]
    return {**entry, "boot_id": meta["boot_id"], "kernel": meta["kernel_release"]}


def snap(path: Path, *, at: datetime = T0, with_meta: bool = False, **kw: Any) -> Snapshot:
    """A snapshot of a capture; with_meta fills boot id, kernel, profiling and modules from
    meta.json as procfs would have recorded them."""
    facts: dict[str, Any] = {}
    if with_meta:
        m = meta_json(path)
        facts = {
            "boot_id": m["boot_id"],
            "kernel": m["kernel"],
            "profiling": int(m["vm_mem_profiling"]),
            "modules": tuple(sorted(m["modules_loaded"])),
        }
    raw = source.RawRead(
        text=path.read_bytes(), source="file", origin=path.name, taken_at=at, **facts
    )
    return capture.snapshot(raw, **kw)


def changes_of(table: pa.Table) -> list[tuple[Any, ...]]:
    cols = ["key", "bytes_before", "bytes_after", "delta_bytes", "calls_before", "calls_after",
            "delta_calls"]  # fmt: skip
    return list(zip(*(table[c].to_pylist() for c in cols), strict=True))


def expected_changes(changes: list[oracle.Change]) -> list[tuple[Any, ...]]:
    return [
        (c.key, c.bytes_before, c.bytes_after, c.delta_bytes, c.calls_before, c.calls_after,
         c.delta_calls)
        for c in changes
    ]  # fmt: skip


# -- diff ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"), [(2, 3), (3, 4), (0, 1)], ids=["modules-loaded", "unloaded", "tmpfs"]
)
@pytest.mark.parametrize("by", ["tag", "module", "dir:2", "dir:1", "function", "file"])
def test_diff_matches_independent_sums(before: int, after: int, by: str) -> None:
    # GIVEN two real snapshots of one boot
    b, a = real("6.12", 1, before), real("6.12", 1, after)
    grouping = Grouping.parse(by)
    expected = oracle.diff(oracle.rows(b), oracle.rows(a), grouping.by, grouping.depth)

    # WHEN diffed with no row limit
    result = analysis.diff(snap(b), snap(a, at=T0 + timedelta(minutes=1)), grouping=grouping,
                           top_n=None)  # fmt: skip

    # THEN every changed group, its sums and the order (|Δ| desc, then key) are the reader's
    assert changes_of(result.rows) == expected_changes(expected)
    assert result.changed == len(expected) > 0
    assert result.before_totals.bytes == sum(r.bytes for r in oracle.rows(b))
    assert result.after_totals.calls == sum(r.signed_calls for r in oracle.rows(a))


@pytest.mark.slow
def test_diff_statuses_when_modules_load_and_unload() -> None:
    # GIVEN boot-1: 2 -> 3 loads ext4, zram, loop, dummy…; 3 -> 4 removes them again
    s2, s3, s4 = (snap(real("6.12", 1, i), with_meta=True) for i in (2, 3, 4))
    rows3 = oracle.rows(real("6.12", 1, 3))
    module_sites = {r.site for r in rows3 if r.module}
    modules = {r.module for r in rows3 if r.module}

    # WHEN diffed by tag
    loaded = analysis.diff(s2, s3, top_n=None).rows.to_pylist()
    unloaded = analysis.diff(s3, s4, top_n=None).rows.to_pylist()

    # THEN module rows that appear are 'new', and module rows that vanish are 'unloaded'
    sites2 = {r.site for r in oracle.rows(real("6.12", 1, 2))}
    new = {c.key for c in oracle.diff(oracle.rows(real("6.12", 1, 2)), rows3)} - sites2
    assert new and new <= module_sites
    assert {r["key"] for r in loaded if r["status"] == "new"} == new
    gone = {
        r["key"]: r["status"]
        for r in unloaded
        if r["bytes_after"] == 0 and r["key"] in module_sites
    }
    assert gone and set(gone.values()) == {"unloaded"}
    assert all(r["status"] in ("", "new") for r in loaded)
    assert all(r["status"] != "new" for r in unloaded)

    # AND by module, each removed module is one 'unloaded' group
    by_module = analysis.diff(s3, s4, grouping=Grouping("module"), top_n=None).rows.to_pylist()
    status = {r["key"]: r["status"] for r in by_module}
    changed_modules = {c.key for c in oracle.diff(rows3, oracle.rows(real("6.12", 1, 4)), "module")}
    assert status == dict.fromkeys(changed_modules - {"(built-in)"}, "unloaded") | {
        "(built-in)": ""
    }
    assert changed_modules - {"(built-in)"} <= modules

    # AND the warnings name the modules, from the recorded module lists
    warnings = analysis.diff(s3, s4).warnings
    assert any(w.startswith("modules unloaded in between: ") for w in warnings)
    unloaded_names = set(meta_json(real("6.12", 1, 3))["modules_loaded"])
    assert f"modules unloaded in between: {', '.join(sorted(unloaded_names))}" in warnings[0]


def test_vanished_module_row_is_unloaded_without_recorded_modules() -> None:
    # GIVEN dumps with no module list (imported text), 3 -> 4
    result = analysis.diff(snap(real("6.12", 1, 3)), snap(real("6.12", 1, 4)), top_n=None)

    # THEN module rows are still 'unloaded' (the later dump has no rows of those modules)
    statuses = {
        r["status"] for r in result.rows.to_pylist() if "[" in r["key"] and not r["bytes_after"]
    }
    assert statuses == {"unloaded"}
    # AND the warning names the modules whose rows vanished, read off the rows themselves
    gone = {r.module for r in oracle.rows(real("6.12", 1, 3)) if r.module} - {
        r.module for r in oracle.rows(real("6.12", 1, 4)) if r.module
    }
    assert result.warnings == (
        f"modules unloaded in between: {', '.join(sorted(gone))} (their rows vanished; "
        "a vanished row is not a free)",
    )


def test_profiling_switched_on_warns() -> None:
    # GIVEN boot-3: profiling off at 0 (all counters 0), switched on before 1
    off = snap(real("6.12", 3, 0), with_meta=True)
    on = snap(real("6.12", 3, 1), with_meta=True, at=T0 + timedelta(seconds=1))
    assert (off.meta.profiling, on.meta.profiling) == (0, 1)
    assert off.meta.total_bytes == 0  # the reader agrees: all counters are 0
    assert all(r.bytes == 0 for r in oracle.rows(real("6.12", 3, 0)))

    # WHEN diffed
    result = analysis.diff(off, on, top_n=None)

    # THEN it warns that counting started in between, and still reports the groups
    assert result.warnings == (
        "profiling was off (vm.mem_profiling=0) at the earlier snapshot: counters frozen",
        "profiling was switched on in between: counts start from that moment",
    )
    expected = oracle.diff(oracle.rows(real("6.12", 3, 0)), oracle.rows(real("6.12", 3, 1)))
    assert changes_of(result.rows) == expected_changes(expected)


def test_different_boots_and_kernels_warn() -> None:
    # GIVEN a 6.12 snapshot and a 7.3 snapshot, each with its boot id and kernel
    old = snap(real("6.12", 1, 4), with_meta=True, host="vm")
    new = snap(real("7.3", 2, 0), with_meta=True, host="vm", at=T0 + timedelta(hours=2))

    # WHEN diffed, THEN the boot change is the warning (it implies the kernel change)
    assert analysis.diff(old, new).warnings == (
        "different boots (boot_id changed): counters restarted from zero in between",
    )

    # AND without boot ids, the kernels are named; with other hosts, the hosts are
    raw = source.RawRead(text=real("7.3", 2, 0).read_bytes(), source="file", taken_at=T0,
                         kernel="7.3.4-allocsnap")  # fmt: skip
    raw_old = source.RawRead(text=real("6.12", 1, 4).read_bytes(), source="file",
                             taken_at=T0, kernel="6.12.117-allocsnap")  # fmt: skip
    warned = analysis.diff(capture.snapshot(raw_old, host="a"), capture.snapshot(raw, host="b"))
    assert warned.warnings == (
        "different hosts: a and b",
        "different kernels: 6.12.117-allocsnap and 7.3.4-allocsnap",
    )


@pytest.mark.slow
def test_different_hosts_warn_through_the_store(store_dir: Path) -> None:
    # GIVEN two imports into a store with different --host
    writing.write(store_dir, snap(real("6.12", 1, 0), host="db7", name="a"))
    writing.write(store_dir, snap(real("6.12", 1, 1), host="db8", name="b", at=T0 + timedelta(1)))

    # WHEN diffed by name
    result = analysis.diff(analysis.load("a", store_dir), analysis.load("b", store_dir))

    # THEN the hosts are named, and the hours between give a rate column
    assert result.warnings == ("different hosts: db7 and db8",)
    first = result.rows.to_pylist()[0]
    assert first["bytes_per_hour"] == round(first["delta_bytes"] / 24)


def test_diff_across_kernels_matches_reader() -> None:
    # GIVEN the 6.12 and 7.3 captures (different kernels, many keys new or gone)
    b, a = real("6.12", 1, 0), real("7.3", 2, 0)
    expected = oracle.diff(oracle.rows(b), oracle.rows(a))

    # WHEN diffed
    rows = analysis.diff(snap(b), snap(a), top_n=None).rows.to_pylist()

    # THEN groups and statuses follow the reader: absent before is new, absent after is gone
    assert [r["key"] for r in rows] == [c.key for c in expected]
    before_keys = {r.site for r in oracle.rows(b)}
    after_keys = {r.site for r in oracle.rows(a)}
    for r in rows:
        want = (
            "new" if r["key"] not in before_keys else ("gone" if r["key"] not in after_keys else "")
        )
        assert r["status"] == want, r["key"]


def test_top_n_min_delta_and_percentages() -> None:
    # GIVEN boot-1 2 -> 3 and the reader's changes
    b, a = real("6.12", 1, 2), real("6.12", 1, 3)
    expected = oracle.diff(oracle.rows(b), oracle.rows(a))
    after_total = sum(r.bytes for r in oracle.rows(a))

    # WHEN limited to 5 rows
    top = analysis.diff(snap(b), snap(a), top_n=5)
    # THEN they are the first 5, and changed counts all
    assert changes_of(top.rows) == expected_changes(expected[:5])
    assert top.changed == len(expected)

    # WHEN small changes are hidden
    big = analysis.diff(snap(b), snap(a), top_n=None, min_delta=64 * 1024)
    # THEN only |Δbytes| >= 64 KiB is left (inclusive)
    assert changes_of(big.rows) == expected_changes(
        [c for c in expected if abs(c.delta_bytes) >= 64 * 1024]
    )

    # AND share and Δ% are the after bytes over the after total, and Δ over |before|
    for r, c in zip(top.rows.to_pylist(), expected, strict=False):
        assert r["share_pct"] == pytest.approx(100 * c.bytes_after / after_total, abs=0.006)
        if c.bytes_before:
            assert r["delta_pct"] == pytest.approx(100 * c.delta_bytes / c.bytes_before, abs=0.06)
        else:
            assert r["delta_pct"] is None
        assert r["bytes_per_hour"] is None  # the snapshots are less than an hour apart


def test_diff_filters() -> None:
    # GIVEN boot-1 2 -> 3
    b, a = real("6.12", 1, 2), real("6.12", 1, 3)
    rb, ra = oracle.rows(b), oracle.rows(a)

    # WHEN only ext4 rows are kept
    result = analysis.diff(snap(b), snap(a), keep=Filter(module="ext4"), top_n=None)
    # THEN the groups are the ext4 rows' changes and the totals are of those rows
    ext4 = [r for r in ra if r.module == "ext4"]
    assert changes_of(result.rows) == expected_changes(oracle.diff([], ext4))
    assert result.after_totals.bytes == sum(r.bytes for r in ext4)

    # WHEN keeping groups of at least 1 MiB on either side
    sized = analysis.diff(snap(b), snap(a), keep=Filter(min_size=2**20), top_n=None)
    assert changes_of(sized.rows) == expected_changes(
        [c for c in oracle.diff(rb, ra) if max(c.bytes_before, c.bytes_after) >= 2**20]
    )


def test_identical_snapshots_have_no_changes() -> None:
    result = analysis.diff(snap(real("6.12", 1, 0)), snap(real("6.12", 1, 0)))
    assert result.rows.num_rows == 0 and result.changed == 0


# -- show ------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["tag", "module", "dir:2"])
@pytest.mark.parametrize("sort", ["bytes", "calls", "tag"])
def test_show_sorts_and_totals(by: str, sort: str) -> None:
    # GIVEN boot-1 snap-3
    path = real("6.12", 1, 3)
    grouping = Grouping.parse(by)
    sums = oracle.sums(oracle.rows(path), grouping.by, grouping.depth)
    index = {"bytes": 0, "calls": 1}
    if sort == "tag":
        expected = sorted(sums)
    else:
        expected = sorted(sums, key=lambda k: (-sums[k][index[sort]], k))

    # WHEN shown with no limit
    result = analysis.show(snap(path), grouping=grouping, sort=sort, top_n=None)

    # THEN groups come in that order with the reader's sums, and the totals are the rows'
    rows = result.rows.to_pylist()
    assert [r["key"] for r in rows] == expected
    assert all((r["bytes"], r["calls"]) == sums[r["key"]] for r in rows)
    total = sum(b for b, _ in sums.values())
    assert result.totals.bytes == total and result.totals.rows == len(oracle.rows(path))
    assert result.groups == len(sums)
    assert sum(r["share_pct"] for r in rows) == pytest.approx(100, abs=0.01 * len(rows))


def test_show_top_and_filter() -> None:
    # GIVEN the 7.3 capture with accurate:no rows
    path = real("7.3", 2, 1)
    inaccurate = [r for r in oracle.rows(path) if "accurate:no" in r.extras]

    # WHEN only inaccurate rows are shown, top 2
    result = analysis.show(snap(path), keep=Filter(accurate=False), top_n=2)

    # THEN totals count all inaccurate rows, and two groups are listed
    assert result.totals.rows == len(inaccurate)
    assert result.totals.bytes == sum(r.bytes for r in inaccurate)
    assert result.groups == len({r.site for r in inaccurate})
    assert result.rows.num_rows == 2


# -- resolve -----------------------------------------------------------------------------------


@pytest.fixture
def three(store_dir: Path) -> list[Snapshot]:
    snaps = [
        snap(real("6.12", 1, 0), name="boot", host="vm", at=T0),
        snap(real("6.12", 1, 1), name="work", host="vm", at=T0 + timedelta(hours=1)),
        snap(real("6.12", 1, 2), name="work", host="vm", at=T0 + timedelta(hours=2)),
    ]
    for s in reversed(snaps):  # write order must not matter
        writing.write(store_dir, s)
    return snaps


@pytest.mark.slow
def test_resolve_references(store_dir: Path, three: list[Snapshot]) -> None:
    ids = [s.meta.snapshot_id for s in three]

    def got(ref: str) -> str:
        return analysis.resolve(store_dir, ref).snapshot_id

    # THEN first/latest follow time, a repeated name means its latest, ids and prefixes work
    assert got("first") == ids[0]
    assert got("latest") == ids[2]
    assert got("boot") == ids[0]
    assert got("work") == ids[2]
    assert got(ids[1]) == ids[1]
    assert got(ids[1][:6]) == ids[1]
    # a time picks the last snapshot at or before it
    assert got("2026-11-26T14:59:59Z") == ids[0]
    assert got("2026-11-26T15:00:00Z") == ids[1]
    assert got("2026-11-26T16:30:00+00:00") == ids[2]


@pytest.mark.slow
def test_resolve_failures(store_dir: Path, three: list[Snapshot]) -> None:
    with pytest.raises(StoreNotFound, match="no snapshot at or before"):
        analysis.resolve(store_dir, "2026-11-26T13:00:00Z")
    with pytest.raises(StoreNotFound, match="no snapshot named 'nope'"):
        analysis.resolve(store_dir, "nope")
    with pytest.raises(StoreNotFound, match="neither a file nor a snapshot"):
        analysis.load("nope", store_dir)


@pytest.mark.slow
def test_ambiguous_id_prefix(store_dir: Path) -> None:
    # GIVEN two snapshots whose ids share their first 4 hex digits (found by trying names)
    text = public("01")
    seen: dict[str, Snapshot] = {}
    for i in range(5000):
        s = snap(text, name=f"n{i}", host="vm")
        if (other := seen.get(s.meta.snapshot_id[:4])) is not None:
            break
        seen[s.meta.snapshot_id[:4]] = s
    else:
        pytest.fail("no shared 4-digit prefix in 5000 ids")
    writing.write(store_dir, other)
    writing.write(store_dir, s)
    prefix = s.meta.snapshot_id[:4]

    # WHEN resolved by the shared prefix, THEN it is ambiguous; a longer unique one works
    with pytest.raises(UsageError, match="ambiguous"):
        analysis.resolve(store_dir, prefix)
    assert analysis.resolve(store_dir, s.meta.snapshot_id).name == s.meta.name


def test_grouping_parse() -> None:
    assert Grouping.parse("dir:3") == Grouping("dir", 3)
    assert Grouping.parse("module") == Grouping("module", 2)
    for bad in ("dir:x", "tag:2", "nope", "dir:-1", "dir:", "dir:0"):
        with pytest.raises(UsageError):
            Grouping.parse(bad)
