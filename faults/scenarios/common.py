"""What the scenarios share: options, the workload, convergence and the oracle check."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from faults.checker import SCORE_TOLERANCE, CheckResult, compare
from faults.deadletters import DeadLetterCheck, compare_dead_letters, read_dead_letters
from faults.driver import Driver, Outgoing, event_record, log_differences, read_log
from faults.oracle import Expectation, expect
from faults.probes import MarkWatch
from faults.report import ScenarioResult
from faults.rig import Rig, RigOptions
from faults.snapshot import redis_snapshot
from faults.workload import RealSession, WorkloadSpec, build_events, load_sessions

N = TypeVar("N", int, float)
DEFAULT_DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


@dataclass(frozen=True)
class SuiteOptions:
    workdir: Path
    datasets: Path = DEFAULT_DATASETS
    quick: bool = False
    runtime: str = "aiokafka"
    seed: int = 7
    soak_seconds: float = 600.0
    keep: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    redis_cluster: bool = False  # every rig on a local 3-primary Redis Cluster

    def rig(self, **options: Any) -> RigOptions:
        """The options of a scenario's rig: this suite's runtime and Redis, and ``options``."""
        return RigOptions(runtime=self.runtime, redis_cluster=self.redis_cluster, **options)

    def size(self, quick: N, full: N) -> N:
        return quick if self.quick else full


@lru_cache(maxsize=2)
def sessions(datasets: Path) -> list[RealSession]:
    return load_sessions(datasets)


def events(
    options: SuiteOptions, count: int, users: int, run: str, **spec: Any
) -> list[dict[str, Any]]:
    """``count`` realistic contract events of ``users`` users, oldest first."""
    return build_events(
        sessions(options.datasets),
        WorkloadSpec(events=count, users=users, seed=options.seed, run=run, **spec),
        time.time(),
    )


def workload(
    options: SuiteOptions, count: int, users: int, run: str, **spec: Any
) -> list[Outgoing]:
    """The same events as records to send (record timestamp: the send time)."""
    return [event_record(e) for e in events(options, count, users, run, **spec)]


Scenario = Callable[[SuiteOptions], Awaitable[ScenarioResult]]


@contextlib.asynccontextmanager
async def driving(rig: Rig) -> AsyncIterator[tuple[Driver, MarkWatch]]:
    """The rig's driver (started) and a watermark watch over its topic."""
    driver = Driver(rig.broker.bootstrap, rig.topic)
    await driver.start()
    try:
        async with MarkWatch(rig.store(), rig.topic) as watch:
            yield driver, watch
    finally:
        await driver.stop()


async def converge(watch: MarkWatch, driver: Driver, within: float) -> float | None:
    """Seconds until Redis applied every recorded record (None on timeout)."""
    return await watch.wait_caught_up(driver.last_offsets(), within)


async def oracle_check(
    rig: Rig,
    driver: Driver,
    result: ScenarioResult,
    *,
    label: str = "final state vs oracle",
    tolerance: float = SCORE_TOLERANCE,
) -> tuple[CheckResult, Expectation]:
    """The expected state of the whole recorded input against the real Redis."""
    expectation = await expect(
        driver.records, rig.config, rig.keyspace, erasure_log=rig.erasure_log
    )
    actual = await redis_snapshot(rig.client, rig.keyspace)
    check = compare(expectation.snapshot, actual, tolerance=tolerance)
    result.add_check(label, check)
    result.counts.setdefault("records", len(driver.records))
    result.counts.setdefault("users", len(expectation.snapshot.users))
    result.counts.setdefault("events applied (oracle)", expectation.applied)
    return check, expectation


async def dead_letter_check(
    rig: Rig,
    driver: Driver,
    expectation: Expectation,
    result: ScenarioResult,
    *,
    copies_ok: bool = False,
) -> DeadLetterCheck:
    """Every record the oracle dead-letters is in the DLQ once, with its bytes and reason."""
    letters = await read_dead_letters(
        rig.broker.bootstrap, rig.dlq_topic, len(expectation.dead_letters)
    )
    check = compare_dead_letters(expectation.dead_letters, letters, driver.tags)
    result.counts["dead letters (expected / found / extra copies)"] = (
        f"{check.expected} / {check.found} / {check.copies}"
    )
    result.counts["dead-letter reasons"] = check.reasons
    result.require(not check.problems, f"dead letters: {check.problems[:5]}")
    result.require(check.found == check.expected, f"DLQ holds {check.found} of {check.expected}")
    if not copies_ok:
        result.require(check.copies == 0, f"{check.copies} extra DLQ copies")
    return check


async def verify_log(rig: Rig, driver: Driver, result: ScenarioResult) -> None:
    """The broker holds exactly the recorded input (else the oracle would not apply)."""
    log = await read_log(rig.broker.bootstrap, rig.topic, len(driver.records))
    problems = log_differences(driver.records, log)
    result.require(not problems, f"the log is not the recorded input: {problems[:5]}")


def alive_or_fail(result: ScenarioResult, *children: Any) -> bool:
    ok = True
    for child in children:
        if not child.alive():
            ok = False
            result.failures.append(
                f"{child.name} exited ({child.returncode()}): {child.log_tail(600)}"
            )
    return ok
