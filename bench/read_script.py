"""One Lua script per read round trip, against the pipeline the store sends:
``uv run python -m bench.read_script``.

The last round trip of a recommendation reads the catalog entries and the event
categories of its candidates (``recstream.readmodel.load.load_items``). A local
redis-server holds ``--items`` catalog entries and their categories under the real key
names (16 statistic shards); each request reads ``--candidates`` random items, in three
ways, blocks of ``--requests`` alternated (``--blocks``) so that the machine's noise falls
on all alike:

- ``per tag``: one ``MGET`` per hash tag and one ``HMGET`` per shard in a pipeline (what
  the store sends on a Redis Cluster);
- ``one MGET``: one ``MGET`` for every entry and one ``HMGET`` per shard (what the store
  sends on a single primary);
- ``script``: the same reads inside one ``EVALSHA`` (legal on a single primary only).

Printed per way: the client's CPU per request (``getrusage``, the API process's share)
and redis-server's (``INFO cpu``), medians of the blocks. The client uses the API's
connection class (commands packed by hiredis) and RESP3, as the API does.

``--read-model`` measures the whole read model instead: Redis is filled with the
workload of :mod:`bench.api_cpu` (through the consumer's core), and ``load_context``
runs for ``--requests`` of its users through two stores on one connection pool, the
store as it reads on a single primary and the same store made to read as on a Redis
Cluster (one ``MGET`` per hash tag), blocks alternated; printed: each one's CPU per read
model (median of the blocks), the ratio, and whether every block agreed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import ConnectionPool, Redis

from bench import api_cpu
from bench.context import DEFAULT_DATASETS
from bench.workload import load_sessions
from recstream.contract.keyspace import Keyspace, Stat
from recstream.model.config import CoreConfig
from recstream.readmodel.load import load_context
from recstream.store.redis import RedisStore, _positions_by_hash_tag
from recstream_api.redis_packing import HiredisPackingConnection
from recstream_cli.localstack import start_redis

# ARGV: per read, "m" and a key count (an MGET of that many KEYS) or "f", a field count
# and the fields (an HMGET of the next KEY); the replies in order.
READ_LUA = """
local out, k, a = {}, 1, 1
while a <= #ARGV do
  local n = tonumber(ARGV[a + 1])
  if ARGV[a] == 'm' then
    out[#out + 1] = redis.call('MGET', unpack(KEYS, k, k + n - 1))
    k, a = k + n, a + 2
  else
    out[#out + 1] = redis.call('HMGET', KEYS[k], unpack(ARGV, a + 2, a + 1 + n))
    k, a = k + 1, a + 2 + n
  end
end
return out
"""

Way = Callable[[list[str]], Awaitable[Any]]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def fill_items(redis: Redis, keys: Keyspace, items: list[str]) -> None:
    entry = '{"kind": "product", "category": "c12", "price": 12.5, "created_at": 1764993563.7}'
    async with redis.pipeline(transaction=False) as pipe:
        for item in items:
            pipe.set(keys.catalog_item(item), entry)
            pipe.hset(keys.stat(Stat.ITEM_CATEGORY, item), item, "c12")
        await pipe.execute()


def ways(redis: Redis, keys: Keyspace) -> dict[str, Way]:
    script = redis.register_script(READ_LUA)

    def by_shard(items: list[str]) -> dict[int, list[str]]:
        groups: dict[int, list[str]] = {}
        for item in items:
            groups.setdefault(keys.shard_of(item), []).append(item)
        return groups

    async def pipelined(items: list[str], *, per_tag: bool) -> Any:
        groups = by_shard(items)  # a catalog key's hash tag is its shard's
        mgets = list(groups.values()) if per_tag else [items]
        async with redis.pipeline(transaction=False) as pipe:
            for group in mgets:
                pipe.execute_command("MGET", *(keys.catalog_item(i) for i in group))
            for shard, group in groups.items():
                pipe.hmget(keys.shard_stat(Stat.ITEM_CATEGORY, shard), group)
            return await pipe.execute()

    async def per_tag(items: list[str]) -> Any:
        return await pipelined(items, per_tag=True)

    async def one_mget(items: list[str]) -> Any:
        return await pipelined(items, per_tag=False)

    async def in_script(items: list[str]) -> Any:
        groups = by_shard(items)
        names = [keys.catalog_item(i) for i in items]
        args: list[str | int] = ["m", len(items)]
        for shard, group in groups.items():
            names.append(keys.shard_stat(Stat.ITEM_CATEGORY, shard))
            args += ["f", len(group), *group]
        return await script(keys=names, args=args)

    return {"per tag": per_tag, "one MGET": one_mget, "script": in_script}


class PerTagStore(RedisStore):
    """The store reading as it does on a Redis Cluster: one ``MGET`` per hash tag."""

    def _mget_groups(self, keys: Sequence[str]) -> list[list[int]]:
        return _positions_by_hash_tag(keys)


async def read_model(args: argparse.Namespace) -> None:
    server = start_redis()
    try:
        now = time.time()
        last_item, _ = await api_cpu.fill(
            server.address, load_sessions(args.datasets), 2000, 20_000, now
        )
        pool = ConnectionPool.from_url(
            server.address, protocol=3, connection_class=HiredisPackingConnection
        )
        redis = Redis(connection_pool=pool)
        keys, core = Keyspace(prefix=api_cpu.PREFIX), CoreConfig()
        stores = {"one MGET": RedisStore(redis, keys), "per tag": PerTagStore(redis, keys)}
        users = sorted(last_item)[: args.requests]
        spent: dict[str, list[float]] = {name: [] for name in stores}
        for block in range(args.blocks):
            order = list(stores) if block % 2 else list(stores)[::-1]
            for name in order:
                before = cpu()
                for user in users:
                    await load_context(stores[name], user, now, core)
                spent[name].append(1000 * (cpu() - before) / len(users))
        await redis.aclose()
    finally:
        server.stop()
    one, per_tag = (statistics.median(spent[name]) for name in stores)
    lower = sum(a < b for a, b in zip(spent["one MGET"], spent["per tag"], strict=True))
    print(f"load_context for {len(users)} users x {args.blocks} blocks, CPU per read model:")
    print(f"  one MGET {one:.3f} ms, per tag {per_tag:.3f} ms, ratio {one / per_tag:.3f}")
    print(f"  one MGET lower in {lower} of {args.blocks} blocks")


async def run(args: argparse.Namespace) -> None:
    server = start_redis()
    pool = ConnectionPool.from_url(
        server.address, protocol=3, connection_class=HiredisPackingConnection
    )
    redis = Redis(connection_pool=pool)
    keys = Keyspace(prefix="readbench")
    try:
        items = [f"p:{n}" for n in range(args.items)]
        await fill_items(redis, keys, items)
        rng = random.Random(7)
        requests = [rng.sample(items, args.candidates) for _ in range(args.requests)]
        chosen = ways(redis, keys)
        for way in chosen.values():  # warm-up; loads the script
            await way(requests[0])
        client: dict[str, list[float]] = {name: [] for name in chosen}
        server_cpu: dict[str, list[float]] = {name: [] for name in chosen}
        order = list(chosen)
        for block in range(args.blocks):
            for name in order[block % len(order) :] + order[: block % len(order)]:
                way, before, before_server = chosen[name], cpu(), await redis_cpu(redis)
                for request in requests:
                    await way(request)
                spent, spent_server = cpu() - before, await redis_cpu(redis) - before_server
                client[name].append(1000 * spent / len(requests))
                server_cpu[name].append(1000 * spent_server / len(requests))
        print(f"{args.candidates} candidates per request, {len(requests)} requests x {args.blocks}")
        for name in chosen:
            print(
                f"{name:9s} client {statistics.median(client[name]):.3f} ms/request, "
                f"redis-server {statistics.median(server_cpu[name]):.3f} ms/request"
            )
    finally:
        await redis.aclose()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--candidates", type=int, default=128)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--read-model", action="store_true", help="load_context, see above")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    args = parser.parse_args()
    asyncio.run(read_model(args) if args.read_model else run(args))


if __name__ == "__main__":
    main()
