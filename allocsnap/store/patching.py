"""Parquet files encoded by writing new values into pyarrow's encoding of a same-shaped one.

The recorder writes two files per snapshot whose layout does not change from one snapshot to the
next; only some values do. pyarrow spends ~15 µs of CPU per column and file on fixed costs (a
column writer, page headers, footer entries): about 1 ms a snapshot, against a few hundred bytes
and two 64 KB runs of values that actually change. With compression, statistics, page checksums
and the page index off, a column of non-null fixed-width values written as one PLAIN page is
those values, little-endian, at the end of its column chunk (a dictionary's values end where its
data page starts). So a file of the same shape is the earlier file with those runs replaced.

``Template.locate`` finds the runs in a file pyarrow wrote and checks that they hold the values of
the table it was written from. ``Encoder`` trusts a template only after it reproduced pyarrow's
own encoding of a second table byte for byte, compares the two for each of the next
``verify_first`` files and then every ``check_every`` files; on any mismatch or error it writes
pyarrow's bytes and stops patching. Nothing here knows Parquet's
format beyond what those checks prove on every new shape (docs/recorder.md, *Hot files*).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

Buffer: TypeAlias = bytes | bytearray | memoryview
"""The bytes of a file, or of a run of values to write into one."""


@dataclass(frozen=True)
class Template:
    """A file pyarrow wrote and where the values of some of its columns are."""

    data: bytes = field(repr=False)
    spans: tuple[tuple[int, int, int], ...]  # (offset, size, which column) in file order

    @classmethod
    def locate(cls, data: Buffer, table: pa.Table, columns: Sequence[str]) -> Template | None:
        """Return the template of ``data``, pyarrow's encoding of ``table``, for ``columns``.

        None when a column's values are not one run of PLAIN values at the end of its chunk
        (nulls, several pages, row groups, another encoding, or a variable-width column).
        """
        data = bytes(data)
        metadata = pq.ParquetFile(pa.BufferReader(data)).metadata
        if metadata.num_row_groups != 1:
            return None
        group = metadata.row_group(0)
        chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
        spans = []
        for index, name in enumerate(columns):
            chunk = chunks.get(name)
            if chunk is None or chunk.compression != "UNCOMPRESSED":
                return None
            column = table[name]
            if chunk.has_dictionary_page:  # the distinct values, in order of appearance
                end = chunk.data_page_offset
                if not pa.types.is_dictionary(column.type):
                    column = pc.unique(column)
            else:
                end = chunk.data_page_offset + chunk.total_compressed_size
            value = plain(column)
            if value is None:
                return None
            start = end - len(value)
            if start < 0 or data[start:end] != value:
                return None
            spans.append((start, len(value), index))
        spans.sort()
        if any(a[0] + a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
            return None
        return cls(data=data, spans=tuple(spans))

    def render(self, values: Sequence[Buffer]) -> list[memoryview]:
        """Return the file with each located run replaced by the bytes in ``values``, as the
        pieces to write one after the other (no copy of the file: ``os.writev`` takes them)."""
        data = memoryview(self.data)
        if len(values) != len(self.spans):
            raise ValueError(f"{len(self.spans)} runs of values, {len(values)} given")
        out: list[memoryview] = []
        at = 0
        for start, size, index in self.spans:
            view = memoryview(values[index]).cast("B")
            if view.nbytes != size:
                raise ValueError(f"a run of {size} bytes cannot hold {view.nbytes}")
            out += (data[at:start], view)
            at = start + size
        out.append(data[at:])
        return out


def plain(column: pa.ChunkedArray | pa.Array) -> bytes | None:
    """Return a column's values as Parquet's PLAIN encoding stores them, or None.

    Handled: non-null integers, floats and timestamps (8- to 32-bit integers are stored as
    INT32), and one string (its bytes: the length before it does not change with them); a
    dictionary column stands for its one-value dictionary.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        return None
    if pa.types.is_dictionary(array.type):
        array = array.dictionary
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        return bytes(array[0].as_buffer()) if len(array) == 1 else None
    if pa.types.is_timestamp(kind):
        array = array.cast(pa.int64())
    elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return None
    values = np.asarray(array.to_numpy(zero_copy_only=False))
    if values.dtype.itemsize < 4:
        values = values.astype(np.int32 if values.dtype.kind == "i" else np.uint32)
    return values.astype(values.dtype.newbyteorder("<")).tobytes()


class Encoder:
    """Encodes tables with pyarrow, or by patching a verified template of the last shape seen.

    ``encode`` gets a key naming everything that fixes the file's layout apart from the patched
    columns' values (same key: same columns patched, same bytes outside their runs; None: never
    patch), and two callables: the table, built only when pyarrow is needed, and the PLAIN bytes
    of the patched columns' values (``plain``), by column name.
    """

    def __init__(
        self, options: dict[str, Any], *, verify_first: int = 16, check_every: int = 256
    ) -> None:
        self.options = options
        self.verify_first = verify_first
        self.check_every = check_every
        self.enabled = True
        self.patched = 0  # files encoded from a template
        self._template: tuple[Hashable, Template] | None = None
        self._last: tuple[Hashable, pa.Table, memoryview] | None = None  # a shape seen once
        self._refused: Hashable = None  # a shape whose template did not check out
        self._adopted_at = 0  # self.patched when the current template was adopted
        self.stopped_by: str | None = None  # why patching stopped, for the recorder's log

    def encode(
        self,
        key: Hashable,
        table: Callable[[], pa.Table],
        values: Callable[[], Mapping[str, Buffer]],
    ) -> list[memoryview]:
        """Return the Parquet file of the table that ``table()`` builds, in pieces."""
        if self._template is not None and self._template[0] == key:
            try:
                out = self._template[1].render(list(values().values()))
            except (ValueError, TypeError, OverflowError) as e:  # a value the runs cannot hold
                self._stop(e)
                return [self.pyarrow(table())]
            self.patched += 1
            uses = self.patched - self._adopted_at
            checked = uses <= self.verify_first or uses % self.check_every == 0
            if checked and not self._agrees(out, table()):
                return [self.pyarrow(table())]
            return out
        built = table()
        data = self.pyarrow(built)
        if not self.enabled or key is None or key == self._refused:
            return [data]
        last, self._last = self._last, (key, built, data)
        if last is None or last[0] != key:
            return [data]
        patched = values()
        template = Template.locate(last[2], last[1], list(patched))
        if template is not None and b"".join(template.render(list(patched.values()))) == data:
            self._template, self._last = (key, template), None
            self._adopted_at = self.patched
        else:
            self._refused = key
        return [data]

    def pyarrow(self, table: pa.Table) -> memoryview:
        """Return pyarrow's encoding of ``table`` with this encoder's options."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **self.options)
        return memoryview(sink.getvalue()).cast("B")  # pyarrow exports signed chars

    def _agrees(self, out: list[memoryview], table: pa.Table) -> bool:
        if b"".join(out) == self.pyarrow(table):
            return True
        self._stop(ValueError("a patched file differed from pyarrow's"))
        return False

    def _stop(self, why: Exception) -> None:
        self.enabled, self._template, self.stopped_by = False, None, str(why)
