"""Redis flushed, and Redis restarted empty under load: the consumer finds it and rebuilds.

1. ``FLUSHALL`` on a quiet system: no batch arrives, the consumer's state check
   (every second) finds its partitions without a watermark and rebuilds them
   from the log start.
2. Redis killed and restarted empty while the driver keeps producing: the
   store refuses the next batch of every partition (it does not continue the
   missing state) and the consumer rebuilds the partition before applying it.
3. The replay path: with the consumer stopped, Redis is emptied and the
   recorded input (what the topic holds) is replayed through
   :func:`recstream.apply.batch.apply_batch` with the oracle's own batches, so the
   result must equal the oracle bit for bit; a consumer started afterwards goes
   on from its commits with no rebuild.

Detection is read from the consumer's ``recstream_consumer_state_lost_total``;
after each rebuild the state must equal the oracle of everything sent so far,
and no partition watermark may lie below the group's committed offset
(:func:`faults.probes.lost_state`).
"""

from __future__ import annotations

import asyncio
import time

from faults.checker import compare
from faults.driver import Driver, Outgoing
from faults.oracle import expect, replay
from faults.probes import MarkWatch, committed_offsets, consumer_metrics, lost_state
from faults.report import ScenarioResult, seconds
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
from faults.snapshot import redis_snapshot
from faults.stack import free_port
from recstream.store.redis import RedisStore

REPLAY_BATCH = 500
LOST = "recstream_consumer_state_lost_total"
REBUILT = "recstream_consumer_rebuilt_records_total"


async def _metric(port: int, name: str) -> float | None:
    try:
        return (await consumer_metrics(port)).get(name, 0.0)
    except Exception:  # the consumer is busy or restarting: ask again
        return None


def _since(moment: float, waited: float | None) -> float | None:
    """Seconds from ``moment`` to now, when the wait that just ended succeeded."""
    return None if waited is None else time.monotonic() - moment


def _rounded(values: list[float | None]) -> list[float | None]:
    return [None if v is None else round(v, 2) for v in values]


async def _detected(port: int, before: float, since: float, within: float) -> float | None:
    """Seconds from ``since`` until the consumer counted a partition that lost its state."""
    while time.monotonic() - since < within:
        value = await _metric(port, LOST)
        if value is not None and value > before:
            return time.monotonic() - since
        await asyncio.sleep(0.05)
    return None


async def _check_rebuilt(rig: Rig, driver: Driver, result: ScenarioResult, label: str) -> None:
    """The state equals the oracle of everything sent; no watermark is below a commit."""
    expectation = await expect(
        driver.records, rig.config, rig.keyspace, erasure_log=rig.erasure_log
    )
    actual = await redis_snapshot(rig.client, rig.keyspace)
    result.add_check(label, compare(expectation.snapshot, actual))
    await asyncio.sleep(1.5)  # the consumer commits what it applied
    marks = await rig.store().partition_watermarks(rig.topic)
    committed = await committed_offsets(rig.broker.bootstrap, rig.group, rig.topic, rig.partitions)
    behind = lost_state(marks, committed)
    result.require(not behind, f"{label}: watermarks behind the commits {behind}")


async def _replay(rig: Rig, driver: Driver, result: ScenarioResult) -> float:
    """Empty the keyspace, replay the recorded input, compare with the oracle exactly."""
    await rig.client.flushall()
    started = time.monotonic()
    await replay(RedisStore(rig.client, rig.keyspace), driver.records, rig.config, REPLAY_BATCH)
    took = time.monotonic() - started
    result.counts["replay rate (records/s)"] = round(len(driver.records) / took)
    expectation = await expect(driver.records, rig.config, rig.keyspace, REPLAY_BATCH)
    actual = await redis_snapshot(rig.client, rig.keyspace)
    check = compare(expectation.snapshot, actual, tolerance=0.0, exact_marks=True)
    result.add_check("rebuild by replay (bit-exact)", check)
    return took


async def _phase(
    driver: Driver, watch: MarkWatch, items: list[Outgoing], rate: float
) -> float | None:
    await driver.send_paced(items, rate)
    return await converge(watch, driver, 120)


