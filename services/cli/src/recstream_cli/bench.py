"""``recstream bench``: the benchmark harness (the ``bench/`` folder of the repository).

The harness measures the services, it is not one of them: this command finds
the repository that holds ``bench/`` (upwards from the working folder, then
from this file) and runs it. See ``docs/performance.md``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from recstream_cli.repo import find_folder_holding

HARNESS_MARKER = Path("bench") / "cli.py"
NAMES = ("throughput", "freshness", "api", "rebuild", "memory", "scaling")


@click.command(name="bench")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(NAMES),
    help="Run only this benchmark (repeatable); they run in the order listed here.",
)
@click.option("--quick", is_flag=True, help="Smaller volumes and shorter runs (about 3 minutes).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for results.json, summary.md and plots/ (e.g. results/bench-2026-11-26).",
)
@click.option(
    "--runtimes",
    default=None,
    metavar="LIST",
    help="Consumer runtimes of the ingest benchmark, comma-separated "
    "[default: aiokafka,faust; aiokafka with --quick].",
)
@click.option(
    "--datasets",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="The shared datasets folder [default: ../shared/datasets next to the repository].",
)
@click.option("--keep", is_flag=True, help="Keep the processes' logs under OUT/work.")
def bench(
    only: tuple[str, ...],
    quick: bool,
    out: Path,
    runtimes: str | None,
    datasets: Path | None,
    keep: bool,
) -> None:
    """Measure ingest, freshness, API latency, rebuild, memory and scaling on loopback.

    Starts its own redis-server, Tansu broker, consumers and API for every
    benchmark; prints each figure next to a limit measured in the same run.
    Exits 0 when every benchmark ran (a missed target is a figure, not a failure).
    """
    root = find_folder_holding(HARNESS_MARKER)
    if root is None:
        raise click.ClickException("no bench/ folder found: run this in the recstream repository")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    harness = importlib.import_module("bench.cli")
    chosen = runtimes.split(",") if runtimes else None
    raise SystemExit(
        harness.run(out, only, quick=quick, runtimes=chosen, datasets=datasets, keep=keep)
    )
