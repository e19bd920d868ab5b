"""import: each dump's time (--at, --every, its name, its mtime), folders, natural order, and
never two snapshots of one host at one instant (issue 15, case 1)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from allocsnap import analysis, importer
from allocsnap.cli import app
from allocsnap.errors import ExitCode, UsageError
from allocsnap.kernel import capture, parse, source
from allocsnap.model import Snapshot
from allocsnap.present import page_data
from allocsnap.store import writing
from tests import oracle
from tests.conftest import real

runner = CliRunner()
T0 = datetime(2026, 11, 26, 14, 50, tzinfo=UTC)
LATER = timedelta(minutes=5)  # still in T0's partition (one per host and day)
CLONE_MTIME = 1_765_000_000  # one second for every file, as a git clone or cp -r gives


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def copies(folder: Path, names: dict[str, Path]) -> list[Path]:
    """Copy captures under new names, all with one mtime; return them in the order given."""
    folder.mkdir(exist_ok=True)
    out = []
    for name, capture_path in names.items():
        shutil.copyfile(capture_path, folder / name)
        os.utime(folder / name, (CLONE_MTIME, CLONE_MTIME))
        out.append(folder / name)
    return out


def stored(store: Path) -> dict[str, datetime]:
    """Return each stored snapshot's origin file name and time."""
    return {Path(m.origin or "").name: m.taken_at for m in analysis.snapshots(store)}


def test_dumps_with_one_mtime_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    # GIVEN the five boot-1 dumps as a fresh clone leaves them: one mtime for all
    dumps = copies(tmp_path / "d", {f"snap-{i}.txt": real("6.12", 1, i) for i in range(5)})
    store = tmp_path / "store"

    # WHEN imported the README's old way
    result = invoke("import", *map(str, dumps), "--host", "vm", "--store", str(store))

    # THEN exit 2, the message names them and says how to give times, and nothing is written
    assert result.exit_code == ExitCode.USAGE, result.stdout
    assert "snap-0.txt" in result.stderr and "and 2 more" in result.stderr
    assert "--at T --every 60s" in result.stderr
    assert result.stdout == ""
    assert not (store / "snapshots").exists()


def test_at_every_spaces_shell_glob_order_naturally(tmp_path: Path) -> None:
    # GIVEN snap-1, snap-2, snap-10 in the order a shell sorts snap-*.txt
    names = {"snap-1.txt": real("6.12", 1, 0), "snap-2.txt": real("6.12", 1, 1)}
    names["snap-10.txt"] = real("6.12", 1, 2)
    dumps = copies(tmp_path / "d", names)
    shell_order = sorted(map(str, dumps))
    assert [Path(p).name for p in shell_order] == ["snap-1.txt", "snap-10.txt", "snap-2.txt"]
    store = tmp_path / "store"

    # WHEN imported with --at and --every
    result = invoke(
        "import", *shell_order, "--at", "2026-11-26T14:50:00Z", "--every", "60s",
        "--host", "vm", "--store", str(store),
    )  # fmt: skip

    # THEN they are a minute apart in natural order, and a note says so
    assert result.exit_code == 0, result.stderr
    assert "natural order" in result.stderr
    assert stored(store) == {
        "snap-1.txt": T0,
        "snap-2.txt": T0 + timedelta(minutes=1),
        "snap-10.txt": T0 + timedelta(minutes=2),
    }


def test_times_come_from_file_names(tmp_path: Path) -> None:
    # GIVEN dumps named the common ways, all with one mtime
    dumps = copies(
        tmp_path / "d",
        {
            "allocinfo-2026-11-26T14:52:35Z.txt": real("6.12", 1, 0),
            "host7_20261126_145300.txt": real("6.12", 1, 1),
            "2026-11-26_14-54-05.txt": real("6.12", 1, 2),
            "snap-1764168755.txt": real("6.12", 1, 3),  # Unix seconds
        },
    )
    store = tmp_path / "store"

    # WHEN imported without --at
    result = invoke("import", *map(str, dumps), "--host", "vm", "--store", str(store))

    # THEN each has the time its name gives (1764168755 s is 2025-11-26 14:52:35 UTC)
    assert result.exit_code == 0, result.stderr
    assert "(from its file name)" in result.stderr
    assert stored(store) == {
        "allocinfo-2026-11-26T14:52:35Z.txt": datetime(2026, 11, 26, 14, 52, 35, tzinfo=UTC),
        "host7_20261126_145300.txt": datetime(2026, 11, 26, 14, 53, 0, tzinfo=UTC),
        "2026-11-26_14-54-05.txt": datetime(2026, 11, 26, 14, 54, 5, tzinfo=UTC),
        "snap-1764168755.txt": datetime(2025, 11, 26, 14, 52, 35, tzinfo=UTC),
    }


