"""Guarantees that do not hold yet, as tests that fail until they do (strict xfail).

When the gap is closed the test passes, the strict xfail turns that into a
failure, and the marker is removed.
"""

from __future__ import annotations

import asyncio

import pytest
from faults.oracle import expect
from faults.rig import open_rig
from faults.scenarios.common import SuiteOptions, converge, driving, workload
from faults.snapshot import redis_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.mark.xfail(
    strict=True,
    reason="the consumer applies new batches onto a Redis that came back empty: the partition "
    "watermark is missing but the batch does not start the partition, and nothing checks that "
    "(docs/reliability.md, 'What does not hold')",
)
async def test_the_consumer_builds_no_partial_state_on_a_redis_that_came_back_empty(
    options: SuiteOptions,
) -> None:
    items = workload(options, 2000, 40, "g")
    async with open_rig("gap", options.workdir) as rig, driving(rig) as (driver, watch):
        consumer = rig.spawn_consumer()
        await driver.send(items[:1000])
        assert await converge(watch, driver, 60) is not None
        await asyncio.sleep(1.0)  # the applied offsets are committed
        rig.redis.kill()
        rig.redis.start(empty=True)
        await driver.send(items[1000:])
        await converge(watch, driver, 30)  # applied, or refused: both end here
        expected = (await expect(driver.records, rig.config, rig.keyspace)).snapshot.users
        actual = (await redis_snapshot(rig.client, rig.keyspace)).users
        await consumer.terminate()
    partial = {u: (s.total_events, expected[u].total_events) for u, s in actual.items()
               if s.total_events != expected[u].total_events}  # fmt: skip
    assert not partial, f"{len(partial)} users hold partial state (found, expected): {partial}"
