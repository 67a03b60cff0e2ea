"""The suite's command line: ``recstream faults`` and ``python -m faults`` both land here."""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click

from faults.scenarios.common import DEFAULT_DATASETS, SuiteOptions
from faults.suite import SCENARIOS, run_suite

NAMES = [e.name for e in SCENARIOS]


def run(
    out: Path,
    only: Sequence[str] = (),
    *,
    quick: bool = False,
    runtime: str = "aiokafka",
    seed: int = 7,
    soak_seconds: float = 600.0,
    datasets: Path = DEFAULT_DATASETS,
    keep: bool = False,
    redis_cluster: bool = False,
) -> int:
    """Run the suite (or ``only`` some scenarios), write the report; 0 when every one passed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    workdir = out / "work" if keep else Path(tempfile.mkdtemp(prefix="recstream-faults-"))
    options = SuiteOptions(
        workdir=workdir,
        datasets=datasets,
        quick=quick,
        runtime=runtime,
        seed=seed,
        soak_seconds=soak_seconds,
        keep=keep,
        redis_cluster=redis_cluster,
    )
    arguments = sys.argv[1:]
    if arguments[:1] == ["faults"]:  # run as `recstream faults ...`
        arguments = arguments[1:]
    command = "recstream faults " + shlex.join(arguments)
    try:
        results = asyncio.run(run_suite(list(only), options, out, command))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    click.echo((out / "report.md").read_text(encoding="utf-8"))
    return 0 if results and all(r.passed for r in results) else 1


@click.command(name="faults")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(NAMES),
    help="Run only this scenario (repeatable). The soak runs only when named here.",
)
@click.option("--quick", is_flag=True, help="Smaller inputs and fewer repetitions (minutes).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for report.md and report.json.",
)
@click.option(
    "--runtime", type=click.Choice(["aiokafka", "faust"]), default="aiokafka", show_default=True
)
@click.option(
    "--seed", type=int, default=7, show_default=True, help="Workload and fault timing seed."
)
@click.option("--soak-seconds", type=click.FloatRange(10, 7200), default=600.0, show_default=True)
@click.option(
    "--datasets",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=DEFAULT_DATASETS,
    show_default=True,
    help="The shared datasets folder.",
)
@click.option("--keep", is_flag=True, help="Keep the processes' logs next to the report.")
@click.option(
    "--redis-cluster",
    is_flag=True,
    help="Run every scenario on a local Redis Cluster of three primaries, not one redis-server.",
)
def faults(
    only: tuple[str, ...],
    quick: bool,
    out: Path,
    runtime: str,
    seed: int,
    soak_seconds: float,
    datasets: Path,
    keep: bool,
    redis_cluster: bool,
) -> None:
    """Inject faults into real processes and compare Redis with the oracle; write a report."""
    raise SystemExit(
        run(
            out,
            only,
            quick=quick,
            runtime=runtime,
            seed=seed,
            soak_seconds=soak_seconds,
            datasets=datasets,
            keep=keep,
            redis_cluster=redis_cluster,
        )
    )


def main() -> None:
    faults(prog_name="recstream faults")