def test_a_folder_is_imported_in_natural_order_leaving_out_what_is_not_a_dump(
    tmp_path: Path,
) -> None:
    # GIVEN the boot-1 folder as shipped: five dumps and meta.json
    folder = real("6.12", 1, 0).parent
    store = tmp_path / "store"

    # WHEN the folder is imported
    result = invoke(
        "import", str(folder), "--at", "2026-11-26T14:50Z", "--every", "1m",
        "--host", "vm", "--store", str(store),
    )  # fmt: skip

    # THEN every dump is there, a minute apart in order, and meta.json is named as left out
    assert result.exit_code == 0, result.stderr
    assert "left out meta.json" in result.stderr
    assert stored(store) == {f"snap-{i}.txt": T0 + timedelta(minutes=i) for i in range(5)}


def test_a_taken_instant_is_refused_and_the_same_dump_reimports(tmp_path: Path) -> None:
    # GIVEN a store holding snap-1 at T0
    store = tmp_path / "store"
    first = invoke("import", str(real("6.12", 1, 1)), "--at", "2026-11-26T14:50Z",
                   "--host", "vm", "--store", str(store))  # fmt: skip
    assert first.exit_code == 0, first.stderr
    [sid] = first.stdout.split()

    # WHEN another dump is imported at that instant for that host
    other = invoke("import", str(real("6.12", 1, 0)), "--at", "2026-11-26T14:50Z",
                   "--host", "vm", "--store", str(store))  # fmt: skip

    # THEN exit 2 naming the snapshot there, and the store is unchanged
    assert other.exit_code == ExitCode.USAGE
    assert sid in other.stderr and "--at" in other.stderr
    assert [m.snapshot_id for m in analysis.snapshots(store)] == [sid]

    # AND the same dump imported again the same way is the same snapshot, once
    again = invoke("import", str(real("6.12", 1, 1)), "--at", "2026-11-26T14:50Z",
                   "--host", "vm", "--store", str(store))  # fmt: skip
    assert again.exit_code == 0 and again.stdout.split() == [sid]
    assert [m.snapshot_id for m in analysis.snapshots(store)] == [sid]

    # AND another host may have a snapshot at that instant
    elsewhere = invoke("import", str(real("6.12", 1, 0)), "--at", "2026-11-26T14:50Z",
                       "--host", "db", "--store", str(store))  # fmt: skip
    assert elsewhere.exit_code == 0, elsewhere.stderr


def test_writer_refuses_a_taken_instant_under_its_lock(store_dir: Path) -> None:
    # GIVEN a store with one snapshot of host vm at T0
    def at_t0(path: Path) -> Snapshot:
        raw = source.read_dump(str(path))
        return capture.snapshot(raw, host="vm", at=T0)

    writing.write(store_dir, at_t0(real("6.12", 1, 1)))

    # WHEN another snapshot of vm at T0 is written exclusively, THEN it is refused
    with pytest.raises(UsageError, match="another time"):
        writing.write(store_dir, at_t0(real("6.12", 1, 2)), exclusive=True)
    # AND the same one is accepted (a re-import)
    writing.write(store_dir, at_t0(real("6.12", 1, 1)), exclusive=True)
    assert len(analysis.snapshots(store_dir)) == 1


