"""``recstream faults``: the fault-injection suite (the ``faults/`` folder of the repository).

The suite is a test harness, not part of the installed services: this command
finds the repository that holds ``faults/`` (upwards from the working folder,
then from this file) and runs it. See ``docs/reliability.md``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from recstream_cli.repo import find_folder_holding

SUITE_MARKER = Path("faults") / "suite.py"


@click.command(name="faults")
@click.option(
    "--only",
    multiple=True,
    metavar="NAME",
    help="Run only this scenario (repeatable): kill9, sigterm, broker-restart, redis-stop, "
    "redis-hang, redis-lost, poison, duplicates, lateness, hot-keys, rebalance, backlog, "
    "soak. The soak runs only when named.",
)
@click.option("--quick", is_flag=True, help="Smaller inputs and fewer repetitions.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for report.md and report.json.",
)
@click.option(
    "--runtime", type=click.Choice(["aiokafka", "faust"]), default="aiokafka", show_default=True
)
@click.option("--seed", type=int, default=7, show_default=True, help="Workload and timing seed.")
@click.option(
    "--soak-seconds",
    type=click.FloatRange(10, 7200),
    default=600.0,
    show_default=True,
    help="Length of the soak run.",
)
@click.option(
    "--datasets",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="The shared datasets folder [default: ../shared/datasets next to the repository].",
)
@click.option("--keep", is_flag=True, help="Keep the processes' logs under OUT/work.")
def faults(
    only: tuple[str, ...],
    quick: bool,
    out: Path,
    runtime: str,
    seed: int,
    soak_seconds: float,
    datasets: Path | None,
    keep: bool,
) -> None:
    """Inject faults into real processes, compare Redis with the oracle, write a report.

    Starts its own redis-server and Tansu broker on loopback for every scenario.
    Exits 0 when every scenario passed.
    """
    root = find_folder_holding(SUITE_MARKER)
    if root is None:
        raise click.ClickException("no faults/ folder found: run this in the recstream repository")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    suite = importlib.import_module("faults.cli")
    known = [entry.name for entry in importlib.import_module("faults.suite").SCENARIOS]
    unknown = [name for name in only if name not in known]
    if unknown:
        raise click.BadParameter(f"unknown {unknown}; known: {known}", param_hint="--only")
    extra = {} if datasets is None else {"datasets": datasets}
    options = {"quick": quick, "runtime": runtime, "seed": seed, "keep": keep, **extra}
    raise SystemExit(suite.run(out, only, soak_seconds=soak_seconds, **options))
