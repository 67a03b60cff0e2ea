"""``python -m faults``: the same as ``recstream faults`` (see :mod:`faults.cli`)."""

from faults.cli import main

main()
