"""The pure parts of the ioctl source: ABI numbers and layouts, filter mapping, rows, names.

The ioctl itself is exercised on the real 7.3 kernel by tests/vm/; these run on the host.
Expectations are computed by hand from include/uapi/linux/alloc_tag.h and asm/ioctl.h.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from allocsnap import filters, model
from allocsnap.errors import InputTooLarge
from allocsnap.kernel import capture, ioctl, ioctl_abi, parse
from allocsnap.model import MAX_DUMP_BYTES, SAMPLE_SCHEMA, Filter, SnapshotMeta, tag_id
from tests.conftest import real

SNAPSHOT_META = SnapshotMeta("0", datetime(2026, 12, 6, tzinfo=UTC), "h", "ioctl", "ioctl")

# -- ABI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("machine", ["x86_64", "i686", "aarch64", "armv7l", "riscv64", "s390x"])
def test_generic_architectures_give_the_uapi_numbers(machine: str) -> None:
    # GIVEN dir<<30 | size<<16 | 0xA6<<8 | nr, _IOR=2, _IOWR=3 (asm-generic/ioctl.h)
    # WHEN the numbers are computed / THEN they are the ones the 7.3 kernel answers to
    assert ioctl_abi.numbers(machine) == (0x8008A600, 0xC1D0A601, 0x80E0A602)


@pytest.mark.parametrize("machine", ["ppc64le", "ppc", "mips64", "sparc64", "alpha"])
def test_three_direction_bit_architectures(machine: str) -> None:
    # GIVEN dir<<29 with _IOC_READ=2, _IOC_WRITE=4 and 13 size bits
    # THEN _IOR is 0x40000000 | size<<16 and _IOWR is 0xC0000000 | size<<16
    assert ioctl_abi.numbers(machine) == (0x4008A600, 0xC1D0A601, 0x40E0A602)


def test_parisc_swaps_read_and_write() -> None:
    # GIVEN parisc's _IOC_READ=1, _IOC_WRITE=2 at bit 30 / THEN _IOR is 1<<30
    assert ioctl_abi.numbers("parisc64") == (0x4008A600, 0xC1D0A601, 0x40E0A602)


def test_sizes_do_not_fit_three_direction_bits_beyond_8k() -> None:
    with pytest.raises(ValueError, match="13 bits"):
        ioctl_abi.ioc(ioctl_abi.THREE_DIR_BITS, 2, 0xA6, 0, 1 << 13)


def test_struct_sizes_and_offsets_match_the_c_layout() -> None:
    # allocinfo_content_id 8, allocinfo_tag_data 224, allocinfo_filter 232, allocinfo_get_at 464
    assert (ioctl_abi.CONTENT_ID.size, ioctl_abi.TAG_DATA.size) == (8, 224)
    assert (ioctl_abi.FILTER.size, ioctl_abi.GET_AT.size) == (232, 464)
    assert ioctl_abi.GET_AT_DATA_OFFSET == 240  # pos 8 + filter 232


def _le(value: int) -> bytes:
    return (value % 2**64).to_bytes(8, sys.byteorder)


def test_record_bytes_are_signed_and_strings_nul_split() -> None:
    # GIVEN a record as the kernel writes it: -4096 bytes arrive as 2^64 - 4096
    raw = (
        b"zram".ljust(64, b"\0")
        + b"zram_add".ljust(64, b"\0")
        + b"drivers/block/zram/zram_drv.c\0junk".ljust(64, b"\0")
        + _le(2364)
        + _le(-4096)
        + _le(2**64 - 1)
        + b"\0"
        + b"\0" * 7
    )
    # WHEN decoded
    record = ioctl_abi.unpack_record(raw)
    # THEN
    assert record == ioctl_abi.Record(
        "zram", "zram_add", "drivers/block/zram/zram_drv.c", 2364, -4096, 2**64 - 1, False
    )


def test_built_in_records_have_no_module() -> None:
    raw = bytes(64) + b"f".ljust(64, b"\0") + b"a.c".ljust(64, b"\0") + _le(1) * 3 + b"\1" * 8
    assert ioctl_abi.unpack_record(raw).module is None


def test_filter_packs_at_the_c_offsets() -> None:
    # GIVEN mask 0x15 (module, file, inaccurate)
    kf = ioctl_abi.KernelFilter(
        mask=0x15, modname="ext4", filename="mm/slub.c", min_size=7, inaccurate=1
    )
    packed = kf.pack()
    # THEN mask at 0, modname at 8, function at 72, filename at 136, lineno 200, min 208, max 216,
    # inaccurate 224
    assert packed[0:8] == _le(0x15)
    assert packed[8:72] == b"ext4".ljust(64, b"\0")
    assert packed[72:136] == bytes(64)
    assert packed[136:200] == b"mm/slub.c".ljust(64, b"\0")
    assert packed[200:232] == _le(0) + _le(7) + _le(0) + _le(1)


# -- filter mapping ------------------------------------------------------------------------------

LONG = "drivers/net/ethernet/mellanox/mlx5/core/steering/hws/action_ste_pool.c"  # 69 characters


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        (Filter(), ioctl_abi.KernelFilter()),
        (Filter(file="mm/memory.c"), ioctl_abi.KernelFilter(mask=0x04, filename="mm/memory.c")),
        (Filter(file="mm/*.c"), ioctl_abi.KernelFilter()),
        (Filter(file="mm/memory.[ch]"), ioctl_abi.KernelFilter()),
        (Filter(function="dup_mm"), ioctl_abi.KernelFilter(mask=0x02, function="dup_mm")),
        (Filter(function="dup_?m"), ioctl_abi.KernelFilter()),
        (Filter(module="zram"), ioctl_abi.KernelFilter(mask=0x01, modname="zram")),
        (Filter(module="built-in"), ioctl_abi.KernelFilter(mask=0x01, modname="")),
        (Filter(module=""), ioctl_abi.KernelFilter()),  # text: matches nothing; kernel: built-ins
        (Filter(line=1826), ioctl_abi.KernelFilter(mask=0x08, lineno=1826)),
        (Filter(min_size=1 << 20), ioctl_abi.KernelFilter(mask=0x20, min_size=1 << 20)),
        (Filter(min_size=-4096), ioctl_abi.KernelFilter()),
        (Filter(max_size=4096), ioctl_abi.KernelFilter()),
        (Filter(accurate=False), ioctl_abi.KernelFilter(mask=0x10, inaccurate=1)),
        (Filter(accurate=True), ioctl_abi.KernelFilter(mask=0x10, inaccurate=0)),
        (Filter(nonzero=True), ioctl_abi.KernelFilter()),
        (
            Filter(module="ext4", file="fs/ext4/*", line=5, accurate=False),
            ioctl_abi.KernelFilter(mask=0x19, modname="ext4", lineno=5, inaccurate=1),
        ),
    ],
)
def test_kernel_filter_takes_what_the_kernel_does_exactly(
    keep: Filter, expected: ioctl_abi.KernelFilter
) -> None:
    assert ioctl_abi.kernel_filter(keep) == expected


def test_long_literal_names_are_sent_as_their_last_63_characters() -> None:
    packed = ioctl_abi.kernel_filter(Filter(file=LONG)).pack()
    assert packed[136:200] == LONG[-63:].encode() + b"\0"


# A small table with what the kernel's filters have to get right: negative bytes (§8), a module,
# duplicate keys, an inaccurate row, a name longer than 63 characters.
TEXT = f"""allocinfo - version: 2.0
#     <size>  <calls> <tag info>
        4096        1 mm/memory.c:100 func:do_a
       -4096 18446744073709551615 mm/filemap.c:3787 func:do_read_cache_folio
     1048576      256 mm/memory.c:200 func:do_b accurate:no
           0        0 include/x.h:9 func:inl
        8192        2 include/x.h:9 func:inl
       12288        3 drivers/block/zram/zram_drv.c:2364 [zram] func:zram_add
         512        1 {LONG}:77 func:pool_alloc
