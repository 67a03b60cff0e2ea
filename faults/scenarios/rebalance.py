"""Rebalances under load: 1 -> 3 consumers, then a graceful stop and a kill -9 back to 1."""

from __future__ import annotations

import asyncio
import time

from faults.probes import MarkWatch
from faults.report import ScenarioResult
from faults.rig import Rig, open_rig
from faults.scenarios.common import (
    SuiteOptions,
    alive_or_fail,
    converge,
    driving,
    oracle_check,
    verify_log,
    workload,
)
from faults.scenarios.crash import assigned, wait_split
from faults.stack import Child


def _ownership(rig: Rig, members: list[Child]) -> tuple[dict[str, list[int]], bool]:
    """Each live member's partitions (from its log), and whether they split the topic exactly."""
    owned = {m.name: sorted(assigned(m.log_tail(50_000), rig.topic)) for m in members if m.alive()}
    flat = [p for parts in owned.values() for p in parts]
    return owned, sorted(flat) == list(range(rig.partitions))


async def _settle(
    watch: MarkWatch, moment: float, window: float, label: str, seen: dict[str, dict[int, float]]
) -> float:
    """The longest per-partition stall in the ``window`` seconds after ``moment``."""
    await asyncio.sleep(max(0.0, moment + window - time.monotonic()))
    stalls = watch.partition_stalls(moment, moment + window)
    seen[label] = {p: round(s, 2) for p, s in sorted(stalls.items())}
    return max(stalls.values(), default=window)


async def rebalance(options: SuiteOptions) -> ScenarioResult:
    result = ScenarioResult("rebalance", "rebalance 1 -> 3 -> 1 consumers under load")
    started = time.monotonic()
    cycles = options.size(1, 2)
    window = options.size(10.0, 14.0)
    rate = options.size(400.0, 600.0)
    items = workload(options, int(rate * (cycles * 3 * window + 20)), options.size(200, 500), "x")
    pauses: dict[str, float] = {}
    stalls: dict[str, dict[int, float]] = {}
    async with (
        open_rig("rebalance", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        stop = asyncio.Event()
        producing = asyncio.create_task(driver.send_paced(items, rate, stop=stop))
        first = rig.spawn_consumer("a")
        await watch.wait_progress(time.monotonic(), 60)
        await asyncio.sleep(3.0)
        steady = time.monotonic()
        label = "steady state (no change), longest stall"
        pauses[label] = await _settle(watch, steady, 4.0, label, stalls)
        for n in range(cycles):
            moment = time.monotonic()
            second, third = rig.spawn_consumer("b"), rig.spawn_consumer("c")
            label = f"{n + 1}: 1 -> 3 (two members join)"
            pauses[label] = await _settle(watch, moment, window, label, stalls)
            if options.runtime == "aiokafka":  # the ownership is read from its log lines
                await wait_split(rig.topic, rig.partitions, [first, second, third], 30)
                owned, exact = _ownership(rig, [first, second, third])
                result.counts[f"{n + 1}: partitions with 3 members"] = owned
                result.require(exact and len(owned) == 3, f"cycle {n + 1}: 3 members own {owned}")
            moment = time.monotonic()
            took = await second.terminate()
            result.require(took is not None and took < 5, f"graceful stop took {took}")
            label = f"{n + 1}: 3 -> 2 (SIGTERM)"
            pauses[label] = await _settle(watch, moment, window, label, stalls)
            moment = time.monotonic()
            third.kill()
            label = f"{n + 1}: 2 -> 1 (kill -9)"
            pauses[label] = await _settle(watch, moment, window, label, stalls)
            if options.runtime == "aiokafka":
                await wait_split(rig.topic, rig.partitions, [first], 30)
                owned, exact = _ownership(rig, [first])
                result.require(exact, f"cycle {n + 1}: the last member owns {owned}")
        stop.set()
        result.counts["records sent"] = await producing
        caught = await converge(watch, driver, 180)
        result.require(caught is not None, "some partition was left unconsumed")
        alive_or_fail(result, first)
        result.counts["longest partition stall after each change (s)"] = {
            k: round(v, 2) for k, v in pauses.items()
        }
        result.counts["stall per partition after each change (s)"] = stalls
        changes = [v for k, v in pauses.items() if "steady" not in k]
        result.resume_s = max(changes)
        result.figure = "pause per change: " + ", ".join(
            f"{k.split(': ', 1)[1]} {v:.1f} s" for k, v in pauses.items() if k.startswith("1:")
        )
        await first.terminate()
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)
