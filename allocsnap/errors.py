"""The errors allocsnap raises, and the exit code each one maps to.

The library raises these and never prints or exits; ``report`` turns an ``AllocsnapError`` into
one line on stderr and its ``exit_code``, for the CLI's one translation point and for the
recorder process that replaces it (children hand theirs back as JSON: store/child.py).
"""

from __future__ import annotations

from enum import IntEnum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO


class ExitCode(IntEnum):
    """Process exit codes, documented in docs/commands.md."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    UNAVAILABLE = 3
    NO_STORE = 4
    LEAK_FOUND = 5


class AllocsnapError(Exception):
    """An expected failure with a one-line message for the user."""

    exit_code: ExitCode = ExitCode.FAILURE


class ParseError(AllocsnapError):
    """Text that is not /proc/allocinfo; names the line number and the text."""

    def __init__(self, source: str, line_number: int, line: str, why: str) -> None:
        self.source = source
        self.line_number = line_number
        self.line = line
        self.why = why
        shown = line if len(line) <= 120 else line[:117] + "..."
        super().__init__(f"{source}: line {line_number}: {why}: {shown!r}")


class InputTooLarge(AllocsnapError):
    """A dump or stream larger than any allocinfo text, or with a line longer than any row
    (``/dev/zero``, an endless pipe): refused before it fills the memory."""


class AllocinfoUnavailable(AllocsnapError):
    """/proc/allocinfo is absent, unreadable or gone."""

    exit_code = ExitCode.UNAVAILABLE


class IoctlUnsupported(AllocinfoUnavailable):
    """The kernel has no usable /proc/allocinfo ioctl (before 7.3, or a layout it refuses)."""


class StoreNotFound(AllocsnapError):
    """The store is missing or empty, or a snapshot reference names nothing."""

    exit_code = ExitCode.NO_STORE


class StoreError(AllocsnapError):
    """A store or snapshot file that cannot be read or written."""


REPAIR = "run 'allocsnap check --repair' to set damaged files aside"
"""What to do about a damaged store file, said at the end of a message that names it."""


class StoreDamaged(StoreError):
    """A store file that cannot be read, or whose rows disagree with its snapshots' rows."""

    def __init__(self, message: str, paths: tuple[str, ...] = ()) -> None:
        self.paths = paths  # the damaged files, for --skip-damaged
        super().__init__(message)


class StoreLocked(StoreError):
    """Another recorder holds the store's lock; the message names its pid."""


class QueryError(AllocsnapError):
    """A query failed or is missing."""


class UsageError(AllocsnapError):
    """A value the user gave is not valid (a size, a time, a reference)."""

    exit_code = ExitCode.USAGE


class OutputFailed(AllocsnapError):
    """The report could not be written where stdout goes (a full disk, a file system gone
    read-only); a reader that went away is a BrokenPipeError instead, ended without a word."""


class CommandFailed(AllocsnapError):
    """The command ``allocsnap loop`` runs exited non-zero: the message names the run and its
    exit code."""


class EpochWarning(UserWarning):
    """Counters compared across an epoch boundary (a reboot, profiling off, a module unloaded):
    what the CLI prints as ``warning:`` lines, issued by ``allocsnap.Database``'s analyses."""


class DamagedSkipped(UserWarning):
    """A damaged store file left out of a read (``--skip-damaged``): what the CLI prints as a
    ``warning:`` line."""


class MergeConflict(StoreError):
    """One host and snapshot id hold different data in a store being merged and the target."""


def report(error: AllocsnapError, stream: TextIO) -> int:
    """Write the error's one line to ``stream`` and return its exit code."""
    print(f"Error: {error}", file=stream, flush=True)
    return int(error.exit_code)
