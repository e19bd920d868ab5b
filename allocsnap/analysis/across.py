"""Follow call sites across kernel upgrades in a store window (``--across-kernels``).

Opens a ``Session`` whose ``samples`` view gives the rows of every older kernel's snapshots the
tag of the newest kernel's call site they pair with (``analysis.kernels``), so that history and
growth, run on that session, see one series per call site where its line moved. The epochs
are unchanged: an upgrade is a reboot, so it already starts a new epoch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from allocsnap import filters
from allocsnap.analysis import kernels, query
from allocsnap.analysis.session import Session
from allocsnap.store.remote import Location


@dataclass(frozen=True)
class Across:
    """A session whose samples follow call sites across kernels, and what was paired."""

    session: Session
    newest: str | None  # the kernel every older one's sites are written as
    matchings: dict[str, kernels.Matching]  # per older kernel

    def notes(self) -> list[str]:
        """Return one line per older kernel: what of its sites was paired with the newest."""
        return [
            f"across kernels: {kernel} -> {self.newest}: {m.summary()}"
            for kernel, m in self.matchings.items()
        ]

    def __enter__(self) -> Across:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()


def kernel_sites(
    con: query.Connection, host: str | Sequence[str] | None = None
) -> dict[str, dict[kernels.Site, int]]:
    """Return each kernel's call sites and their tag ids, oldest kernel (first seen) first,
    read on a store connection (of the snapshots of ``host``, names or globs)."""
    rows = query.run(con, "kernel_sites", host=filters.hosts_regex(host))
    sites: dict[str, dict[kernels.Site, int]] = defaultdict(dict)
    for r in rows.to_pylist():
        site = kernels.Site(r["module"], r["file"], r["function"], r["line"])
        sites[r["kernel"]][site] = r["tag_id"]
    return dict(sites)


def across_kernels(
    where: Location,
    host: str | Sequence[str] | None = None,
    lines: kernels.LineOptions | None = None,
) -> Across:
    """Return a session over the store whose older kernels' call sites are written as the
    newest kernel's (the snapshots of ``host``, names or globs, decide which kernels)."""
    lines = lines or kernels.LineOptions()
    session = Session(where)
    try:
        sites = kernel_sites(session.con, host)
        order = list(sites)
        newest = order[-1] if order else None
        mapped: dict[str, list[object]] = {"kernel": [], "tag_id": [], "to_tag_id": []}
        matchings = {}
        for kernel in order[:-1]:
            matching = kernels.match(
                sites[kernel], sites[order[-1]], lines.renames, lines.source_map
            )
            matchings[kernel] = matching
            for old, new in matching.paired().items():
                if old != new:
                    mapped["kernel"].append(kernel)
                    mapped["tag_id"].append(sites[kernel][old])
                    mapped["to_tag_id"].append(sites[order[-1]][new])
        table = pa.table(
            {
                "kernel": pa.array(mapped["kernel"], pa.string()),
                "tag_id": pa.array(mapped["tag_id"], pa.int64()),
                "to_tag_id": pa.array(mapped["to_tag_id"], pa.int64()),
            }
        )

        def follow(con: query.Connection) -> None:
            query.register(con, "kernel_tag_map", table)
            query.execute(con, "across_kernels")
            query.execute(con, "across_kernels_picked")

        session.prepared(follow)  # again on a retry's fresh connection
    except BaseException:
        session.close()
        raise
    return Across(session=session, newest=newest, matchings=matchings)
