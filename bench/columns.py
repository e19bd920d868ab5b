"""Where a store's bytes go: compressed size per column of every table, per tag per snapshot.

    .venv/bin/python bench/columns.py STORE [--cells N]

Reads only Parquet metadata (``total_compressed_size`` of each column chunk), so it works on
any store, hot or compacted. ``--cells`` is the number of tag x snapshot cells the figures are
divided by (default: the rows of the samples files). docs/performance.md quotes its output.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq


@dataclass
class Table:
    """The sizes of one table's files, summed."""

    files: int = 0
    bytes: int = 0
    rows: int = 0
    row_groups: int = 0
    footers: int = 0
    columns: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    encodings: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def measure(root: Path) -> dict[str, Table]:
    """Return the sizes of the ``samples``, ``snapshots`` and ``tags`` tables of a store."""
    tables: dict[str, Table] = {}
    for name in ("samples", "snapshots", "tags"):
        table = tables[name] = Table()
        for path in sorted((root / name).rglob("*.parquet")):
            meta = pq.ParquetFile(path).metadata
            table.files += 1
            table.bytes += path.stat().st_size
            table.rows += meta.num_rows
            table.row_groups += meta.num_row_groups
            table.footers += meta.serialized_size
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                for c in range(group.num_columns):
                    chunk = group.column(c)
                    table.columns[chunk.path_in_schema] += chunk.total_compressed_size
                    table.encodings[chunk.path_in_schema].update(chunk.encodings)
    return tables


def report(root: Path, cells: int | None = None) -> str:
    """Return the breakdown as text, in bytes per cell."""
    tables = measure(root)
    cells = cells or tables["samples"].rows or 1
    total = sum(t.bytes for t in tables.values())
    lines = [f"{root}: {total:,} B in all, {total / cells:.4f} B/cell over {cells:,} cells"]
    for name, t in tables.items():
        lines.append(
            f"  {name}: {t.files} files, {t.bytes:,} B = {t.bytes / cells:.4f} B/cell; "
            f"{t.rows:,} rows in {t.row_groups} row groups; footers {t.footers / cells:.4f}"
        )
        for column, size in sorted(t.columns.items(), key=lambda kv: -kv[1]):
            encodings = "/".join(sorted(t.encodings[column]))
            lines.append(f"    {column:24s} {size / cells:8.4f}  {encodings}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--cells", type=int, default=None)
    args = parser.parse_args()
    print(report(args.store, args.cells))


if __name__ == "__main__":
    main()
