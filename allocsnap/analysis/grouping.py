"""How rows are summed into groups: ``--by tag|function|file|module|dir[:N]``, and ``host`` over
a window of a store."""

from __future__ import annotations

from dataclasses import dataclass

from allocsnap.errors import UsageError

GROUPINGS = ("tag", "function", "file", "module", "dir")
WINDOW_GROUPINGS = (*GROUPINGS, "host")  # the window analyses know each snapshot's host
DEFAULT_DIR_DEPTH = 2


@dataclass(frozen=True)
class Grouping:
    """How rows are summed: ``--by tag|function|file|module|dir[:N]``."""

    by: str = "tag"
    depth: int = DEFAULT_DIR_DEPTH

    @classmethod
    def parse(cls, text: str, *, window: bool = False) -> Grouping:
        """Return the grouping named by ``text``, e.g. ``dir:3``; ``host`` only for a ``window``
        analysis (leaks, growth, top, history, outliers)."""
        by, colon, depth = text.partition(":")
        bad_depth = colon and (by != "dir" or not depth.isdigit() or int(depth) < 1)
        if by == "host" and not window and not colon:
            raise UsageError(
                "--by host groups a window of a store (leaks, growth, top, history, outliers); "
                "here, compare two hosts' snapshots with diff"
            )
        if by not in (WINDOW_GROUPINGS if window else GROUPINGS) or bad_depth:
            extra = ", host" if window else ""
            raise UsageError(
                f"not a grouping: {text!r} (one of tag, function, file, module, dir[:N]{extra})"
            )
        return cls(by, int(depth) if depth else DEFAULT_DIR_DEPTH)
