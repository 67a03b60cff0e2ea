"""A Redis outage: the consumer pauses, retries with backoff, commits nothing ahead, recovers."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore
from recstream_consumer.aiokafka_source import AiokafkaSource
from recstream_consumer.settings import Runtime

from .conftest import (
    RUNTIMES,
    TcpProxy,
    assert_counts_match,
    consumer_settings,
    create_topic,
    interaction_events,
    last_offsets,
    produce_events,
    running_consumer,
    total_events,
    wait_for_watermarks,
    wait_until,
)

# The outage is a TCP proxy cut in front of one Redis; a cluster client learns the nodes'
# own addresses and would go around it. On a cluster the fault scenarios redis-hang and
# redis-primary-killed take Redis away instead.
pytestmark = [pytest.mark.integration, pytest.mark.single_redis]

PARTITIONS = 3


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_redis_outage_pauses_the_consumer_and_loses_nothing(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    redis = urlparse(redis_url)
    assert redis.port is not None
    proxy = TcpProxy(redis.port)
    await proxy.start()
    settings = consumer_settings(
        redis_url=f"redis://127.0.0.1:{proxy.port}{redis.path}",
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=PARTITIONS,
        max_batch_records=50,
        retry_budget_seconds=1.0,  # short: the batch is also given up and read again
    )
    settings = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"socket_timeout_seconds": 0.5})}
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    before = interaction_events(300, users=20)
    during = interaction_events(300, users=20, start=len(before))
    users = {e["user_id"] for e in before + during}
    sent = await produce_events(kafka_bootstrap, topic_name, before)
    async with running_consumer(settings) as (consumer, task):
        await wait_for_watermarks(store, topic_name, last_offsets(sent))
        await proxy.cut()
        sent = await produce_events(kafka_bootstrap, topic_name, during)

        async def retrying() -> bool:
            return consumer.counters.retries >= 3

        await wait_until(retrying, 20, "the consumer retries", watch=[task])
        if isinstance(consumer.source, AiokafkaSource):
            assert consumer.source.consumer.paused(), "fetching is paused during the outage"
        assert await total_events(store, users) == len(before)  # nothing applied meanwhile

        async def gave_up_a_batch() -> bool:
            return consumer.counters.abandoned_batches > 0

        await wait_until(gave_up_a_batch, 20, "a batch outlives the retry budget", watch=[task])
        assert not task.done(), "an outage does not stop the consumer"
        await proxy.start()
        await wait_for_watermarks(store, topic_name, last_offsets(sent))
    assert not task.exception()
    await assert_counts_match(store, before + during)
    assert consumer.counters.applied == len(before) + len(during)
