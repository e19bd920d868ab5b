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
