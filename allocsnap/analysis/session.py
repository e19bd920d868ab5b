"""One store opened for a command: its listing and one DuckDB connection with its views.

Every analysis takes a ``Store``: a location, opened for that one call, or a ``Session`` that
a caller running several (the report, ``Database``, ``allocsnap sql``) opens once and hands to
each, so the store is listed and its views registered once (``reading.read_store`` lists it
again only when a read on the session fails: a file gone since, or damage).
"""

from __future__ import annotations

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