def test_readme_store_gives_a_meaningful_diff_first_latest(tmp_path: Path) -> None:
    # GIVEN the README's "Try it" import on dumps with one mtime
    dumps = copies(tmp_path / "d", {f"snap-{i}.txt": real("6.12", 1, i) for i in range(5)})
    store = tmp_path / "demo"
    imported = invoke("import", *map(str, dumps), "--at", "2026-11-26T14:50Z", "--every", "60s",
                      "--host", "vm", "--store", str(store))  # fmt: skip
    assert imported.exit_code == 0, imported.stderr

    # WHEN diffing first and latest
    result = invoke("diff", "first", "latest", "--store", str(store), "--format", "json")

    # THEN it compares snap-0 with snap-4, whose totals are the sums of their rows
    assert result.exit_code == 0, result.stderr
    totals = json.loads(result.stdout)["totals"]
    assert totals["bytes_before"] == sum(r.bytes for r in oracle.rows(real("6.12", 1, 0)))
    assert totals["bytes_after"] == sum(r.bytes for r in oracle.rows(real("6.12", 1, 4)))
    assert totals["bytes_before"] != totals["bytes_after"]


# -- epochs of imported dumps (case 4) -------------------------------------------------------


def test_a_reboot_between_dumps_is_inferred_and_splits_epochs(tmp_path: Path) -> None:
    # GIVEN two dumps of boot-1 and then two of boot-3 (another boot of the same VM)
    dumps = [real("6.12", 1, 3), real("6.12", 1, 4), real("6.12", 3, 1), real("6.12", 3, 2)]
    store = tmp_path / "store"

    # WHEN imported as one host an hour apart, without --boot
    result = invoke("import", *map(str, dumps), "--at", "2026-11-26T10:00Z", "--every", "1h",
                    "--host", "vm", "--store", str(store))  # fmt: skip

    # THEN a reboot is inferred before boot-3's first dump and said, and each boot is an epoch
    assert result.exit_code == 0, result.stderr
    assert f"reboot inferred before {dumps[2]}" in result.stderr
    boots = [m.boot_id for m in analysis.snapshots(store)]
    assert boots[0] == boots[1] != boots[2] == boots[3]
    assert all(b is not None and b.endswith("-inferred") for b in boots)
    epochs = analysis.epochs(store).rows["epoch"].to_pylist()
    assert len(epochs) == 2 and all(e.endswith("(inferred)") for e in epochs)


def test_no_reboot_is_inferred_within_one_boot(tmp_path: Path) -> None:
    # GIVEN boot-1's five dumps, modules loaded and unloaded among them
    store = tmp_path / "store"
    result = invoke("import", str(real("6.12", 1, 0).parent), "--at", "2026-11-26T10:00Z",
                    "--every", "1h", "--host", "vm", "--store", str(store))  # fmt: skip

    # THEN no reboot is inferred: one epoch, and its module loads and unloads are seen
    assert result.exit_code == 0, result.stderr
    assert "reboot" not in result.stderr
    assert [m.boot_id for m in analysis.snapshots(store)] == [None] * 5
    epochs = analysis.epochs(store)
    assert epochs.rows.num_rows == 1
    assert epochs.rows["module_sets"].to_pylist() == [2]  # without, then with ext4 & co.


def test_boot_and_kernel_are_recorded(tmp_path: Path) -> None:
    # GIVEN dumps whose boot and kernel the user knows
    store = tmp_path / "store"
    result = invoke("import", str(real("6.12", 1, 3)), str(real("6.12", 3, 2)),
                    "--at", "2026-11-26T10:00Z", "--every", "1h", "--host", "vm",
                    "--boot", "847023cf", "--kernel", "6.12.117-allocsnap",
                    "--store", str(store))  # fmt: skip

    # THEN both carry them, and nothing is inferred
    assert result.exit_code == 0, result.stderr
    assert "reboot" not in result.stderr
    metas = analysis.snapshots(store)
    assert [(m.boot_id, m.kernel) for m in metas] == [("847023cf", "6.12.117-allocsnap")] * 2


def test_snapshots_at_one_instant_list_naturally_and_do_not_resolve_silently(
    store_dir: Path, tmp_path: Path
) -> None:
    # GIVEN a store written before one instant per host: snap-10 and snap-2 of vm at T0
    dumps = copies(
        tmp_path / "d", {"snap-10.txt": real("6.12", 1, 2), "snap-2.txt": real("6.12", 1, 1)}
    )
    snaps = [capture.snapshot(source.read_dump(str(p)), host="vm", at=T0) for p in dumps]
    for snap in snaps:
        writing.write(store_dir, snap)  # not exclusive: as an older allocsnap wrote
    by_id = sorted(snaps, key=lambda s: s.meta.snapshot_id)
    assert [Path(str(s.meta.origin)).name for s in by_id] == ["snap-10.txt", "snap-2.txt"]

    # WHEN listed, THEN the tie is in the natural order of the names, not the ids'
    assert [Path(str(m.origin)).name for m in analysis.snapshots(store_dir)] == [
        "snap-2.txt",
        "snap-10.txt",
    ]

    # AND 'latest' names both rather than picking one
    with pytest.raises(UsageError, match="ambiguous.*both taken at"):
        analysis.resolve(store_dir, "latest")


