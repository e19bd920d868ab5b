"""Run the CLI as ``python -m allocsnap``."""

from allocsnap.cli import main

main()