async def redis_lost(options: SuiteOptions) -> ScenarioResult:
    result = ScenarioResult("redis-lost", "Redis flushed / restarted empty: found and rebuilt")
    started = time.monotonic()
    rate = options.size(1000.0, 1500.0)
    size = options.size(2500, 10000)
    items = workload(options, size * 3, options.size(150, 400), "r")
    phases = [items[:size], items[size : 2 * size], items[2 * size :]]
    detections: list[float | None] = []
    rebuilds: list[float | None] = []  # until what was sent before the fault is back
    caught_up: list[float | None] = []  # until everything sent was applied
    async with (
        open_rig("redis-lost", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        port = free_port()
        consumer = rig.spawn_consumer(http_port=port)
        result.require(await _phase(driver, watch, phases[0], rate) is not None, "phase 1 stuck")
        await asyncio.sleep(1.0)  # the consumer commits what it applied
        # 1. FLUSHALL on a quiet system
        before = await _metric(port, LOST) or 0.0
        flushed = time.monotonic()
        await rig.client.flushall()
        detections.append(await _detected(port, before, flushed, 20))
        rebuilds.append(_since(flushed, await converge(watch, driver, 120)))
        caught_up.append(rebuilds[-1])
        await _check_rebuilt(rig, driver, result, "rebuilt by the consumer after FLUSHALL")
        result.require(await _phase(driver, watch, phases[1], rate) is not None, "phase 2 stuck")
        # 2. Redis killed and restarted empty while the driver keeps producing
        before = await _metric(port, LOST) or 0.0
        producing = asyncio.create_task(driver.send_paced(phases[2][: size // 2], rate / 2))
        await asyncio.sleep(1.0)
        rig.redis.kill()
        applied = driver.last_offsets()  # at most this much was in Redis
        rig.redis.start(empty=True)
        restarted = time.monotonic()
        detections.append(await _detected(port, before, restarted, 30))
        rebuilds.append(_since(restarted, await watch.wait_caught_up(applied, 120)))
        await producing
        caught_up.append(_since(restarted, await converge(watch, driver, 120)))
        await _check_rebuilt(rig, driver, result, "rebuilt by the consumer after an empty restart")
        if not alive_or_fail(result, consumer):  # its log says why, not a refused connection
            return result.finish(started)
        totals = await consumer_metrics(port)
        result.counts["partitions found without their state (state_lost_total)"] = int(totals[LOST])
        result.counts["records re-applied from the log"] = int(totals[REBUILT])
        result.require(
            totals[LOST] == 2 * rig.partitions,
            f"{totals[LOST]} partitions counted as lost, {2 * rig.partitions} expected",
        )
        alive_or_fail(result, consumer)
        await consumer.terminate()
        # 3. the replay path, then a consumer that goes on from its commits
        replayed = await _replay(rig, driver, result)
        port = free_port()
        consumer = rig.spawn_consumer(http_port=port)
        last = await _phase(driver, watch, phases[2][size // 2 :], rate)
        result.require(last is not None, "phase 3 stuck")
        result.require(await _metric(port, LOST) == 0, "a rebuild after the replay")
        alive_or_fail(result, consumer)
        await consumer.terminate()
        result.require(all(d is not None for d in detections), f"detection times {detections}")
        result.require(all(r is not None for r in caught_up), f"catch-up times {caught_up}")
        result.counts["detection (flush quiet / empty restart under load) (s)"] = _rounded(
            detections
        )
        result.counts["everything sent before the fault in Redis again after (s)"] = _rounded(
            rebuilds
        )
        result.counts["everything sent applied after (s)"] = _rounded(caught_up)
        result.counts["replay rebuild (s)"] = round(replayed, 2)
        known = [r for r in rebuilds if r is not None]
        result.resume_s = max(known) if known else None
        result.figure = (
            f"the consumer found the loss in {seconds(detections)} and rebuilt the state "
            f"exactly: what was sent before the fault was back in {seconds(rebuilds)}; "
            f"replay rebuild bit-exact in {replayed:.2f} s"
        )
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)