@pytest.mark.parametrize(
    "given",
    [
        ["d/snap-1.txt", "d/snap-10.txt", "d/snap-2.txt"],  # bash under LC_COLLATE=C
        ["d/snap-10.txt", "d/snap-1.txt", "d/snap-2.txt"],  # bash under en_US.UTF-8
    ],
)
def test_a_shell_globs_order_is_made_natural(given: list[str]) -> None:
    assert importer.natural_order(given)[0] == ["d/snap-1.txt", "d/snap-2.txt", "d/snap-10.txt"]


def test_an_order_chosen_by_hand_is_kept() -> None:
    assert importer.natural_order(["d/b.txt", "d/a.txt"]) == (["d/b.txt", "d/a.txt"], None)


def test_snap_of_two_dumps_with_one_mtime_keeps_the_first(tmp_path: Path) -> None:
    # GIVEN two dumps with one mtime, taken into a store with snap --source (time: the mtime)
    one, two = copies(tmp_path / "d", {"a.txt": real("6.12", 1, 1), "b.txt": real("6.12", 1, 2)})
    store = tmp_path / "store"
    first = invoke("snap", "--source", str(one), "--host", "vm", "--store", str(store))
    assert first.exit_code == 0, first.stderr

    # WHEN the second is taken the same way, THEN it is refused and the store holds one
    second = invoke("snap", "--source", str(two), "--host", "vm", "--store", str(store))
    assert second.exit_code == ExitCode.USAGE
    assert "one snapshot per instant" in second.stderr and "import --at" in second.stderr
    assert [m.snapshot_id for m in analysis.snapshots(store)] == first.stdout.split()


def test_the_report_sees_module_events_of_imported_dumps(tmp_path: Path) -> None:
    # GIVEN boot-1 imported: ext4 & co. loaded before snap-3 and unloaded before snap-4
    store = tmp_path / "store"
    result = invoke("import", str(real("6.12", 1, 0).parent), "--at", "2026-11-26T10:00Z",
                    "--every", "1h", "--host", "vm", "--store", str(store))  # fmt: skip
    assert result.exit_code == 0, result.stderr

    # WHEN the report's data is gathered, THEN it marks the load and the unload
    data = page_data.gather(store)
    assert len([m for m in data.markers if m.kind == "modules"]) == 2


def test_a_folder_of_one_kernel_is_parsed_in_full_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN six dumps of one 7.3 kernel (two real captures, alternating) and the full parser
    # counted where the recorder's cached parser calls it
    from allocsnap.kernel import fastparse, parse

    dumps = copies(tmp_path / "d", {f"snap-{i}.txt": real("7.3", 2, i % 2) for i in range(6)})
    full: list[str] = []

    def counted(text: str | bytes, **kwargs: object) -> parse.ParsedAllocinfo:
        full.append(str(kwargs.get("source")))
        return parse.parse(text, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fastparse, "parse", counted)
    store = tmp_path / "store"

    # WHEN the folder is imported in one call
    result = invoke("import", str(tmp_path / "d"), "--at", "2026-11-26T14:50Z", "--every",
                    "10s", "--host", "vm", "--store", str(store))  # fmt: skip

    # THEN the first dump alone was parsed in full: the others share its tags
    assert result.exit_code == 0, result.stderr
    assert full == [str(dumps[0])]
    # AND every snapshot holds what the full parser reads in its dump
    for meta in analysis.snapshots(store):
        expected = parse.parse(Path(meta.origin or "").read_bytes()).samples
        assert analysis.load(meta.snapshot_id, store).samples.equals(expected)


