"""Redis flushed, and Redis restarted empty under load: detected, then rebuilt by replay.

Detection compares the partition watermarks in Redis with the group's committed
offsets (:func:`faults.probes.lost_state`): a commit is made only after the
batch is in Redis, so a committed offset above a missing (or lower) watermark
means Redis lost applied state. The rebuild replays the recorded input (what the
topic holds) through :func:`recstream.ingest.apply_batch` into the real Redis,
with the oracle's own batches, so the result must equal the oracle exactly.
"""

from __future__ import annotations

import asyncio
import time

from faults.checker import compare
from faults.driver import Driver, Outgoing
from faults.oracle import expect, replay
from faults.probes import MarkWatch, committed_offsets, lost_state
from faults.report import ScenarioResult, seconds
from faults.rig import Rig, RigOptions, open_rig
from faults.scenarios.common import (
    SuiteOptions,
    alive_or_fail,
    converge,
    driving,
    oracle_check,
    verify_log,
    workload,
)
from faults.snapshot import redis_snapshot
from recstream.store import RedisStore

REBUILD_BATCH = 500


async def _detect(rig: Rig, within: float) -> float | None:
    """Seconds until the watermarks are seen behind the committed offsets (None: not seen)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            marks = await rig.store().partition_watermarks(rig.topic)
            committed = await committed_offsets(
                rig.broker.bootstrap, rig.group, rig.topic, rig.partitions
            )
        except Exception:
            await asyncio.sleep(0.1)
            continue
        if lost_state(marks, committed):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def _rebuild(rig: Rig, driver: Driver, result: ScenarioResult, label: str) -> float:
    """Empty the keyspace, replay the recorded input, compare with the oracle exactly."""
    await rig.client.flushall()
    started = time.monotonic()
    await replay(RedisStore(rig.client, rig.keyspace), driver.records, rig.config, REBUILD_BATCH)
    took = time.monotonic() - started
    result.counts.setdefault("rebuild rate (records/s)", []).append(
        round(len(driver.records) / took)
    )
    expectation = await expect(driver.records, rig.config, rig.keyspace, REBUILD_BATCH)
    actual = await redis_snapshot(rig.client, rig.keyspace)
    result.add_check(label, compare(expectation.snapshot, actual, tolerance=0.0, exact_marks=True))
    return took


async def _phase(
    driver: Driver, watch: MarkWatch, items: list[Outgoing], rate: float
) -> float | None:
    await driver.send_paced(items, rate)
    return await converge(watch, driver, 120)


async def redis_lost(options: SuiteOptions) -> ScenarioResult:
    result = ScenarioResult("redis-lost", "Redis flushed / restarted empty: detect and rebuild")
    started = time.monotonic()
    rate = options.size(1000.0, 1500.0)
    size = options.size(2500, 10000)
    items = workload(options, size * 3, options.size(150, 400), "r")
    phases = [items[:size], items[size : 2 * size], items[2 * size :]]
    detections: list[float | None] = []
    rebuilds: list[float] = []
    async with (
        open_rig("redis-lost", options.workdir, RigOptions(runtime=options.runtime)) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        result.require(await _phase(driver, watch, phases[0], rate) is not None, "phase 1 stuck")
        await asyncio.sleep(1.0)  # the consumer commits what it applied
        # 1. FLUSHALL on a quiet system
        await rig.client.flushall()
        detections.append(await _detect(rig, 10))
        await consumer.terminate()
        rebuilds.append(await _rebuild(rig, driver, result, "rebuild after FLUSHALL (exact)"))
        consumer = rig.spawn_consumer()
        result.require(await _phase(driver, watch, phases[1], rate) is not None, "phase 2 stuck")
        # 2. Redis killed and restarted empty while the driver keeps producing
        producing = asyncio.create_task(driver.send_paced(phases[2][: size // 2], rate / 2))
        await asyncio.sleep(1.0)
        rig.redis.kill()
        rig.redis.start(empty=True)
        detections.append(await _detect(rig, 10))
        await producing
        await converge(watch, driver, 60)
        broken = compare((await expect(driver.records, rig.config, rig.keyspace)).snapshot,
                         await redis_snapshot(rig.client, rig.keyspace))  # fmt: skip
        result.counts["state before the rebuild (restart empty)"] = broken.describe()
        result.require(broken.lost > 0, "the checker did not see the lost state")
        await consumer.terminate()
        rebuilds.append(
            await _rebuild(rig, driver, result, "rebuild after an empty restart (exact)")
        )
        consumer = rig.spawn_consumer()
        last = await _phase(driver, watch, phases[2][size // 2 :], rate)
        result.require(last is not None, "phase 3 stuck")
        alive_or_fail(result, consumer)
        await consumer.terminate()
        result.require(all(d is not None for d in detections), f"detection times {detections}")
        result.counts["detection (flush / empty restart under load) (s)"] = [
            None if d is None else round(d, 2) for d in detections
        ]
        result.counts["rebuild times (s)"] = [round(r, 2) for r in rebuilds]
        result.resume_s = max(rebuilds)
        result.figure = f"detected in {seconds(detections)}; rebuilt exactly in {seconds(rebuilds)}"
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)
