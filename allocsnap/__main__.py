"""Run the CLI as ``python -m allocsnap``."""

from allocsnap.cli import app

app(prog_name="allocsnap")