"""


def _kernel_walk(
    rows: list[ioctl_abi.Record], kf: ioctl_abi.KernelFilter
) -> list[ioctl_abi.Record]:
    """Model of the kernel's matching (v8 patches): 63-char suffixes, u64 size bounds."""

    def match(r: ioctl_abi.Record) -> bool:
        m = kf.mask
        names = ((0x01, r.module or "", kf.modname), (0x02, r.function, kf.function))
        for bit, have, want in (*names, (0x04, r.file, kf.filename)):
            if m & bit and have[-63:] != want[-63:]:
                return False
        if m & 0x08 and r.line != kf.lineno:
            return False
        if m & 0x10 and (not r.accurate) != bool(kf.inaccurate):
            return False
        if m & 0x20 and r.bytes % 2**64 < kf.min_size:
            return False
        return not (m & 0x40 and r.bytes % 2**64 > kf.max_size)

    return [r for r in rows if match(r)]


def _records(text: str) -> list[ioctl_abi.Record]:
    t = parse.parse(text).samples.to_pylist()
    return [
        ioctl_abi.Record(
            r["module"], r["function"], r["file"], r["line"], r["bytes"], r["calls"], r["accurate"]
        )
        for r in t
    ]


@pytest.mark.parametrize(
    "keep",
    [
        Filter(),
        Filter(file="mm/memory.c"),
        Filter(file="mm/*"),
        Filter(file=LONG),
        Filter(file=LONG[-63:]),  # the kernel also matches the longer name: applied afterwards
        Filter(file=LONG[-62:]),  # shorter than the kernel's suffix: its match is exact
        Filter(file="drivers/*"),
        Filter(function="inl"),
        Filter(module="zram"),
        Filter(module="built-in"),
        Filter(module="z*"),
        Filter(line=9),
        Filter(min_size=4096),
        Filter(min_size=-4096),
        Filter(max_size=4096),
        Filter(min_size=1, max_size=1 << 30),
        Filter(accurate=False),
        Filter(accurate=True, nonzero=True),
    ],
)
def test_kernel_then_userspace_equals_the_text_path(keep: Filter) -> None:
    # GIVEN the text path's rows for the filter
    text_rows = filters.apply(parse.parse(TEXT).samples, keep)
    # WHEN the kernel (modelled) filters what it is given and the rest runs afterwards
    walked = _kernel_walk(_records(TEXT), ioctl_abi.kernel_filter(keep))
    ioctl_rows = filters.apply(ioctl.to_table(walked), keep)
    # THEN the same tags, names and values come out
    columns = ["tag_id", "file", "line", "module", "function", "bytes", "calls", "accurate"]
    assert ioctl_rows.select(columns).to_pylist() == text_rows.select(columns).to_pylist()
    # AND where the kernel's filter is exact, its rows are those rows without a second pass
    if ioctl_abi.applies_exactly(keep):
        assert ioctl.to_table(walked).equals(ioctl_rows)


