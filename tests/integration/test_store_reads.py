"""RedisStore.read on a real Redis: every request type answers what MemoryStore.read answers,
whichever protocol the client speaks."""

from __future__ import annotations

from typing import Literal

import pytest
from redis.asyncio import Redis
from redis.cluster import RedisCluster

from recstream.contract.keyspace import Keyspace
from recstream.platform.redis import redis_client as open_redis
from recstream.store.memory import MemoryStore
from recstream.store.reads import FieldsRead, Read, StringRead, StringsRead, TopRead, UserRead
from recstream.store.redis import RedisStore

from ..conftest import sync_redis

pytestmark = pytest.mark.integration

ITEMS = [f"p:{n}" for n in range(40)]  # spread over every statistic shard


async def fill(redis: Redis, memory: MemoryStore, keys: Keyspace) -> None:
    for n, item in enumerate(ITEMS):
        if n % 3:  # a third of the items have no catalog entry
            value = f'{{"id": "{item}", "n": {n}}}'
            await redis.set(keys.catalog_item(item), value)
            memory.strings[keys.catalog_item(item)] = value
        icat = keys.stat("icat", item)
        await redis.hset(icat, item, f"c{n % 4}")
        memory.hashes.setdefault(icat, {})[item] = f"c{n % 4}"
    scores = {item: n * 1.25 + 1e-9 * n for n, item in enumerate(ITEMS)}
    await redis.zadd(keys.stat("tr1", "p:0"), scores)
    memory.zsets[keys.stat("tr1", "p:0")] = dict(scores)


@pytest.mark.parametrize("protocol", [2, 3])
async def test_every_read_answers_as_the_memory_store_does(
    redis_url: str, keyspace: Keyspace, protocol: Literal[2, 3]
) -> None:
    redis = open_redis(redis_url, protocol=protocol)
    memory = MemoryStore(keyspace)
    try:
        await fill(redis, memory, keyspace)
        catalog_keys = tuple(keyspace.catalog_item(i) for i in reversed(ITEMS))
        requests: list[Read] = [
            UserRead("nobody"),
            TopRead(keyspace.stat("tr1", "p:0"), 7),
            TopRead(keyspace.stat("tr1", "absent"), 7),
            StringRead(keyspace.catalog_item("p:1")),
            StringsRead(catalog_keys),
            StringsRead(()),
            StringsRead(
                (keyspace.catalog_item("p:2"), "no-such-key", keyspace.catalog_item("p:2"))
            ),
            FieldsRead(keyspace.shard_stat("icat", keyspace.shard_of("p:5")), ("p:5", "p:x")),
        ]
        from_redis = await RedisStore(redis, keyspace).read(requests)
        from_memory = await memory.read(requests)
    finally:
        await redis.aclose()
    assert len({keyspace.shard_of(i) for i in ITEMS}) == keyspace.shards
    assert from_redis == from_memory
    top = from_redis[1]
    assert [m for m, _ in top] == ITEMS[:-8:-1]
    assert top[0][1] == 39 * 1.25 + 39e-9, "scores keep their full precision"
    entries = from_redis[4]
    assert len(entries) == len(ITEMS), "one value per key, in key order"
    assert entries[-1] is None
    assert entries[-2] == '{"id": "p:1", "n": 1}'
    assert sum(v is None for v in entries) == len(range(0, 40, 3))
    assert from_redis[5] == []
    assert from_redis[6] == ['{"id": "p:2", "n": 2}', None, '{"id": "p:2", "n": 2}']
    assert from_redis[7] == ["c1", None]


def mget_calls(redis_url: str) -> int:
    """``MGET`` commands served so far, over every node."""
    client = sync_redis(redis_url)
    try:
        if isinstance(client, RedisCluster):
            nodes = client.info("commandstats", target_nodes=RedisCluster.ALL_NODES).values()
        else:
            nodes = [client.info("commandstats")]
    finally:
        client.close()
    return sum(int(node.get("cmdstat_mget", {}).get("calls", 0)) for node in nodes)


async def test_a_strings_read_takes_one_mget_per_hash_tag_on_a_cluster_and_one_elsewhere(
    redis_url: str, keyspace: Keyspace
) -> None:
    redis = open_redis(redis_url)
    store = RedisStore(redis, keyspace)
    keys = tuple(keyspace.catalog_item(i) for i in ITEMS)
    try:
        before = mget_calls(redis_url)
        (values,) = await store.read([StringsRead(keys)])
        after = mget_calls(redis_url)
    finally:
        await redis.aclose()
    assert values == [None] * len(ITEMS)
    assert after - before == (keyspace.shards if store.cluster else 1)
