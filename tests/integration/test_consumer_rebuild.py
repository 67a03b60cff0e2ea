"""A consumer whose Redis lost its state rebuilds it from the log (real broker, real Redis)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore
from recstream_consumer.rebuild import KafkaPartitionLog

from .conftest import (
    assert_counts_match,
    consumer_settings,
    create_topic,
    interaction_events,
    last_offsets,
    produce_events,
    running_consumer,
    wait_for_watermarks,
)

pytestmark = pytest.mark.integration

PARTITIONS = 3


async def test_the_partition_log_reads_ranges_and_knows_the_log_start(
    kafka_bootstrap: str, topic_name: str
) -> None:
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    sent = await produce_events(kafka_bootstrap, topic_name, interaction_events(300, users=9))
    ends = last_offsets(sent)
    log = KafkaPartitionLog(kafka_bootstrap, "test-rebuild-reader")
    await log.start()
    try:
        assert await log.log_start(topic_name, 1) == 0
        chunk = await log.read(topic_name, 1, 5, 50, 20)
        assert [r.offset for r in chunk] == list(range(5, 25))
        assert {(r.topic, r.partition) for r in chunk} == {(topic_name, 1)}
        values = {s.offset: s.value for s in sent if s.partition == 1}
        assert all(r.value == values[r.offset] for r in chunk)
        tail = await log.read(topic_name, 1, ends[1] - 2, ends[1] + 1, 100)
        assert [r.offset for r in tail] == [ends[1] - 2, ends[1] - 1, ends[1]]
        assert await log.read(topic_name, 1, 7, 7, 100) == []  # an empty range
        other = await log.read(topic_name, 2, 0, 3, 100)  # another partition, from its start
        assert [(r.partition, r.offset) for r in other] == [(2, 0), (2, 1), (2, 2)]
    finally:
        await log.stop()


async def test_a_flushed_redis_is_rebuilt_by_the_running_consumer(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: Redis,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        partitions=PARTITIONS,
        max_batch_records=50,
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    before = interaction_events(600, users=21)
    sent = await produce_events(kafka_bootstrap, topic_name, before)
    async with running_consumer(settings) as (consumer, task):
        await wait_for_watermarks(store, topic_name, last_offsets(sent), watch=[task])
        await redis_client.flushall()  # no batch comes: the state check finds it
        assert await store.partition_watermarks(topic_name) == {}
        await wait_for_watermarks(store, topic_name, last_offsets(sent), watch=[task])
        await assert_counts_match(store, before)
        assert consumer.readiness().ready
        after = interaction_events(150, users=21, start=len(before))
        sent = await produce_events(kafka_bootstrap, topic_name, after)
        await wait_for_watermarks(store, topic_name, last_offsets(sent), watch=[task])
        await assert_counts_match(store, before + after)
        registry = consumer.metrics.registry
        lost = [
            registry.get_sample_value(
                "recstream_consumer_state_lost_total", {"topic": topic_name, "partition": str(p)}
            )
            for p in range(PARTITIONS)
        ]
        rebuilt = registry.get_sample_value(
            "recstream_consumer_rebuilt_records_total", {"topic": topic_name}
        )
    assert not task.exception()
    assert lost == [1.0] * PARTITIONS
    assert rebuilt == len(before)
    assert consumer.counters.applied == len(before) + len(after)  # rebuilds are not batches
    assert not consumer.metrics.rebuilding_partitions
