"""The Redis adapter against a real Redis: same results as the in-memory fake."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from recstream.apply.batch import RawRecord, apply_batch
from recstream.contract.events import EventType
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.model.state import UserState, Watermark
from recstream.store.memory import MemoryStore
from recstream.store.port import (
    BatchCommit,
    StateLostError,
    StateStore,
    UserWrite,
    WatermarkConflictError,
)
from recstream.store.redis import RedisStore

from ..unit.eventgen import make_event

pytestmark = pytest.mark.integration
CONFIG = CoreConfig()


def records(partition: int, users: int, per_user: int) -> list[RawRecord]:
    out = []
    for i in range(users * per_user):
        user = f"u{i % users}"
        kind = [EventType.PRODUCT_VIEW, EventType.ADD_TO_CART, EventType.PURCHASE_COMPLETED][i % 3]
        event = make_event(
            f"e{i}", kind, user, minutes=i, product_id=f"p{i % 7}", category=f"c{i % 2}"
        )
        out.append(
            RawRecord("interactions", partition, i, 1_800_000_000_000, user.encode(),
                      json.dumps(event).encode())
        )  # fmt: skip
    return out


async def test_redis_store_matches_the_memory_store(
    redis_client: Redis, keyspace: Keyspace
) -> None:
    redis_store, memory_store = RedisStore(redis_client, keyspace), MemoryStore(keyspace)
    batch = records(partition=2, users=5, per_user=8)
    for chunk in (batch[:13], batch[10:27], batch[20:]):  # overlapping redeliveries
        await apply_batch(redis_store, chunk, CONFIG)
        await apply_batch(memory_store, chunk, CONFIG)
    for user in (f"u{i}" for i in range(5)):
        assert await redis_store.get_user(user) == await memory_store.get_user(user)
    assert await redis_store.partition_watermarks("interactions") == {2: 39}
    assert await redis_store.get_user("nobody") is None
    assert memory_store.zsets, "the batch taught shared statistics"
    for key, members in memory_store.zsets.items():
        stored = await redis_client.zrange(key, 0, -1, withscores=True)
        assert {m.decode(): s for m, s in stored} == members, key
    for key, fields in memory_store.hashes.items():
        stored_hash = await redis_client.hgetall(key)
        assert {f.decode(): v.decode() for f, v in stored_hash.items()} == fields, key
    for key, value in memory_store.strings.items():
        assert (await redis_client.get(key) or b"").decode() == value, key


async def test_a_conflicting_commit_writes_nothing(redis_client: Redis, keyspace: Keyspace) -> None:
    store = RedisStore(redis_client, keyspace)
    await apply_batch(store, records(partition=0, users=2, per_user=2), CONFIG)
    u0 = await store.get_user("u0")
    assert u0 is not None
    fresh = UserState("u1", watermark=Watermark(0, 99))
    stale = UserState("u0", watermark=Watermark(0, 98))
    commit = BatchCommit(
        "interactions",
        0,
        99,
        [UserWrite(stale, expected=Watermark(0, 1)), UserWrite(fresh, expected=None)],
    )
    with pytest.raises(WatermarkConflictError):
        await store.commit_batch(commit)
    assert await store.get_user("u0") == u0
    assert (await store.get_user("u1") or UserState("x")).watermark == Watermark(0, 3)
    assert await store.partition_watermarks("interactions") == {0: 3}


async def test_both_stores_refuse_a_batch_that_does_not_continue_its_partition(
    redis_client: Redis, keyspace: Keyspace
) -> None:
    redis_store, memory_store = RedisStore(redis_client, keyspace), MemoryStore(keyspace)
    stores: tuple[StateStore, ...] = (redis_store, memory_store)
    # offsets 0 .. 19 but 8 and 9, which hold no records (transaction markers, say)
    log = {r.offset: r for r in records(partition=3, users=4, per_user=5) if r.offset not in (8, 9)}

    def span(first: int, last: int) -> list[RawRecord]:
        return [log[o] for o in range(first, last + 1) if o in log]

    async def refused(
        batch: list[RawRecord], read_from: int, log_start: int = 0
    ) -> list[int | None]:
        marks = []
        for store in stores:
            with pytest.raises(StateLostError) as error:
                await apply_batch(store, batch, CONFIG, read_from=read_from, log_start=log_start)
            assert (error.value.topic, error.value.partition) == ("interactions", 3)
            marks.append(error.value.watermark)
        return marks

    assert await refused(span(5, 19), read_from=5) == [None, None]  # the store came back empty
    assert await redis_client.keys(f"{keyspace.prefix}:*") == [], "a refused batch writes nothing"
    assert await refused(span(5, 19), read_from=5, log_start=2) == [None, None]
    for store in stores:
        report = await apply_batch(store, span(2, 7), CONFIG, read_from=2, log_start=2)
        assert report.applied == 6
    assert await refused(span(10, 19), read_from=10) == [7, 7]  # 8 and 9 not read
    for store in stores:
        await apply_batch(store, span(10, 14), CONFIG, read_from=8)  # read from 8: a gap
        await apply_batch(store, span(4, 16), CONFIG, read_from=4)  # a redelivery
        await apply_batch(store, span(17, 19), CONFIG)  # not checked
    for user in ("u0", "u1", "u2", "u3"):
        assert await redis_store.get_user(user) == await memory_store.get_user(user)
    assert await redis_store.partition_watermarks("interactions") == {3: 19}
    assert await memory_store.partition_watermarks("interactions") == {3: 19}
    for key, members in memory_store.zsets.items():
        stored = await redis_client.zrange(key, 0, -1, withscores=True)
        assert {m.decode(): s for m, s in stored} == members, key
    users = [await redis_store.get_user(f"u{i}") for i in range(4)]
    total = sum(user.total_events for user in users if user is not None)
    assert total == 16, "offsets 2 .. 19 but the gap, each once"


async def test_user_keys_are_versioned_hash_tagged_and_expire(
    redis_client: Redis, keyspace: Keyspace
) -> None:
    store = RedisStore(redis_client, keyspace)
    await apply_batch(store, records(partition=0, users=1, per_user=1), CONFIG)
    key = keyspace.user_state("u0")
    assert key == f"{keyspace.prefix}:v{keyspace.version}:{{u:u0}}:state"
    assert 0 < await redis_client.ttl(key) <= keyspace.user_ttl_seconds


async def test_contexts_read_from_redis_equal_contexts_read_from_memory(
    redis_client: Redis, keyspace: Keyspace
) -> None:
    from recstream.readmodel.load import load_context

    redis_store, memory_store = RedisStore(redis_client, keyspace), MemoryStore(keyspace)
    batch = records(partition=1, users=6, per_user=9)
    await apply_batch(redis_store, batch, CONFIG)
    await apply_batch(memory_store, batch, CONFIG)
    now = 1_800_000_000.0
    for user in ("u0", "u3", "stranger"):
        from_redis = await load_context(redis_store, user, now, CONFIG)
        from_memory = await load_context(memory_store, user, now, CONFIG)
        assert from_redis == from_memory
    anchored = await load_context(redis_store, "u1", now, CONFIG, anchor="p:p1")
    assert anchored.transitions["p:p1"], "the anchor's next items are read"


async def test_erasure_on_redis_equals_erasure_in_memory(
    redis_client: Redis, keyspace: Keyspace
) -> None:
    from recstream.apply.operations import erase_user

    redis_store, memory_store = RedisStore(redis_client, keyspace), MemoryStore(keyspace)
    batch = records(partition=0, users=3, per_user=6)
    for store in (redis_store, memory_store):
        await apply_batch(store, batch, CONFIG)
        receipt = await erase_user(store, "u1", 1_900_000_000.0, CONFIG, requested_by="admin")
        assert receipt.erased
        assert await store.get_user("u1") is None
    for key, members in memory_store.zsets.items():
        stored = await redis_client.zrange(key, 0, -1, withscores=True)
        assert {m.decode(): s for m, s in stored} == members, key
    assert await redis_client.hexists(keyspace.erasures(), "u1")
    again = await apply_batch(redis_store, batch, CONFIG)
    assert again.erased == 6
    assert await redis_store.get_user("u1") is None
