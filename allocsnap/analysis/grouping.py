"""How rows are summed into groups: ``--by tag|function|file|module|dir[:N]``."""

from __future__ import annotations

from dataclasses import dataclass

from allocsnap.errors import UsageError

GROUPINGS = ("tag", "function", "file", "module", "dir")
DEFAULT_DIR_DEPTH = 2


@dataclass(frozen=True)
class Grouping:
    """How rows are summed: ``--by tag|function|file|module|dir[:N]``."""

    by: str = "tag"
    depth: int = DEFAULT_DIR_DEPTH

    @classmethod
    def parse(cls, text: str) -> Grouping:
        """Return the grouping named by ``text``, e.g. ``dir:3``."""
        by, colon, depth = text.partition(":")
        bad_depth = colon and (by != "dir" or not depth.isdigit() or int(depth) < 1)
        if by not in GROUPINGS or bad_depth:
            raise UsageError(
                f"not a grouping: {text!r} (one of tag, function, file, module, dir[:N])"
            )
        return cls(by, int(depth) if depth else DEFAULT_DIR_DEPTH)
