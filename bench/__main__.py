"""``python -m bench``: the same as ``recstream bench`` (see :mod:`bench.cli`)."""

from bench.cli import main

main()
