"""Broker restart: the broker process stopped and started again, clients left alone.

The Tansu broker keeps its log in memory, so a restart comes back empty. The
scenario restores the recorded log into the restarted broker (each record to its
partition, in offset order, so every record gets its old offset back, as a
persistent broker would have kept it) before producing the second half. The
consumer, its dead-letter producer and the driver's producer are not restarted:
they have to reconnect by themselves. The consumer group's committed offsets are
lost with the broker, so the consumer reads the restored log again from the
start; the watermarks turn that replay into no-ops. With Apache Kafka and its
log on disk the restore step is not needed; this suite does not run one.
"""

from __future__ import annotations

import asyncio
import time

from faults.report import ScenarioResult
from faults.rig import open_rig
from faults.scenarios.common import (
    SuiteOptions,
    alive_or_fail,
    converge,
    driving,
    oracle_check,
    verify_log,
    workload,
)


async def broker_restart(options: SuiteOptions) -> ScenarioResult:
    result = ScenarioResult("broker-restart", "broker restart (in-memory broker, log restored)")
    started = time.monotonic()
    rate = options.size(800.0, 1200.0)
    size = options.size(3000, 12000)
    down = options.size(3.0, 10.0)
    items = workload(options, size * 2, options.size(150, 400), "b")
    async with (
        open_rig("broker-restart", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        await driver.send_paced(items[:size], rate)
        result.require(await converge(watch, driver, 120) is not None, "first half not applied")
        pid = consumer.pid
        rig.broker.stop()
        await asyncio.sleep(down)
        rig.broker.start()
        back_at = time.monotonic()
        await rig.create_topics()
        restore_started = time.monotonic()
        problems = await driver.restore(list(driver.records))
        result.timings["log restore (s)"] = time.monotonic() - restore_started
        result.require(not problems, f"the restored log differs: {problems[:5]}")
        marks_before = watch.latest
        await driver.send_paced(items[size:], rate)
        resumed = None
        deadline = time.monotonic() + 120
        while resumed is None and time.monotonic() < deadline:
            latest = watch.latest
            if any(o > marks_before.get(p, -1) for p, o in latest.items()):
                resumed = time.monotonic() - back_at
            await asyncio.sleep(0.05)
        caught = await converge(watch, driver, 180)
        result.require(resumed is not None, "the consumer did not resume after the restart")
        result.require(caught is not None, "the second half was not applied")
        result.require(
            consumer.alive() and consumer.pid == pid, "the consumer was not the same process"
        )
        alive_or_fail(result, consumer)
        result.timings["broker down (s)"] = down
        result.timings["first new record applied after the broker was back (s)"] = resumed
        result.resume_s = resumed
        result.figure = (
            f"broker down {down:.0f} s; same consumer and producer processes applied new records "
            f"{resumed or float('nan'):.1f} s after it was back"
        )
        await consumer.terminate()
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)
