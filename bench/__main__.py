"""python -m bench: the same as bench/run.py."""

from bench.run import main

raise SystemExit(main())