@pytest.mark.parametrize(
    ("keep", "exact"),
    [
        (Filter(), True),
        (Filter(file="mm/slub.c"), True),
        (Filter(module="zram", function="zram_add", line=2364, accurate=True), True),
        (Filter(module="built-in"), True),
        (Filter(file=LONG[-62:]), True),
        (Filter(file=LONG[-63:]), False),  # also matches names ending with it
        (Filter(function="é"), False),  # the kernel compares bytes: kept to ASCII
        (Filter(file="mm/*.c"), False),
        (Filter(module=""), False),  # not sent (the kernel would take it for built-in)
        (Filter(line=-1), False),
        (Filter(line=1 << 32), False),
        (Filter(file="mm/slub.c", min_size=0), False),  # negative counts pass the kernel
        (Filter(max_size=4096), False),
        (Filter(nonzero=True), False),
    ],
)
def test_the_kernel_filter_is_exact_only_where_nothing_is_left(keep: Filter, exact: bool) -> None:
    assert ioctl_abi.applies_exactly(keep) is exact


def _table_per_record(records: list[ioctl_abi.Record]) -> pa.Table:
    """The rows as they were built before the columns were kept: one dict entry per record."""
    rows = []
    seen: dict[tuple[str | None, str, int, str], int] = {}
    for ordinal, r in enumerate(records):
        key = (r.module, r.file, r.line, r.function)
        seen[key] = seen.get(key, -1) + 1
        rows.append(
            {
                "ordinal": ordinal,
                "tag_id": tag_id(*key),
                "occurrence": seen[key],
                "file": r.file,
                "line": r.line,
                "module": r.module,
                "function": r.function,
                "bytes": r.bytes,
                "calls": r.calls,
                "accurate": r.accurate,
                "extras": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)


def test_tables_equal_the_per_record_build_across_repeated_walks() -> None:
    # GIVEN the walk of a real 7.3 table, and of the small one with duplicates and negatives
    whole = _records(real("7.3", 2, 0).read_text())
    small = _records(TEXT)
    moved = [r._replace(bytes=r.bytes + 4096, calls=(r.calls + 1) % 2**64) for r in small]
    flipped = [r._replace(accurate=not r.accurate) for r in moved]
    # WHEN tables are built one after the other, as repeated snapshots do: the same sites with
    # other values, other sites, and the first ones again
    for records in (whole, whole, small, moved, flipped, small, [], small[2:], whole):
        # THEN each equals the table built record by record
        assert ioctl.to_table(records).equals(_table_per_record(records))


def test_the_ids_remembered_across_walks_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN room for 8 remembered ids, and walks of a real 7.3 table and of the small one
    monkeypatch.setattr(model, "TAG_IDS_KEPT", 8)
    model.tag_ids.clear()  # what earlier tests left
    whole, small = _records(real("7.3", 2, 0).read_text()), _records(TEXT)
    for records in (whole, small, whole):
        # WHEN each is turned into rows, as a recorder running for months does
        table = ioctl.to_table(records)
        # THEN no more than 8 ids are kept, and every id is still the call site's
        assert len(model.tag_ids) <= 8
        assert table["tag_id"].to_pylist() == [
            tag_id(r.module, r.file, r.line, r.function) for r in records
        ]


def test_the_text_read_to_complete_names_is_bounded(tmp_path: Path) -> None:
    # GIVEN a descriptor on a file longer than any allocinfo text (a dump's bound), lines short
    big = tmp_path / "allocinfo"
    line = b"4096 1 mm/a.c:1 func:f\n"
    big.write_bytes(line * (MAX_DUMP_BYTES // len(line) + 1))
    fd = os.open(big, os.O_RDONLY)
    try:
        # WHEN read for the names at the 63-character limit / THEN refused, not read on
        with pytest.raises(InputTooLarge, match="MiB"):
            ioctl._read_text(fd)
    finally:
        os.close(fd)


def test_record_totals_wrap_as_the_tables() -> None:
    # GIVEN records with negative bytes, calls near 2^64 and sums past 2^63
    huge = ioctl_abi.Record(None, "f", "a.c", 1, 2**63 - 1, 2**64 - 1, True)
    for records in (_records(TEXT), [huge, huge, huge], [huge._replace(bytes=-(2**63))] * 2, []):
        # WHEN summed in Python / THEN as capture.with_totals sums the table's columns
        meta = capture.with_totals(SNAPSHOT_META, ioctl.to_table(records))
        assert ioctl.record_totals(records) == (meta.total_bytes, meta.total_calls)


def test_rows_get_the_text_paths_ids_and_occurrences() -> None:
    # GIVEN the walk of a whole table / WHEN turned into rows
    table = ioctl.to_table(_records(TEXT))
    # THEN ordinal is the position, occurrence counts duplicates, ids are model.tag_id's
    assert table["ordinal"].to_pylist() == list(range(7))
    assert table["occurrence"].to_pylist() == [0, 0, 0, 0, 1, 0, 0]
    assert table["tag_id"][5].as_py() == tag_id(
        "zram", "drivers/block/zram/zram_drv.c", 2364, "zram_add"
    )
    assert table["extras"].null_count == 7
    assert table.schema == parse.parse(TEXT).samples.schema


# -- 63-character names --------------------------------------------------------------------------


def _truncated() -> list[ioctl_abi.Record]:
    return [
        ioctl_abi.Record(None, "do_a", "mm/memory.c", 100, 4096, 1, True),
        ioctl_abi.Record(None, "pool_alloc", LONG[-63:], 77, 512, 1, True),
    ]


def test_names_at_the_limit_are_completed_from_the_text() -> None:
    # WHEN the walk's suffix is reconciled with the text read in the same bracket
    records, notes = ioctl.reconcile(_truncated(), TEXT)
    # THEN the text's full name replaces it, so the row gets the text path's tag id
    assert [r.file for r in records] == ["mm/memory.c", LONG]
    assert notes == []
    row = ioctl.to_table(records).to_pylist()[1]
    assert row["tag_id"] == tag_id(None, LONG, 77, "pool_alloc")


def test_names_at_the_limit_without_text_are_kept_and_noted() -> None:
    records, notes = ioctl.reconcile(_truncated(), None)
    assert records == _truncated()
    assert notes == [
        "1 row(s) have a name at the ioctl's 63-character limit; kept as possibly truncated "
        "suffixes"
    ]


def test_an_ambiguous_suffix_is_kept_and_noted() -> None:
    # GIVEN two full names with the same last 63 characters at the same line and function
    other = "x" + LONG
    text = TEXT + f"         512        1 {other}:77 func:pool_alloc \n"
    # WHEN reconciled / THEN neither is guessed
    records, notes = ioctl.reconcile(_truncated(), text)
    assert records[1].file == LONG[-63:]
    assert notes == [
        "1 row(s) with a name at the ioctl's 63-character limit did not match exactly one text "
        "row; kept as possibly truncated suffixes"
    ]


def test_short_names_need_no_text() -> None:
    records = _truncated()[:1]
    assert ioctl.reconcile(records, None) == (records, [])
    assert not ioctl.may_be_truncated(records[0])
    assert ioctl.may_be_truncated(_truncated()[1])
    # AND a walk needs the text when one of its records has such a name, file or function
    long_function = records[0]._replace(function="f" * 63)
    assert not ioctl.any_truncated(records) and not ioctl.any_truncated([])
    assert ioctl.any_truncated(_truncated()) and ioctl.any_truncated([long_function])


def test_empty_walk_gives_an_empty_table() -> None:
    table = ioctl.to_table([])
    assert table.num_rows == 0
    assert isinstance(table, pa.Table)
    assert table.schema == SAMPLE_SCHEMA
    # AND a walk between two empty ones still gives its own rows, and the next empty one none
    records = _records(TEXT)
    assert ioctl.to_table(records).num_rows == len(records) > 0
    assert ioctl.to_table([]).num_rows == 0
