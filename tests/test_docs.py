"""The documentation keeps up with the CLI: every command and option is in docs/commands.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from allocsnap.cli import app

ROOT = Path(__file__).resolve().parent.parent
COMMANDS_DOC = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
# Options shared by several commands live in sections that are not one command's own.
COMMON_DOC = "\n".join(
    part for part in COMMANDS_DOC.split("\n## ") if not part.startswith("`allocsnap")
)


def _commands() -> dict[str, list[str]]:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    ctx = typer.Context(group)
    commands = {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}
    return {
        name: [opt for param in command.params for opt in param.opts if opt.startswith("--")]
        for name, command in commands.items()
        if command is not None
    }


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_a_section(name: str) -> None:
    # GIVEN the typer app's commands / WHEN the reference is read / THEN each has a heading
    assert f"## `allocsnap {name}" in COMMANDS_DOC


@pytest.mark.parametrize(
    ("name", "option"),
    sorted((name, opt) for name, opts in _commands().items() for opt in opts if opt != "--help"),
)
def test_every_option_is_documented(name: str, option: str) -> None:
    # GIVEN a command's option
    section = COMMANDS_DOC.split(f"## `allocsnap {name}", 1)[1].split("\n## ", 1)[0]
    # THEN it is in the command's own section or among the common options
    documented = re.compile(re.escape(option) + r"\b")
    assert documented.search(section) or documented.search(COMMON_DOC)


def test_readme_links_resolve() -> None:
    # GIVEN the README's links into docs/ / THEN every linked file exists
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("docs/guide.md", "docs/commands.md", "docs/storage.md", "docs/sql.md"):
        assert target in readme
        assert (ROOT / target).is_file()