def test_the_instants_of_a_partition_follow_files_added_and_replaced(store_dir: Path) -> None:
    # GIVEN a store with a snapshot of vm at T0, and the instants index that found it
    def at(path: Path, when: datetime) -> Snapshot:
        return capture.snapshot(source.read_dump(str(path)), host="vm", at=when)

    first = writing.write(store_dir, at(real("6.12", 1, 1), T0))
    instants = writing.Instants(store_dir)
    found = instants.holder("vm", T0)
    assert found is not None and found["snapshot_id"] == first.stem
    later = T0 + timedelta(minutes=1)
    assert instants.holder("vm", later) is None

    # WHEN another writer adds a snapshot at a later instant
    second = writing.write(store_dir, at(real("6.12", 1, 2), later))
    # THEN the index sees it
    found = instants.holder("vm", later)
    assert found is not None and found["snapshot_id"] == second.stem

    # WHEN the first file is replaced by the second's rows (a file rewritten under its name)
    os.replace(second, first)
    # THEN the index reads it again: nothing is at T0 any more
    assert instants.holder("vm", T0) is None


def test_a_writer_checks_each_instant_without_going_through_the_partition_again(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an exclusive writer (import's), and every snapshots file it looks into counted
    looked: list[str] = []
    rows_of = writing.Instants._rows

    def counted(self: writing.Instants, entry: os.DirEntry[str]) -> list[dict[str, object]]:
        looked.append(entry.name)
        return rows_of(self, entry)

    monkeypatch.setattr(writing.Instants, "_rows", counted)
    snap = capture.snapshot(source.read_dump(str(real("6.12", 1, 1))), host="vm", at=T0)
    writer = writing.Writer(store_dir, exclusive=True)

    # WHEN it writes 30 snapshots into one partition, checking each one's instant first
    for i in range(30):
        at = T0 + timedelta(seconds=10 * i)
        writer.add(replace(snap, meta=snap.meta._replace(taken_at=at, snapshot_id=f"{i:012x}")))

    # THEN it looked into no file: it wrote each one itself (going through the partition at
    # each write looked into 0 + 1 + ... + 29 = 435 files, quadratic in a folder's dumps)
    assert looked == []
    assert len(analysis.snapshots(store_dir)) == 30


def test_the_instants_of_a_partition_do_not_follow_a_planted_link(
    store_dir: Path, tmp_path: Path
) -> None:
    # GIVEN a store whose partition holds a link, named like a snapshots file, to a snapshots
    # file outside the store that says vm has a snapshot at T0
    elsewhere = tmp_path / "elsewhere"
    outside = writing.write(
        elsewhere, capture.snapshot(source.read_dump(str(real("6.12", 1, 1))), host="vm", at=T0)
    )
    ours = writing.write(
        store_dir,
        capture.snapshot(source.read_dump(str(real("6.12", 1, 2))), host="vm", at=T0 + LATER),
    )
    (ours.parent / "planted.parquet").symlink_to(outside)

    # WHEN the instants of the partition are asked about
    instants = writing.Instants(store_dir)

    # THEN the link is not read: T0 is free, and the store's own snapshot is found
    assert instants.holder("vm", T0) is None
    found = instants.holder("vm", T0 + LATER)
    assert found is not None and found["snapshot_id"] == ours.stem


def test_a_writer_sees_an_instant_another_writer_took_after_its_first_write(
    store_dir: Path,
) -> None:
    # GIVEN an exclusive writer that wrote vm's snapshot at T0
    def at(path: Path, when: datetime) -> Snapshot:
        return capture.snapshot(source.read_dump(str(path)), host="vm", at=when)

    ours = writing.Writer(store_dir, exclusive=True)
    ours.add(at(real("6.12", 1, 1), T0))
    later = T0 + timedelta(minutes=1)
    # AND another writer that then took T0 + 1 min
    writing.write(store_dir, at(real("6.12", 1, 2), later), exclusive=True)

    # WHEN the first writer adds another dump at T0 + 1 min, THEN it is refused
    with pytest.raises(UsageError, match="another time"):
        ours.add(at(real("6.12", 1, 3), later))


@pytest.mark.parametrize(("budget", "reads_per_dump"), [(importer._Kept.budget, 1), (0, 2)])
def test_a_folder_within_one_boot_is_read_once_while_it_fits_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int, reads_per_dump: int
) -> None:
    # GIVEN four dumps of one boot, every read of a dump counted, and a memory budget for the
    # parsed snapshots: the default one, or none (each must then be read again to be written)
    dumps = copies(tmp_path / "d", {f"snap-{i}.txt": real("7.3", 2, i % 2) for i in range(4)})
    reads: list[str] = []
    read_dump = source.read_dump

    def counted(spec: str) -> source.RawRead:
        reads.append(Path(spec).name)
        return read_dump(spec)

    monkeypatch.setattr(source, "read_dump", counted)
    monkeypatch.setattr(importer._Kept, "budget", budget)

    # WHEN the folder is imported in one call
    result = invoke("import", str(tmp_path / "d"), "--at", "2026-11-26T14:50Z", "--every",
                    "10s", "--host", "vm", "--store", str(tmp_path / "store"))  # fmt: skip

    # THEN each dump was read once to infer boots, check its instant and be written, or once
    # more to be written when it did not fit
    assert result.exit_code == 0, result.stderr
    assert sorted(reads) == sorted([f"snap-{i}.txt" for i in range(4)] * reads_per_dump)
    # AND either way each snapshot holds its dump's rows, at its time, with its origin
    metas = analysis.snapshots(tmp_path / "store")
    assert [Path(m.origin or "").name for m in metas] == [d.name for d in dumps]
    assert [m.taken_at for m in metas] == [T0 + timedelta(seconds=10 * i) for i in range(4)]
    for meta, dump in zip(metas, dumps, strict=True):
        expected = parse.parse(dump.read_bytes()).samples
        assert analysis.load(meta.snapshot_id, tmp_path / "store").samples.equals(expected)


def test_a_reboot_is_inferred_from_counts_summed_by_call_site() -> None:
    # GIVEN the last dump of 6.12's boot 1 and the first of its boot 3, and each one's calls
    # summed per call site (file, line, module, function) straight from the parser's rows
    def by_site(path: Path) -> dict[tuple[object, ...], int]:
        summed: dict[tuple[object, ...], int] = {}
        for row in parse.parse(path.read_bytes()).samples.to_pylist():
            site = (row["file"], row["line"], row["module"], row["function"])
            calls = row["calls"] - (1 << 64) if row["calls"] >= 1 << 63 else row["calls"]
            summed[site] = summed.get(site, 0) + calls
        return summed

    old, new = real("6.12", 1, 4), real("6.12", 3, 0)
    before, after = by_site(old), by_site(new)
    shared = [site for site, calls in before.items() if calls > 0 and site in after]
    fell = [site for site in shared if after[site] < before[site]]

    # WHEN import compares them, and compares the boot-1 dumps with each other
    def snap(path: Path) -> Snapshot:
        return capture.snapshot(source.read_dump(str(path)), host="vm")

    across = importer.reboot_between(snap(old), snap(new))
    within = [importer.reboot_between(snap(real("6.12", 1, i)), snap(real("6.12", 1, i + 1)))
              for i in range(4)]  # fmt: skip

    # THEN across the reboot it counts the sites that fell among those it shares, and says
    # no reboot within the boot
    assert len(fell) >= importer.REBOOT_SHARE * len(shared)
    assert across == (len(fell), len(shared))
    assert within == [None] * 4


def test_the_check_before_writing_lists_a_partition_once(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a store with two snapshots of vm, and every listing of a folder counted
    def at(path: Path, when: datetime) -> Snapshot:
        return capture.snapshot(source.read_dump(str(path)), host="vm", at=when)

    later = T0 + timedelta(minutes=1)
    first = writing.write(store_dir, at(real("6.12", 1, 1), T0))
    second = writing.write(store_dir, at(real("6.12", 1, 2), later))
    listed: list[str] = []
    scandir = os.scandir

    def counted(path: Path) -> object:
        listed.append(str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counted)

    # WHEN the instants of that partition are asked about several times, listing once
    instants = writing.Instants(store_dir, once=True)
    answers = [instants.holder("vm", when) for when in (T0, later, T0 + timedelta(minutes=2))]

    # THEN each instant has its holder, and the partition was listed once
    assert [a and a["snapshot_id"] for a in answers] == [first.stem, second.stem, None]
    assert len(listed) == 1
