"""What only a Redis Cluster does: the slot-by-slot commit and erasure, interrupted between
their steps and completed by a retry, and the eviction check of every primary.

The rest of the integration suite runs on a cluster as it is (``make test`` runs it a
second time with ``RECSTREAM_TEST_REDIS_MODE=cluster``); these tests start a local
three-primary cluster of their own when the suite's Redis is a single one.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from recstream.apply.batch import RawRecord, apply_batch
from recstream.apply.operations import erase_user
from recstream.contract.events import EventType
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.platform.redis import cluster_client, is_cluster
from recstream.store.eviction import EvictionPolicyError, check_eviction
from recstream.store.memory import MemoryStore
from recstream.store.redis import ClusterSteps, RedisStore
from recstream_cli.localstack import start_redis_cluster

from ..conftest import delete_keyspace
from ..unit.eventgen import BASE, make_event
from .conftest import (
    assert_counts_match,
    consumer_settings,
    create_topic,
    expected_counts,
    interaction_events,
    last_offsets,
    produce_events,
    running_consumer,
    wait_for_watermarks,
    wait_until,
)
from .redis_keyspace import read_keyspace

pytestmark = pytest.mark.integration
CONFIG = CoreConfig()
ERASED_AT_MINUTES = 500.0


@pytest.fixture(scope="session")
def cluster_url(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The suite's Redis when it is a cluster, else a local cluster for this module."""
    if is_cluster(redis_url):
        yield redis_url
        return
    cluster = start_redis_cluster(log_dir=tmp_path_factory.mktemp("own-cluster"))
    try:
        yield cluster.address
    finally:
        cluster.stop()


@pytest.fixture
async def cluster(cluster_url: str, keyspace: Keyspace) -> AsyncIterator[RedisCluster]:
    client = cluster_client(cluster_url)
    try:
        yield client
    finally:
        await delete_keyspace(client, keyspace)
        await client.aclose()


def records(first: int, count: int, users: int, *, minutes: float = 0.0) -> list[RawRecord]:
    """``count`` records of partition 0 from offset ``first``: views, carts and purchases of
    ``users`` users over 9 products in 3 categories, one minute apart."""
    out = []
    kinds = [EventType.PRODUCT_VIEW, EventType.ADD_TO_CART, EventType.PURCHASE_COMPLETED]
    for i in range(first, first + count):
        user = f"u{i % users}"
        event = make_event(
            f"e{i}", kinds[i % 3], user, minutes=minutes + i,
            product_id=f"p{(i * 7) % 9}", category=f"c{i % 3}", session_id=f"s{user}",
        )  # fmt: skip
        out.append(
            RawRecord("interactions", 0, i, 1_800_000_000_000, user.encode(),
                      json.dumps(event).encode())
        )  # fmt: skip
    return out


class Crash(Exception):
    """The writer dies after a given number of slot steps."""


