"""A remote store's pyarrow file system, as the fsspec file system DuckDB reads through.

DuckDB's own S3 support is an extension that cannot be installed offline; pyarrow's S3 file
system, wrapped for fsspec and registered on a DuckDB connection, lets DuckDB's Parquet reader
(parallel, with its statistics and join filters) read the files in ranges (docs/storage.md).
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

PROTOCOL = "allocsnap-s3"
"""The URL scheme under which DuckDB sees a remote store's files."""


def filesystem(pyarrow_fs: Any, listed: dict[str, Any]) -> Any:
    """Return the fsspec file system over ``pyarrow_fs`` that answers sizes and times from
    ``listed`` (the store's listing), so that DuckDB's questions cost no request."""
    return _wrapper()(pyarrow_fs, listed)


@cache
def _wrapper() -> Any:
    """Return the fsspec class that hands DuckDB's reads to a pyarrow file system."""
    from fsspec.implementations.arrow import ArrowFSWrapper

    class RemoteStore(ArrowFSWrapper):  # type: ignore[misc]
        protocol = PROTOCOL
        cachable = False  # fsspec would otherwise hand back an instance with an old listing

        def __init__(self, filesystem: Any, listed: dict[str, Any]) -> None:
            super().__init__(filesystem)
            self.listed = listed

        def info(self, path: str, **options: Any) -> dict[str, Any]:
            known = self.listed.get(str(self._strip_protocol(path)))
            if known is None:
                return dict(super().info(path, **options))
            return dict(self._make_entry(known))

        def modified(self, path: str) -> Any:
            known = self.listed.get(str(self._strip_protocol(path)))
            return super().modified(path) if known is None else known.mtime

        def exists(self, path: str, **options: Any) -> bool:
            known = str(self._strip_protocol(path)) in self.listed
            return known or bool(super().exists(path, **options))

        @classmethod
        def _strip_protocol(cls, path: str | list[str]) -> str | list[str]:
            if isinstance(path, list):
                return [str(cls._strip_protocol(p)) for p in path]
            return path.removeprefix(f"{PROTOCOL}://").rstrip("/")

        def _open(self, path: str, mode: str = "rb", **_options: Any) -> _PositionalFile:
            if mode != "rb":
                raise OSError(f"{path}: a remote store is opened for reading only")
            return _PositionalFile(self.fs.open_input_file(path))

    return RemoteStore


class _PositionalFile:
    """A remote file DuckDB's threads share: each thread seeks and reads at its own position.

    DuckDB reads a range as ``seek`` then ``read``, two calls; its Parquet reader's threads
    share one handle, and pyarrow releases the GIL while it reads, so a shared position let
    one thread's seek move another's read (garbled footers, "Exceeded size limit"). Reads are
    positional (``read_at``), from the calling thread's own offset.
    """

    def __init__(self, file: Any) -> None:
        self._file = file
        self._size = int(file.size())
        self._local = threading.local()

    def _at(self) -> int:
        return int(getattr(self._local, "offset", 0))

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._at(), 2: self._size}[whence]
        self._local.offset = base + offset
        return int(self._local.offset)

    def tell(self) -> int:
        return self._at()

    def read(self, size: int = -1) -> bytes:
        offset = self._at()
        size = self._size - offset if size is None or size < 0 else size
        data = bytes(self._file.read_at(max(0, min(size, self._size - offset)), offset))
        self._local.offset = offset + len(data)
        return data

    @property
    def size(self) -> int:
        return self._size

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _PositionalFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
