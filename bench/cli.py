"""Running the benchmarks: ``recstream bench`` and ``python -m bench`` both land in :func:`run`."""

from __future__ import annotations

import importlib
import logging
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import click

from bench.context import BenchContext
from bench.results import BenchResult, machine, write_report
from bench.stack import API_SERVERS
from recstream.platform.runtime import tune_gc

Benchmark = Callable[[BenchContext], Awaitable[BenchResult]]
# name -> module, in run order: memory uses the rebuild's Redis and the RSS seen before it
MODULES = {
    "throughput": "bench.throughput",
    "freshness": "bench.freshness",
    "api": "bench.api_latency",
    "api-cpu": "bench.api_cpu",
    "rebuild": "bench.rebuild",
    "memory": "bench.memory",
    "scaling": "bench.scaling",
}
NAMES = tuple(MODULES)


def benchmark(name: str) -> Benchmark:
    run: Benchmark = importlib.import_module(MODULES[name]).run
    return run


async def run_all(ctx: BenchContext, names: Sequence[str]) -> list[BenchResult]:
    results = []
    try:
        for name in names:
            print(f"[{name}]", flush=True)
            started = time.perf_counter()
            try:
                result = await benchmark(name)(ctx)
            except Exception as exc:  # one failed benchmark does not lose the others' figures
                traceback.print_exc()
                result = BenchResult(name, name, error=f"{type(exc).__name__}: {exc}")
            result.seconds = time.perf_counter() - started
            print(f"[{name}] {result.seconds:.0f} s", flush=True)
            results.append(result)
    finally:
        ctx.close()
    return results


def run(
    out: Path,
    only: Sequence[str] = (),
    *,
    quick: bool = False,
    runtimes: Sequence[str] | None = None,
    datasets: Path | None = None,
    keep: bool = False,
    api_server: str = "uvicorn",
    api_workers: int = 1,
) -> int:
    """Run the benchmarks (all, or ``only`` some, in the canonical order); write the report.

    Returns 0 when every benchmark ran (targets missed are figures, not failures).
    """
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    out.mkdir(parents=True, exist_ok=True)
    workdir = out / "work" if keep else Path(tempfile.mkdtemp(prefix="recstream-bench-"))
    names = [n for n in NAMES if not only or n in only]
    if runtimes is None:  # faust doubles the ingest benchmark's time: full runs only
        runtimes = ("aiokafka",) if quick else ("aiokafka", "faust")
    ctx = BenchContext(
        out=out,
        workdir=workdir,
        quick=quick,
        runtimes=tuple(runtimes),
        api_server=api_server,
        api_workers=api_workers,
    )
    if datasets is not None:
        ctx.datasets = datasets
    info = machine()
    args = sys.argv[1:]
    command = "recstream bench " + shlex.join(args[1:] if args[:1] == ["bench"] else args)
    from recstream_consumer.__main__ import event_loop_runner

    tune_gc()  # as the consumer and replay processes do: the in-process limits compare to them
    try:
        results = event_loop_runner("auto")(run_all(ctx, names))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    write_report(out, results, {**info, "quick": quick}, command)
    print(f"\nreport: {out / 'summary.md'}")
    return 0 if all(r.error is None for r in results) else 1


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
@click.option(
    "--api-server",
    type=click.Choice(API_SERVERS),
    default="uvicorn",
    show_default=True,
    help="The ASGI server of the api benchmark.",
)
@click.option(
    "--api-workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes of the api benchmark's server.",
)
def bench(
    only: tuple[str, ...],
    quick: bool,
    out: Path,
    runtimes: str | None,
    datasets: Path | None,
    keep: bool,
    api_server: str,
    api_workers: int,
) -> None:
    """Measure ingest, freshness, API latency and CPU, rebuild, memory and scaling on loopback.

    Starts its own redis-server, Tansu broker, consumers and API for every
    benchmark; prints each figure next to a limit measured in the same run.
    Exits 0 when every benchmark ran (a missed target is a figure, not a failure).
    """
    chosen = runtimes.split(",") if runtimes else None
    raise SystemExit(
        run(
            out,
            only,
            quick=quick,
            runtimes=chosen,
            datasets=datasets,
            keep=keep,
            api_server=api_server,
            api_workers=api_workers,
        )
    )


def main() -> None:
    bench(prog_name="recstream bench")
