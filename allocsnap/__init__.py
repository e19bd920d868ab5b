"""allocsnap: record /proc/allocinfo snapshots as Parquet; find changes, leaks and growth.

``allocsnap.open("allocsnap-data")`` opens a store for SQL and the analyses (docs/sql.md). It
imports DuckDB and pyarrow only when called, so ``import allocsnap`` and the CLI stay fast
(not even ``typing`` is imported here).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from os import PathLike
    from typing import Any

    from allocsnap.database import Database

__version__ = "0.1.0"

NO_PANDAS = "ALLOCSNAP_NO_PANDAS"


class _NoPandas:
    """An import finder that refuses pandas, so pyarrow takes it for not installed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is kept out of this allocsnap process")


def keep_pandas_out() -> None:
    """Stop pyarrow from importing pandas in this process and the ones it starts.

    pyarrow imports pandas, when installed, on its first conversion of Python objects: about
    0.25 s and 35 MB here that the CLI and the recorder never use. A notebook's ``import
    allocsnap`` leaves pandas alone; the CLI's entry point calls this.
    """
    import os
    import sys

    os.environ[NO_PANDAS] = "1"  # inherited by the lean recorder and compaction processes
    if not any(isinstance(finder, _NoPandas) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


if __import__("os").environ.get(NO_PANDAS) == "1":
    keep_pandas_out()
__all__ = ["Database", "__version__", "open"]


def open(store_dir: str | PathLike[str] = "allocsnap-data") -> Database:
    """Return a ``Database``: the store's views and macros on a DuckDB connection, and the
    analyses (``diff``, ``leaks``, ``top``, ...) returning Arrow tables."""
    from allocsnap.database import Database

    return Database(store_dir)


def __getattr__(name: str) -> Any:
    if name == "Database":  # imported on first use, like open()
        from allocsnap.database import Database

        return Database
    raise AttributeError(f"module 'allocsnap' has no attribute {name!r}")
