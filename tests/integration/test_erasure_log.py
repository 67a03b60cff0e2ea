"""Erasures survive the loss of Redis: the erasure log on Kafka is the record.

The API writes an erasure to the compacted erasures topic before it erases in Redis;
a consumer that finds its state lost restores the erasures from the log before it
re-applies a single event. The oracle is the batch core applied to the same log into
a fresh keyspace after the same erasures: the rebuilt state must equal it key by key.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from recstream.apply.batch import apply_batch
from recstream.apply.operations import erase_user, restore_erasures
from recstream.contract.erasures import ErasureNotice, decode_notice
from recstream.contract.events import validate_event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.training import landmark_for
from recstream.platform.redis import redis_client as open_redis
from recstream.store.redis import RedisStore
from recstream_cli.replay import Pacer, to_kafka, to_redis
from recstream_consumer.topics import TopicSpec, ensure_topics

from .conftest import (
    consumer_settings,
    read_topic,
    running_consumer,
    wait_for_watermarks,
    wait_until,
)
from .test_api import ADMIN_KEY, PREFIX, api_settings, serve
from .test_api_recommend import as_records, shop_events
from .test_replay import assert_same_state, dump, sample_events

pytestmark = pytest.mark.integration

PARTITIONS = 3
ERASED = 3


async def forget(client: Redis, keyspace: Keyspace) -> None:
    """Redis loses everything of the deployment, the erasures included, at once (one
    DEL, as a FLUSHALL would): a consumer that notices never sees half of it gone."""
    keys = [key async for key in client.scan_iter(match=f"{keyspace.prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


@pytest.mark.parametrize("topics_first", [True, False], ids=["topics-first", "erasures-later"])
async def test_erased_users_stay_erased_when_redis_loses_everything_and_is_rebuilt(
    datasets: Path, kafka_bootstrap: str, redis_url: str, topic_name: str, topics_first: bool
) -> None:
    """``erasures-later``: the erasures topic appears while the consumer runs (created by
    hand; the consumer does not create topics), so it is not in the metadata the consumer
    had at its start."""
    events = sample_events(datasets, 1500)
    core = CoreConfig(decay_landmark=landmark_for(events))
    live, oracle, unerased = (Keyspace(prefix=f"t{uuid.uuid4().hex[:10]}") for _ in range(3))
    client = open_redis(redis_url)
    try:
        await to_kafka(
            iter(events), kafka_bootstrap, topic_name, PARTITIONS, Pacer(None, None), "event"
        )
        # the log without erasures, applied by the batch core: the watermarks to wait for,
        # and the control that shows the erased users' state would come back
        control = RedisStore(client, unerased)
        await to_redis(iter(events), control, topic_name, PARTITIONS, core, 500, "event")
        expected = await control.partition_watermarks(topic_name)
        counts = Counter(e.user_id for e in events if not e.user_id.startswith("anon"))
        victims = [user for user, _ in counts.most_common(ERASED)]

        settings = consumer_settings(
            redis_url=redis_url, kafka_bootstrap=kafka_bootstrap, keyspace=live,
            topic=topic_name, partitions=PARTITIONS, max_batch_records=200,
            create_topics=topics_first,
        ).model_copy(update={"core": core})  # fmt: skip
        api = api_settings(redis_url, kafka_bootstrap, live, topic_name, core=core)
        assert api.kafka.erasures_topic == settings.kafka.erasures_topic
        live_store = RedisStore(client, live)
        async with running_consumer(settings) as (_, task):
            await wait_for_watermarks(live_store, topic_name, expected)
            if not topics_first:
                erasures = TopicSpec(api.kafka.erasures_topic, 1, 1, {"cleanup.policy": "compact"})
                await ensure_topics(kafka_bootstrap, [erasures])
            async with serve(api) as http:
                for user in victims:
                    erased = await http.delete(
                        f"{PREFIX}/users/{user}", headers={"X-API-Key": ADMIN_KEY}
                    )
                    assert erased.status_code == 200, erased.text
                    assert erased.json()["erased"] is True
            assert all([await live_store.get_user(u) is None for u in victims])

            await forget(client, live)
            await wait_for_watermarks(live_store, topic_name, expected, within=60.0)
        assert not task.exception()

        records = await read_topic(kafka_bootstrap, settings.kafka.erasures_topic, ERASED)
        notices = [decode_notice(r.key, r.value) for r in records]
        assert sorted(n.user_id for n in notices) == sorted(victims)
        assert {n.requested_by for n in notices} == {"api-key:ops"}

        oracle_store = RedisStore(client, oracle)
        assert await restore_erasures(oracle_store, notices, core) == ERASED
        await to_redis(iter(events), oracle_store, topic_name, PARTITIONS, core, 500, "event")

        rebuilt = await dump(client, live)
        # how far the erasure log was restored: all of it, its one partition
        assert rebuilt.pop(":erasures:log") == {"0": str(ERASED)}
        for user in victims:
            assert await live_store.get_user(user) is None, f"{user} came back"
            assert await control.get_user(user) is not None, "the control keeps them"
        assert sorted(await live_store.erasures(victims)) == sorted(victims)
        assert_same_state(rebuilt, await dump(client, oracle), topic_name)
        assert rebuilt != await dump(client, unerased)
    finally:
        for keyspace in (live, oracle, unerased):
            await forget(client, keyspace)
        await client.aclose()


async def test_an_erasure_only_the_log_took_is_applied_by_the_running_consumer(
    kafka_bootstrap: str, redis_url: str, redis_client: Redis, keyspace: Keyspace, topic_name: str
) -> None:
    """The API wrote the erasure to the log and died before Redis: the consumer, which
    follows the log every ``erasure_sync_seconds``, erases the user without a restart."""
    settings = consumer_settings(
        redis_url=redis_url, kafka_bootstrap=kafka_bootstrap, keyspace=keyspace,
        topic=topic_name, partitions=1, erasure_sync_seconds=0.5,
    )  # fmt: skip
    store = RedisStore(redis_client, keyspace)
    events = [validate_event(raw) for raw in shop_events()]
    user = "u-me"
    await to_kafka(iter(events), kafka_bootstrap, topic_name, 1, Pacer(None, None), "event")
    async with running_consumer(settings) as (_, task):
        await wait_for_watermarks(store, topic_name, {0: len(events) - 1}, watch=[task])
        state = await store.get_user(user)
        assert state is not None
        erased_at = max(e.occurred_at.timestamp() for e in events) + 1.0
        key, value = ErasureNotice(user, erased_at, "admin:ops").encode()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(settings.kafka.erasures_topic, value, key=key)
        finally:
            await producer.stop()

        async def erased() -> bool:
            return await store.get_user(user) is None

        await wait_until(erased, 5.0, f"the erasure of {user} from the log", watch=[task])
    assert await store.erasures([user]) == {user: erased_at}
    assert await store.erasure_log_position() == {0: 1}


async def test_an_erasure_the_log_did_not_take_is_refused_and_redis_is_untouched(
    redis_url: str, redis_client: Redis, keyspace: Keyspace, topic_name: str
) -> None:
    store = RedisStore(redis_client, keyspace)
    settings = api_settings(redis_url, "127.0.0.1:9", keyspace, topic_name)
    await apply_batch(store, as_records(shop_events(), topic_name), settings.core)
    assert await store.get_user("u-me") is not None
    async with serve(settings) as http:
        response = await http.delete(f"{PREFIX}/users/u-me", headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 503, response.text
    assert "Retry-After" in response.headers
    assert await store.get_user("u-me") is not None
    assert await store.erasures(["u-me"]) == {}


async def test_a_later_erasure_of_a_user_without_state_moves_the_record_forward(
    redis_client: Redis, keyspace: Keyspace
) -> None:
    store = RedisStore(redis_client, keyspace)
    core = CoreConfig()
    first = await erase_user(store, "gone", 1_000.0, core, requested_by="admin:ops")
    again = await erase_user(store, "gone", 500.0, core, requested_by="admin:ops")
    later = await erase_user(store, "gone", 2_000.0, core, requested_by="admin:ops")
    assert (first.erased, again.erased, later.erased) == (True, False, False)
    assert await store.erasures(["gone", "other"]) == {"gone": 2_000.0}
