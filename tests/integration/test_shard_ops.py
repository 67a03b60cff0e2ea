"""The shared table of shard-operation cases (``tests/shard_op_cases.py``) on a real Redis.

The same table runs on the memory store in ``tests/unit/test_shard_ops.py``; here every
case goes through ``RedisStore.commit_batch`` (the Lua ``apply_op``), and the keyspace is
read back whole (``SCAN``, ``TYPE``, then ``ZRANGE WITHSCORES`` / ``HGETALL`` / ``GET`` and
``TTL``). A property test then applies random op sequences to Redis and to the memory
store and compares the two keyspaces.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from recstream.contract.keyspace import Keyspace
from recstream.plan.shards import Op, ShardOp
from recstream.store.memory import MemoryStore
from recstream.store.redis import RedisStore

from ..shard_op_cases import (
    CASES,
    REFUSED,
    Case,
    Keys,
    bookkeeping,
    commit_of,
    key_of,
    memory_keys,
    name_of,
)
from .redis_keyspace import Stored, as_typed, read_keyspace

pytestmark = pytest.mark.integration

TTL_SLACK = 5  # seconds a TTL may have run down between the commit and its read


async def fill_redis(redis: Redis, keyspace: Keyspace, before: Keys) -> None:
    for name, members in before.zsets.items():
        await redis.zadd(key_of(keyspace, name), dict(members))
    for name, fields in before.hashes.items():
        for field, value in fields.items():
            await redis.hset(key_of(keyspace, name), field, value)
    for name, value in before.strings.items():
        await redis.set(key_of(keyspace, name), value)
    for name, seconds in before.ttls.items():
        assert await redis.expire(key_of(keyspace, name), seconds), name


async def redis_keys(
    redis: Redis, keyspace: Keyspace
) -> tuple[dict[str, tuple[str, Any]], dict[str, Stored], dict[str, int]]:
    """The keys under the test's prefix: the table's by short name as (type, value), the
    two watermark hashes, and the TTLs of the keys that have one."""
    stored = await read_keyspace(redis, f"{keyspace.prefix}:")
    marks = {key: stored.pop(key) for key in bookkeeping(keyspace) if key in stored}
    typed = {name_of(keyspace, key): value for key, value in as_typed(stored).items()}
    ttls = {name_of(keyspace, key): s.ttl for key, s in stored.items() if s.ttl != -1}
    return typed, marks, ttls


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_redis_applies_the_case(case: Case, redis_client: Redis, keyspace: Keyspace) -> None:
    await fill_redis(redis_client, keyspace, case.before)
    store = RedisStore(redis_client, keyspace)
    await store.commit_batch(commit_of(keyspace, case.ops, offset=7))
    typed, marks, ttls = await redis_keys(redis_client, keyspace)
    assert typed == case.after.typed()
    assert ttls.keys() == case.after.ttls.keys(), "the keys with a TTL"
    for name, seconds in case.after.ttls.items():
        assert seconds - TTL_SLACK <= ttls[name] <= seconds, name
    shard_marks, partition_marks = (marks[key] for key in bookkeeping(keyspace))
    assert shard_marks.value == partition_marks.value == {"0": b"7"}


@pytest.mark.parametrize(("name", "refused"), REFUSED, ids=[n for n, _ in REFUSED])
async def test_redis_refuses_what_the_memory_store_refuses(
    name: str, refused: ShardOp, redis_client: Redis, keyspace: Keyspace
) -> None:
    with pytest.raises(ResponseError):
        await RedisStore(redis_client, keyspace).commit_batch(commit_of(keyspace, (refused,)))


# --- the property: random op sequences, the same keyspace in both stores ----------------

ZSETS = st.sampled_from(["z1", "z2"])
# members that tie and sort differently by case, digits and UTF-8, and any short text
MEMBERS = st.sampled_from(["a", "b", "B", "p:9", "p:10", "é"]) | st.text(
    st.characters(codec="utf-8"), max_size=3
)
# log2 scores: sums of events at any time, up to far beyond what a double holds unlogged
AMOUNTS = st.integers(-3, 3) | st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
TIMES = st.integers(0, 5) | st.floats(0, 2e9, allow_nan=False)
VALUES = st.text(st.characters(codec="utf-8"), max_size=8)
OPS = st.one_of(
    st.builds(ShardOp, st.just(Op.ADD), ZSETS, MEMBERS, AMOUNTS),
    st.builds(ShardOp, st.just(Op.SUBTRACT), ZSETS, MEMBERS, AMOUNTS),
    st.builds(ShardOp, st.just(Op.KEEP_LATEST), ZSETS, MEMBERS, TIMES),
    st.builds(ShardOp, st.just(Op.BOUND), ZSETS, st.integers(0, 4), st.sampled_from([0, 60])),
    st.builds(ShardOp, st.just(Op.SET), st.just("s"), VALUES, st.sampled_from([0, 60, ""])),
    st.builds(ShardOp, st.just(Op.SET_FIELD), st.just("h"), MEMBERS, VALUES),
    st.builds(ShardOp, st.just(Op.DELETE), st.sampled_from(["z1", "z2", "h", "s", "none"])),
    st.builds(ShardOp, st.just(Op.REMOVE), ZSETS, MEMBERS),
)
# Each key keeps one type (an op on a key of another type is refused by Redis mid-script,
# see tests/shard_op_cases.py), so SET writes only ``s`` and SET_FIELD only ``h``.
BATCHES = st.lists(st.lists(OPS, max_size=12), min_size=1, max_size=3)


@settings(
    max_examples=200,  # about 3 s
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # cleared per example
)
@given(batches=BATCHES)
async def test_random_op_sequences_leave_redis_and_memory_alike(
    batches: list[list[ShardOp]], redis_client: Redis, keyspace: Keyspace
) -> None:
    async for key in redis_client.scan_iter(match=f"{keyspace.prefix}:*", count=1000):
        await redis_client.delete(key)
    redis_store, memory_store = RedisStore(redis_client, keyspace), MemoryStore(keyspace)
    for offset, ops in enumerate(batches):
        commit = commit_of(keyspace, tuple(ops), expected=offset - 1, offset=offset)
        await redis_store.commit_batch(commit)
        await memory_store.commit_batch(commit)
    typed, marks, _ = await redis_keys(redis_client, keyspace)
    assert typed == memory_keys(memory_store)
    shard_marks = keyspace.shard_watermarks(0, "ops")
    last = str(len(batches) - 1)
    assert marks[shard_marks].value == {"0": last.encode()}
    assert memory_store.hashes[shard_marks] == {"0": last}
