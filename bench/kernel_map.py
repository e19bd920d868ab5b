"""Write the exact line mapping between two kernel source trees for the call sites of captures.

For every file that a call site of the earlier captures names and that both trees hold,
``git diff --no-index --histogram -U0`` between the two versions of the file says where each
line went: a line outside every hunk moved by the hunks above it (``same``); a line in a hunk
with as many lines on each side was edited in place (``edited``); any other line in a hunk has
no later line (``changed``). One row per earlier call-site line, tab-separated, with the
header ``kind``; files absent from either tree are left out (the matching falls back to its
heuristic there). ``allocsnap diff --source-map`` reads the result (docs/kernels.md).

Usage: python bench/kernel_map.py OLD_TREE NEW_TREE CAPTURE... > map.tsv
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from allocsnap.analysis.kernel_files import SOURCE_MAP_HEADER  # noqa: E402

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)
_SITE = re.compile(r"^\s*-?\d+\s+\d+\s+(\S+):(\d+)\s", re.MULTILINE)


def call_site_lines(captures: list[Path]) -> dict[str, set[int]]:
    """Return the call-site lines per file that a set of allocinfo dumps name."""
    found: dict[str, set[int]] = {}
    for capture in captures:
        for file, line in _SITE.findall(capture.read_text(encoding="utf-8")):
            found.setdefault(file, set()).add(int(line))
    return found


def hunks(old: Path, new: Path) -> list[tuple[int, int, int, int]]:
    """Return the hunks of the diff between two files: (old start, old count, new start,
    new count), as ``git diff -U0`` numbers them."""
    done = subprocess.run(
        ["git", "diff", "--no-index", "--histogram", "-U0", "--no-color", str(old), str(new)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"git diff {old} {new} failed: {done.stderr.strip()}")
    return [
        (int(a), int(b) if b is not None and b != "" else 1, int(c), int(d) if d else 1)
        for a, b, c, d in _HUNK.findall(done.stdout)
    ]


def map_line(line: int, found: list[tuple[int, int, int, int]]) -> tuple[int | None, str]:
    """Return where an earlier line went, and how: ``same``, ``edited`` or ``changed``."""
    shift = 0
    for a, b, c, d in found:
        if b and a <= line < a + b:
            return (c + line - a, "edited") if b == d else (None, "changed")
        old_next = a + b if b else a + 1  # a count of 0 names the line before the change
        if line < old_next:
            break
        shift = (c + d if d else c + 1) - old_next
    return line + shift, "same"


def main() -> None:
    """Print the mapping of the captures' call-site lines from OLD_TREE to NEW_TREE."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old_tree", type=Path)
    parser.add_argument("new_tree", type=Path)
    parser.add_argument("captures", type=Path, nargs="+")
    args = parser.parse_args()
    print("\t".join(SOURCE_MAP_HEADER))
    for file, lines in sorted(call_site_lines(args.captures).items()):
        old, new = args.old_tree / file, args.new_tree / file
        if not (old.is_file() and new.is_file()):
            continue
        found = hunks(old, new)
        for line in sorted(lines):
            target, kind = map_line(line, found)
            print(f"{file}\t{line}\t{'' if target is None else target}\t{kind}")


if __name__ == "__main__":
    main()
