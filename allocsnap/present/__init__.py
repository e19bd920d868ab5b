"""Presenting results: command tables, the HTML and text report pages, charts and plots.

``Format`` lives here rather than in ``render`` so that the command line can declare its
``--format`` options, and print their help, without importing the renderers (docs/commands.md).
"""

from enum import StrEnum


class Format(StrEnum):
    """Output formats of every command that prints rows."""

    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"
