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
from allocsnap.errors import AllocsnapError
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
