"""``recstream bench`` and ``recstream faults``: launchers of the repository's harnesses.

The benchmark harness (``bench/``) and the fault-injection suite (``faults/``) measure
and break the services; they are not part of them, and nothing installed imports
them. These commands find the repository that holds the harness (upwards from the
working folder, then from this file) and run it as ``python -m bench`` /
``python -m faults`` with every argument as given, ``--help`` included. See
``docs/performance.md`` and ``docs/reliability.md``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from recstream_cli.repo import find_folder_holding

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def launch(module: str, marker: Path, args: tuple[str, ...]) -> None:
    root = find_folder_holding(marker)
    if root is None:
        raise click.ClickException(
            f"no {module}/ folder found: run this in the recstream repository"
        )
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    raise SystemExit(subprocess.call([sys.executable, "-m", module, *args], env=env))


@click.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Measure ingest, freshness, API latency, rebuild, memory and scaling on loopback
    (the bench/ harness; --help lists its options)."""
    launch("bench", Path("bench") / "cli.py", args)


@click.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def faults(args: tuple[str, ...]) -> None:
    """Inject faults into real processes, compare Redis with the oracle, write a report
    (the faults/ suite; --help lists its options)."""
    launch("faults", Path("faults") / "suite.py", args)