class InterruptedSteps(ClusterSteps):
    """Runs only the first ``budget`` slot steps of what it is asked, then stops as a writer
    that died there would: the steps before stay written, nothing retries."""

    def __init__(self, steps: ClusterSteps, budget: int) -> None:
        self.__dict__.update(steps.__dict__)
        self.budget = budget

    async def _run(self, script: Any, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        allowed, self.budget = calls[: self.budget], self.budget - min(self.budget, len(calls))
        done = await super()._run(script, allowed)
        if len(allowed) < len(calls):
            raise Crash(f"died after {len(allowed)} of {len(calls)} steps")
        return done


def interrupted(store: RedisStore, budget: int) -> RedisStore:
    """A store on the same cluster whose next commit or erasure stops after ``budget`` steps."""
    broken = RedisStore(store.redis, store.keyspace)
    assert broken._steps is not None
    broken._steps = InterruptedSteps(broken._steps, budget)
    return broken


async def same_keyspace(cluster: RedisCluster, memory: MemoryStore, redis: RedisStore) -> None:
    """Users equal; statistics equal up to the order floating-point sums were taken in."""
    for user in memory.users:
        assert await redis.get_user(user) == await memory.get_user(user), user
    for key, members in memory.zsets.items():
        stored = {m.decode(): s for m, s in await cluster.zrange(key, 0, -1, withscores=True)}
        assert stored.keys() == {m for m, s in members.items()}, key
        for member, score in members.items():
            assert math.isclose(stored[member], score, rel_tol=1e-9, abs_tol=1e-9), (key, member)
    for key, value in memory.strings.items():
        assert (await cluster.get(key) or b"").decode() == value, key


async def test_a_batch_interrupted_between_slot_steps_is_completed_exactly_by_a_redelivery(
    cluster: RedisCluster, keyspace: Keyspace
) -> None:
    first, second = records(0, 60, users=6), records(60, 60, users=6)
    expected = MemoryStore(keyspace)
    for batch in (first, second):
        await apply_batch(expected, batch, CONFIG)
    store = RedisStore(cluster, keyspace)
    assert store.cluster
    await apply_batch(store, first, CONFIG)
    # the second batch, redelivered again and again, the writer dying one slot step later
    # each time until one gets through; a redelivery leaves out the steps done before (the
    # shards and users whose watermark covers the batch), so each one gets further
    budget = 0
    while True:
        try:
            await apply_batch(interrupted(store, budget), second, CONFIG)
        except Crash:
            watermarks = await store.partition_watermarks("interactions")
            assert watermarks == {0: 59}, "the partition's step is the last"
            budget += 1
            continue
        break
    assert budget >= 3, "the writer died in the shards' steps and in the users'"
    await same_keyspace(cluster, expected, store)
    assert await store.partition_watermarks("interactions") == {0: 119}
    users = [await store.get_user(f"u{i}") for i in range(6)]
    assert sum(u.total_events for u in users if u is not None) == 120, "each record once"


async def test_an_erasure_interrupted_between_slot_steps_and_retried_later_is_exact(
    cluster: RedisCluster, keyspace: Keyspace
) -> None:
    """Shards done before the interruption are not subtracted twice, even when the user's
    state moved on before the retry (events after the erasure time, folded meanwhile)."""
    erased_at = BASE.timestamp() + 60 * ERASED_AT_MINUTES
    before = records(0, 40, users=2)
    after = records(40, 10, users=2, minutes=ERASED_AT_MINUTES)  # later than the erasure
    expected = MemoryStore(keyspace)
    for batch in (before, after):
        await apply_batch(expected, batch, CONFIG)
    await erase_user(expected, "u1", erased_at, CONFIG, "test")

    store = RedisStore(cluster, keyspace)
    await apply_batch(store, before, CONFIG)
    with pytest.raises(Crash):
        await erase_user(interrupted(store, 1 + 3), "u1", erased_at, CONFIG, "test")
    progress = await store.erasure_progress("u1")
    assert len(progress) == 3, "the record and three shards were done"
    assert await store.get_user("u1") is not None
    await apply_batch(store, after, CONFIG)  # u1's later events, folded onto the old state
    receipt = await erase_user(store, "u1", erased_at, CONFIG, "test")
    assert receipt.erased
    assert await store.erasure_progress("u1") == {}, "the progress notes are removed"
    assert await store.get_user("u1") is None
    assert await store.erasures(["u0", "u1"]) == {"u1": erased_at}
    await same_keyspace(cluster, expected, store)


async def test_events_up_to_an_erasure_in_progress_are_dropped(
    cluster: RedisCluster, keyspace: Keyspace
) -> None:
    """The record is the erasure's first step: an event of the user at or before the
    erasure time that arrives while the erasure is half done is not applied."""
    erased_at = BASE.timestamp() + 60 * 100
    store = RedisStore(cluster, keyspace)
    await apply_batch(store, records(0, 20, users=2), CONFIG)
    with pytest.raises(Crash):
        await erase_user(interrupted(store, 1), "u1", erased_at, CONFIG, "test")
    report = await apply_batch(store, records(20, 20, users=2), CONFIG)  # minutes 20 .. 39
    u1 = await store.get_user("u1")
    assert u1 is not None
    assert u1.total_events == 10, "u1's new events were dropped"
    assert report.applied == 10
    await erase_user(store, "u1", erased_at, CONFIG, "test")
    assert await store.get_user("u1") is None


async def test_the_eviction_check_reads_every_primary(cluster: RedisCluster) -> None:
    assert await check_eviction(cluster, allow_eviction=False) == "noeviction"
    last = sorted(cluster.get_primaries(), key=lambda node: node.name)[-1]
    await cluster.config_set("maxmemory-policy", "allkeys-lru", target_nodes=last)
    try:
        with pytest.raises(EvictionPolicyError, match="allkeys-lru"):
            await check_eviction(cluster, allow_eviction=False)
    finally:
        await cluster.config_set("maxmemory-policy", "noeviction", target_nodes=last)


async def test_a_primary_that_comes_back_empty_is_found_and_rebuilt_from_the_log(
    cluster_url: str,
    cluster: RedisCluster,
    kafka_bootstrap: str,
    keyspace: Keyspace,
    topic_name: str,
) -> None:
    """Not the primary of the partition watermarks (its loss is found by them): one whose
    users and shards alone are gone. The slot markers show it; the keyspace is deleted and
    every partition rebuilt from the log, to what it was."""
    settings = consumer_settings(
        redis_url=cluster_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        partitions=3,
        max_batch_records=50,
        slot_check_seconds=0.3,
    )
    store = RedisStore(cluster, keyspace)
    await create_topic(kafka_bootstrap, topic_name, 3)
    events = interaction_events(600, users=30)
    sent = await produce_events(kafka_bootstrap, topic_name, events)
    async with running_consumer(settings) as (consumer, task):
        await wait_for_watermarks(store, topic_name, last_offsets(sent), watch=[task])
        await wait_until(lambda: marked(cluster, keyspace), 10, "the slot markers", watch=[task])
        before = await read_keyspace(cluster, keyspace.prefix)
        watermarks = cluster.get_node_from_key(keyspace.partition_watermarks(topic_name))
        victim = next(n for n in cluster.get_primaries() if n.name != watermarks.name)
        await cluster.flushall(target_nodes=victim)
        lost_users = [u for u in expected_counts(events) if await store.get_user(u) is None]
        assert lost_users, "the emptied primary held users"

        async def rebuilt() -> bool:
            return all([await store.get_user(u) is not None for u in lost_users])

        await wait_until(rebuilt, 30, "the lost users rebuilt", watch=[task])
        await wait_for_watermarks(store, topic_name, last_offsets(sent), watch=[task])
        await assert_counts_match(store, events)
        after = await read_keyspace(cluster, keyspace.prefix)
        registry = consumer.metrics.registry
        found = [
            registry.get_sample_value(
                "recstream_consumer_state_lost_total", {"topic": topic_name, "partition": str(p)}
            )
            for p in range(3)
        ]
    assert not task.exception()
    assert all(n is not None and n >= 1 for n in found), found
    # shard watermarks end where batches end; an item's category is the last one applied,
    # and the rebuild applies the partitions in another order (docs/reliability.md)
    kept = {k for k in before if ":wm:" not in k and not k.endswith(":icat")}
    assert kept == {k for k in after if ":wm:" not in k and not k.endswith(":icat")}
    for key in kept:
        old, new = before[key], after[key]
        assert old.type == new.type, key
        if old.type == "zset":
            assert old.value.keys() == new.value.keys(), key
            for member, score in old.value.items():
                assert math.isclose(new.value[member], score, rel_tol=1e-9), (key, member)
        else:  # user states (their compressed JSON), the partition watermarks, strings
            assert old.value == new.value, key


async def marked(cluster: RedisCluster, keyspace: Keyspace) -> bool:
    return await cluster.get(keyspace.slot_markers()) is not None
