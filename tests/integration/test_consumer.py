"""The consumer against a real broker and a real Redis, for both runtimes."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from recstream.contract.events import MAX_EVENT_BYTES, EventType
from recstream.contract.keyspace import Keyspace
from recstream.readmodel.load import load_trending
from recstream.store.redis import RedisStore
from recstream_consumer.deadletters import (
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    TOPIC_HEADER,
)
from recstream_consumer.service import Consumer
from recstream_consumer.settings import Runtime

from ..unit.eventgen import make_event
from .conftest import (
    RUNTIMES,
    assert_counts_match,
    consumer_settings,
    create_topic,
    encode,
    interaction_events,
    last_offsets,
    produce,
    produce_events,
    read_topic,
    running_consumer,
    wait_for_watermarks,
    wait_until,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_produced_events_reach_redis_with_exact_counts(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=PARTITIONS,
        max_batch_records=300,
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    before = interaction_events(1200, users=37)
    sent = await produce_events(kafka_bootstrap, topic_name, before)
    async with running_consumer(settings) as (consumer, task):
        await wait_for_watermarks(store, topic_name, last_offsets(sent))
        # events produced while the consumer runs arrive too
        after = interaction_events(300, users=37, start=len(before))
        sent = await produce_events(kafka_bootstrap, topic_name, after)
        await wait_for_watermarks(store, topic_name, last_offsets(sent))
    assert not task.exception()
    assert {s.partition for s in sent} == set(range(PARTITIONS))
    await assert_counts_match(store, before + after)
    assert consumer.counters.applied == len(before) + len(after)
    assert consumer.counters.dead_lettered == 0
    assert consumer.counters.batches > 1


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_bad_records_go_to_the_dead_letter_topic_and_good_ones_are_applied(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=PARTITIONS,
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    good = interaction_events(40, users=5)
    oversize = make_event("big", EventType.PAGE_VIEW, "u1")
    oversize["properties"] = {"blob": "x" * 200}
    oversize_bytes = encode(oversize) + b" " * MAX_EVENT_BYTES  # valid JSON, too long
    no_product = make_event("np", EventType.PRODUCT_VIEW, "u2")
    del no_product["product_id"]
    bad: dict[str, tuple[bytes, bytes]] = {
        "invalid_json": (b"u1", b'{"event_id": "x1", "event_type": '),
        "schema_violation": (b"u2", encode(no_product)),
        "unknown_event_type": (b"u3", encode({**good[0], "event_type": "teleport"})),
        "oversize": (b"u1", oversize_bytes),
        "key_mismatch": (b"u9", encode(make_event("km", EventType.PAGE_VIEW, "u1"))),
        "future_event": (b"u4", encode(make_event("fe", EventType.PAGE_VIEW, "u4", minutes=1e6))),
    }
    records = [(e["user_id"].encode(), encode(e)) for e in good]
    for index, pair in enumerate(bad.values()):  # spread the bad ones between good ones
        records.insert(index * 9 + 3, pair)
    sent = await produce(kafka_bootstrap, topic_name, records)
    async with running_consumer(settings) as (consumer, _):
        await wait_for_watermarks(store, topic_name, last_offsets(sent))
    await assert_counts_match(store, good)
    assert consumer.counters.dead_lettered == len(bad)

    letters = await read_topic(kafka_bootstrap, settings.kafka.dead_letter_topic, len(bad))
    assert len(letters) == len(bad)
    by_reason = {dict(m.headers)[REASON_HEADER].decode(): m for m in letters}
    assert set(by_reason) == set(bad)
    source = {(s.key, s.value): s for s in sent}
    for reason, (key, value) in bad.items():
        letter = by_reason[reason]
        headers = dict(letter.headers)
        assert (letter.key, letter.value) == (key, value), reason  # original bytes
        origin = source[(key, value)]
        assert headers[TOPIC_HEADER] == topic_name.encode()
        assert int(headers[PARTITION_HEADER]) == origin.partition
        assert int(headers[OFFSET_HEADER]) == origin.offset
        assert headers["dlq.detail"]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_events_stamped_in_2040_and_2100_are_applied_and_read_back_finite(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    """A producer whose clock is years ahead stamps the event and the record alike: the
    future rule lets the event through, and the statistics, forward-decayed in log space,
    hold it (as a plain sum its weight would overflow a double after about 2034)."""
    settings = consumer_settings(
        redis_url=redis_url, kafka_bootstrap=kafka_bootstrap, keyspace=keyspace,
        topic=topic_name, runtime=runtime, partitions=1,
    )  # fmt: skip
    await create_topic(kafka_bootstrap, topic_name, 1)
    good = interaction_events(30, users=3)
    sent = await produce_events(kafka_bootstrap, topic_name, good[:10])
    far_events = []
    for year in (2040, 2100):
        at = datetime(year, 1, 1, tzinfo=UTC)
        far = make_event(f"far-{year}", EventType.PRODUCT_VIEW, "u1")
        far["occurred_at"], far["product_id"] = at.isoformat(), f"far-{year}"
        far_events.append(far)
        sent += await produce(
            kafka_bootstrap,
            topic_name,
            [(b"u1", encode(far))],
            timestamp_ms=int(at.timestamp() * 1000),
        )
        sent += await produce_events(
            kafka_bootstrap, topic_name, good[10 if year == 2040 else 20 :][:10]
        )
    async with running_consumer(settings) as (consumer, task):
        await wait_for_watermarks(store, topic_name, last_offsets(sent))
    assert not task.exception()
    await assert_counts_match(store, good + far_events)
    assert consumer.counters.dead_lettered == 0
    view = settings.core.weight(EventType.PRODUCT_VIEW)
    for year in (2040, 2100):
        now = datetime(year, 1, 1, tzinfo=UTC).timestamp()
        popular = (await load_trending(store, now, settings.core)).popular
        assert popular[f"p:far-{year}"] == pytest.approx(view)  # its value at that time
        assert all(math.isfinite(v) for v in popular.values())


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_duplicate_event_id_at_another_offset_counts_once(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=PARTITIONS,
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    events = interaction_events(60, users=6)
    replayed = events[10:30]  # a producer retry sends them again, later in the log
    first = await produce_events(kafka_bootstrap, topic_name, events)
    async with running_consumer(settings) as (consumer, _):
        await wait_for_watermarks(store, topic_name, last_offsets(first))
        again = await produce_events(kafka_bootstrap, topic_name, replayed)
        await wait_for_watermarks(store, topic_name, last_offsets(again))
    assert {(s.partition, s.offset) for s in first}.isdisjoint(
        {(s.partition, s.offset) for s in again}
    )
    await assert_counts_match(store, events)
    assert consumer.counters.duplicates == len(replayed)
    assert consumer.counters.applied == len(events)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_two_instances_in_one_group_split_the_partitions_and_stay_exact(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    partitions = 6
    common = {
        "redis_url": redis_url,
        "kafka_bootstrap": kafka_bootstrap,
        "keyspace": keyspace,
        "topic": topic_name,
        "partitions": partitions,
        "runtime": runtime,
        "max_batch_records": 100,
    }
    first_settings = consumer_settings(**common)
    second_settings = consumer_settings(**common, group_id=first_settings.consumer.group_id)
    await create_topic(kafka_bootstrap, topic_name, partitions)
    early = interaction_events(600, users=50)
    sent = await produce_events(kafka_bootstrap, topic_name, early)
    async with running_consumer(first_settings) as (first, first_task):

        async def started() -> bool:
            return first.counters.records > 0

        await wait_until(started, 20, "the first consumer applies", watch=[first_task])
        async with running_consumer(second_settings) as (second, second_task):

            def owned(consumer: Consumer) -> set[int]:
                return {p for t, p in consumer.source.assignment() if t == topic_name}

            async def split() -> bool:
                one, two = owned(first), owned(second)
                return bool(one) and bool(two) and one.isdisjoint(two) and len(one | two) == 6

            await wait_until(split, 20, "both instances own partitions", watch=[first_task])
            late = interaction_events(600, users=50, start=len(early))
            sent += await produce_events(kafka_bootstrap, topic_name, late)
            await wait_for_watermarks(store, topic_name, last_offsets(sent))
            assert not second_task.done()
    await assert_counts_match(store, early + late)
    assert first.counters.applied > 0
    assert second.counters.applied > 0
    assert first.counters.applied + second.counters.applied == len(early) + len(late)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_catalog_records_reach_redis_and_bad_ones_are_dead_lettered(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    redis_client: Redis,
    topic_name: str,
) -> None:
    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=2,
    )
    catalog = settings.kafka.catalog_topic
    await create_topic(kafka_bootstrap, catalog, 2)
    products = [
        {"kind": "product", "product_id": f"p{i}", "category": "shoes", "price": 10.0 + i}
        for i in range(5)
    ]
    bad = b'{"kind": "product"}'
    records = [(f"p:{p['product_id']}".encode(), encode(p)) for p in products]
    records.append((b"p:none", bad))
    sent = await produce(kafka_bootstrap, catalog, records)
    async with running_consumer(settings) as (consumer, task):

        async def stored() -> bool:
            values = [await redis_client.get(keyspace.catalog_item(f"p:p{i}")) for i in range(5)]
            return all(values) and consumer.counters.dead_lettered == 1

        await wait_until(stored, 20, "the catalog in Redis", watch=[task])
    item = json.loads(await redis_client.get(keyspace.catalog_item("p:p3")) or b"null")
    assert item["category"] == "shoes"
    assert item["price"] == 13.0
    letters = await read_topic(kafka_bootstrap, settings.kafka.dead_letter_topic, 1)
    assert [m.value for m in letters] == [bad]
    headers = dict(letters[0].headers)
    assert headers[TOPIC_HEADER] == catalog.encode()
    assert int(headers[OFFSET_HEADER]) == next(s.offset for s in sent if s.value == bad)
