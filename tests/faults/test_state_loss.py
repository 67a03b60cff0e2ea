"""A Redis that comes back empty while the consumer runs: found and rebuilt by the consumer.

The consumer's next batch of each partition does not continue the partition's
(missing) state, so the store refuses it; the consumer rebuilds the partition
from the log start and applies the batch after it. The end state must equal the
oracle of the whole input, with nothing partial in between (``redis-lost`` is the
scenario with the figures).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from faults.checker import compare
from faults.oracle import expect
from faults.probes import committed_offsets, consumer_metrics
from faults.report import ScenarioResult
from faults.rig import Rig, RigOptions, open_rig
from faults.scenarios.common import SuiteOptions, converge, driving, verify_log, workload
from faults.snapshot import redis_snapshot
from faults.stack import free_port

from recstream.apply.batch import RawRecord

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


async def offsets_committed(rig: Rig, records: Sequence[RawRecord], within: float = 120.0) -> None:
    """Wait until the group has committed everything applied (what a restart reads on from)."""
    ends: dict[int, int] = {}
    for record in records:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    deadline = time.monotonic() + within
    while True:
        committed = await committed_offsets(
            rig.broker.bootstrap, rig.group, rig.topic, rig.partitions
        )
        if all(committed.get(p, 0) >= end for p, end in ends.items()):
            return
        assert time.monotonic() < deadline, f"committed {committed}, applied up to {ends}"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("runtime", ["aiokafka", "faust"])
async def test_the_consumer_rebuilds_a_redis_that_came_back_empty_to_the_exact_state(
    options: SuiteOptions, runtime: str
) -> None:
    items = workload(options, 2000, 40, "g")
    async with (
        open_rig("gap", options.workdir, RigOptions(runtime=runtime)) as rig,
        driving(rig) as (driver, watch),
    ):
        port = free_port()
        consumer = rig.spawn_consumer(http_port=port)
        await driver.send(items[:1000])
        assert await converge(watch, driver, 90) is not None
        await offsets_committed(rig, driver.records)
        rig.redis.kill()
        rig.redis.start(empty=True)
        await driver.send(items[1000:])
        assert await converge(watch, driver, 60) is not None, consumer.log_tail(1500)
        expected = await expect(
            driver.records, rig.config, rig.keyspace, erasure_log=rig.erasure_log
        )
        check = compare(expected.snapshot, await redis_snapshot(rig.client, rig.keyspace))
        metrics = await consumer_metrics(port)
        log_check = ScenarioResult("gap", "the log holds the input")
        await verify_log(rig, driver, log_check)
        assert consumer.alive()
        await consumer.terminate()
    assert not log_check.failures
    assert check.exact, f"{check.describe()}: {check.summary()['examples'][:5]}"
    assert len(expected.snapshot.users) == 40
    assert metrics["recstream_consumer_state_lost_total"] == rig.partitions  # each one, once
    assert metrics["recstream_consumer_rebuilt_records_total"] >= 1000
    assert metrics.get("recstream_consumer_rebuilding", 0.0) == 0  # no partition left in it
