"""One store opened for a command: its listing and one DuckDB connection with its views.

Every analysis takes a ``Store``: a location, opened for that one call, or a ``Session`` that
a caller running several (the report, ``Database``, ``allocsnap sql``) opens once and hands to
each, so the store is listed and its views registered once (``reading.read_store`` lists it
again only when a read on the session fails: a file gone since, or damage).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TypeAlias

from allocsnap.analysis import query
from allocsnap.store import layout
from allocsnap.store.remote import Location


class Session:
    """A store's files as listed once, and a connection whose views read them."""

    def __init__(self, where: Location, *, explore: bool = False, sandbox: bool = False) -> None:
        self.location = where
        self.explore = explore
        self.files = layout.open_store(where)
        self.con = query.open_connection(self.files, explore=explore, sandbox=sandbox)
        # what every connection over this store must also hold (--across-kernels: its own
        # samples view), applied again to the fresh one a failed reading retries on
        self.prepare: Callable[[query.Connection], None] | None = None

    def prepared(self, prepare: Callable[[query.Connection], None]) -> Session:
        """Apply ``prepare`` to this session's connection, and to every fresh connection that
        ``reading.read_store`` retries a reading of it on; return the session."""
        prepare(self.con)
        self.prepare = prepare
        return self

    def refresh(self) -> None:
        """List the store again and point the views at its files as they are now."""
        self.files = layout.open_store(self.location)
        query.refresh(self.con, self.files, explore=self.explore)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __str__(self) -> str:
        return str(self.location)  # what messages name: the store


Store: TypeAlias = Location | Session
"""What an analysis reads: a store's location, or a session already open on one."""
