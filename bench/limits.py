"""Limits of the ingest path measured on the same records: the core alone, and Redis alone.

- :func:`fold_only`: the batch-apply core (decode, fold, statistics, shard
  plans) on the same partition batches into the in-memory store; it records
  every :class:`~recstream.store.port.BatchCommit` the core produced.
- :func:`lua_write`: those commits written to a fresh key prefix with a
  minimal Lua script (the users' state hashes and every statistic op, no
  watermark checks, arguments serialised beforehand): the rate Redis and one
  connection allow for the same keys, one partition batch per call as the
  consumer sends them.
- :func:`store_write`: the same commits through the real
  :class:`~recstream.store.redis.RedisStore` (``load_batch`` read + the production
  commit script with its checks): the consumer's own Redis I/O, without the fold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from bench.stack import cpu_seconds
from recstream.apply.batch import RawRecord, apply_batch
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.store.memory import MemoryStore
from recstream.store.port import BatchCommit
from recstream.store.redis import APPLY_OP_LUA, RedisStore

# KEYS: the users' state hashes. ARGV[1]: every statistic op as JSON, flat [code, key, a, b,
# ...] (the production script's packing); ARGV[2 + 2i], ARGV[3 + 2i]: user i's watermark, state.
MINIMAL_WRITE_LUA = (
    APPLY_OP_LUA
    + """
local ops = cjson.decode(ARGV[1])
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'wm', ARGV[2 * i], 'st', ARGV[2 * i + 1])
end
for o = 1, #ops, 4 do
  apply_op(ops[o], ops[o + 1], ops[o + 2], ops[o + 3])
end
return #KEYS
"""
)


class RecordingStore(MemoryStore):
    """The in-memory store, keeping every commit it applied."""

    def __init__(self, keyspace: Keyspace) -> None:
        super().__init__(keyspace)
        self.commits: list[BatchCommit] = []

    async def commit_batch(self, commit: BatchCommit) -> None:
        await super().commit_batch(commit)
        self.commits.append(commit)


@dataclass
class FoldRun:
    events: int
    seconds: float
    cpu_seconds: float
    commits: list[BatchCommit]

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def partition_batches(records: Sequence[RawRecord], batch: int) -> list[list[RawRecord]]:
    """Batches of one partition, offset order, in the order partitions are first seen."""
    by_partition: dict[int, list[RawRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    out = []
    for rows in by_partition.values():
        rows.sort(key=lambda r: r.offset)
        out += [rows[i : i + batch] for i in range(0, len(rows), batch)]
    return out


async def fold_only(
    records: Sequence[RawRecord], batch: int, config: CoreConfig, keyspace: Keyspace
) -> FoldRun:
    store = RecordingStore(keyspace)
    batches = partition_batches(records, batch)
    cpu, started = time.process_time(), time.perf_counter()
    for rows in batches:
        await apply_batch(store, rows, config)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return FoldRun(len(records), seconds, cpu, store.commits)


def _minimal_call(commit: BatchCommit) -> tuple[list[str], list[Any]]:
    keys: list[str] = []
    users: list[Any] = []
    for write in commit.writes:
        state = write.state
        assert state.watermark is not None
        keys.append(_user_key(state.user_id))
        users += [state.watermark.encode(), state.to_stored()]
    ops = [str(x) for shard in commit.shards for op in shard.ops for x in op]
    return keys, [orjson.dumps(ops), *users]


def _user_key(user_id: str) -> str:
    return f"benchlimit:{{u:{user_id}}}:state"


@dataclass
class LuaRun:
    rate: float  # events/s through one connection, one batch script at a time
    per_redis_cpu: float  # events per CPU-second of redis-server: its ceiling with a free client


async def lua_write(
    redis_url: str, commits: Sequence[BatchCommit], events: int, redis_pid: int
) -> LuaRun:
    """The minimal Lua write of ``commits`` (keys under their own prefix)."""
    calls = [_minimal_call(c) for c in commits]
    redis = Redis.from_url(redis_url)
    try:
        script = redis.register_script(MINIMAL_WRITE_LUA)
        await script(keys=[], args=["[]"])
        cpu, started = cpu_seconds(redis_pid), time.perf_counter()
        for keys, args in calls:
            await script(keys=keys, args=args)
        seconds, cpu = time.perf_counter() - started, cpu_seconds(redis_pid) - cpu
        return LuaRun(events / seconds, events / cpu if cpu else 0.0)
    finally:
        await redis.aclose()


async def store_write(
    redis_url: str, commits: Sequence[BatchCommit], events: int, keyspace: Keyspace
) -> float:
    """Events/s of the same commits through :class:`RedisStore` (read + checked commit)."""
    redis = Redis.from_url(redis_url)
    try:
        store = RedisStore(redis, keyspace)
        started = time.perf_counter()
        for commit in commits:
            users = [w.state.user_id for w in commit.writes]
            await store.load_batch(users, commit.topic, commit.partition)
            await store.commit_batch(commit)
        return events / (time.perf_counter() - started)
    finally:
        await redis.aclose()
