"""Saved dumps read by source.read_dump: compressed streams and binary input (issue 15, case 7)."""

from __future__ import annotations

import csv
import gzip
import io
import lzma
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from allocsnap.cli import app
from allocsnap.errors import AllocsnapError, InputTooLarge
from allocsnap.kernel import source
from tests import oracle
from tests.conftest import real


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return bytes(sink.getvalue())


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.compress,
    ".xz": lzma.compress,
    ".zst": zstd,
}


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_compressed_dumps_read_as_their_text(tmp_path: Path, suffix: str) -> None:
    # GIVEN a real capture compressed the way bug reports attach them
    text = real("6.12", 1, 3).read_bytes()
    dump = tmp_path / f"snap-3.txt{suffix}"
    dump.write_bytes(COMPRESS[suffix](text))

    # WHEN read, THEN the text is the capture's, byte for byte
    assert source.read_dump(str(dump)).text == text


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_compressed_stdin_works_for_show(suffix: str) -> None:
    # GIVEN a compressed capture on stdin
    text = real("6.12", 1, 3).read_bytes()
    result = CliRunner().invoke(
        app, ["show", "-", "--top", "0", "--format", "csv"], input=COMPRESS[suffix](text)
    )

    # THEN show reads it: its total is the sum of the capture's rows
    assert result.exit_code == 0, result.stderr
    rows = csv.DictReader(io.StringIO(result.stdout))
    shown = sum(int(row["bytes"]) for row in rows)
    assert shown == sum(r.bytes for r in oracle.rows(real("6.12", 1, 3)))


def test_binary_input_is_one_short_line(tmp_path: Path) -> None:
    # GIVEN an executable and random-looking bytes given as dumps
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)

    # WHEN read, THEN one short line says what each looks like
    with pytest.raises(AllocsnapError) as elf:
        source.read_dump(sys.executable)
    assert "ELF" in str(elf.value) and len(str(elf.value)) < 200
    with pytest.raises(AllocsnapError) as data:
        source.read_dump(str(junk))
    assert str(data.value).endswith("binary data (starts with 00 01 02 03 04 05 06 07)")


def test_a_damaged_stream_says_so(tmp_path: Path) -> None:
    # GIVEN a gzip dump cut in the middle
    whole = gzip.compress(real("6.12", 1, 3).read_bytes())
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(whole[: len(whole) // 2])

    # WHEN read, THEN the error names the file and the stream
    with pytest.raises(AllocsnapError, match=r"cut\.txt\.gz: damaged gzip stream"):
        source.read_dump(str(cut))


# -- the facts read beside each snapshot --------------------------------------------------------


def test_a_module_loaded_between_reads_is_seen() -> None:
    # GIVEN /proc/modules with one module
    modules = source.PROC / "modules"
    modules.write_text("zram 45056 0 - Live 0xffffffffc0000000\n")
    assert source.loaded_modules() == ("zram",)
    # WHEN another one loads, then both unload (the file rewritten in place, as the kernel's is
    # produced afresh on each read)
    modules.write_text("zram 45056 0 - Live 0x0\nloop 40960 0 - Live 0x0\n")
    loaded = source.loaded_modules()
    modules.write_text("")
    # THEN each read lists what the file lists then
    assert loaded == ("loop", "zram")
    assert source.loaded_modules() == ()
    modules.unlink()
    assert source.loaded_modules() is None


def test_the_profiling_sysctl_is_read_afresh_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN vm.mem_profiling on
    sysctl = source.PROC / "sys/vm/mem_profiling"
    sysctl.parent.mkdir(parents=True)
    sysctl.write_text("1\n")
    assert source.mem_profiling() == 1
    # WHEN it is switched off (written in place, as sysctl writes it) / THEN the next read says so
    sysctl.write_text("0\n")
    assert source.mem_profiling() == 0
    # AND another /proc (a test's, another kernel's) is read from its own file
    other = tmp_path / "other-proc"
    (other / "sys/vm").mkdir(parents=True)
    (other / "sys/vm/mem_profiling").write_text("1\n")
    monkeypatch.setattr(source, "PROC", other)
    assert source.mem_profiling() == 1
    monkeypatch.setattr(source, "PROC", tmp_path / "no-proc")
    assert source.mem_profiling() is None


def test_the_boot_id_is_this_procs() -> None:
    # GIVEN a /proc with a boot id / THEN it is read (and kept: a process never changes boot)
    assert source.boot_id() is None
    (source.PROC / "sys/kernel/random").mkdir(parents=True)
    (source.PROC / "sys/kernel/random/boot_id").write_text("b7e2c1d4-0000\n")
    assert source.boot_id() == source.boot_id() == "b7e2c1d4-0000"


@pytest.mark.parametrize(
    ("relative", "read"),
    [("modules", source.loaded_modules), ("sys/kernel/random/boot_id", source.boot_id)],
)
def test_a_fact_file_past_its_bound_is_refused(relative: str, read: Callable[[], object]) -> None:
    # GIVEN a /proc whose module list or boot id is far longer than the kernel's ever is
    path = source.PROC / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    most = source.MODULES_MAX_BYTES if relative == "modules" else source.BOOT_ID_MAX_BYTES
    line = b"zram 45056 0 - Live 0x0\n"
    path.write_bytes(line * (most // len(line) + 1))
    # WHEN read beside a snapshot / THEN refused, naming the file, before reading on without end
    with pytest.raises(InputTooLarge, match=f"{relative}: more than {most:,} bytes"):
        read()
