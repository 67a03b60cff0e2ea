"""Benchmark 5: Redis memory per user and per item, and the services' resident memory.

On the Redis the rebuild benchmark filled (or a fresh replay when it did not
run), with the default caps: ``used_memory`` before and after, every key
classified by ``SCAN`` (user state, per-item statistics, per-session
statistics, per-shard statistics) and ``MEMORY USAGE`` of a random sample of
each class, scaled to the class's key count. A user whose history reaches
the caps (:data:`HEAVY_EVENTS` events) is applied too, for the per-user
ceiling. Consumer and API RSS come from the throughput and API benchmarks
of the same run, or are measured here.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

from redis.asyncio import Redis

from bench.context import BenchContext
from bench.rebuild import Replayed, replay
from bench.results import BenchResult, Figure, Table, human_bytes
from bench.stack import Rig
from recstream.apply.batch import apply_batch
from recstream.contract.events import validate_event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.records import RecordLog
from recstream.store.redis import RedisStore

TARGET_PER_MILLION = 2**30
SAMPLE = 2000
HEAVY_EVENTS = 2000


def key_class(key: str) -> str:
    if ":{u:" in key:
        return "user state"
    if ":{s:" in key:
        kind = key.split("}:", 1)[1].split(":", 1)[0]
        return {
            "pop": "shard: popularity",
            "icat": "shard: item categories",
            "wm": "watermarks",
            "tr1": "item: next items",
            "tr2": "item pair: next items",
            "cov": "item: co-visited items",
            "ucf": "item: co-engaged items",
            "isess": "item: sessions",
            "popc": "category: popularity",
            "sitems": "session: items",
            "catalog": "item: catalog",
        }.get(kind, f"other ({kind})")
    return "other"


async def classify(redis: Redis, prefix: str) -> tuple[Counter[str], dict[str, float]]:
    """Key count per class and the mean ``MEMORY USAGE`` of a sample of each class."""
    counts: Counter[str] = Counter()
    reservoir: dict[str, list[str]] = {}
    rng = random.Random(1)
    async for raw in redis.scan_iter(match=f"{prefix}:*", count=2000):
        key = raw.decode()
        cls = key_class(key)
        counts[cls] += 1
        sample = reservoir.setdefault(cls, [])
        if len(sample) < SAMPLE:
            sample.append(key)
        else:
            j = rng.randrange(counts[cls])
            if j < SAMPLE:
                sample[j] = key
    means = {}
    for cls, keys in reservoir.items():
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.memory_usage(key, samples=0)
            sizes = [s or 0 for s in await pipe.execute()]
        means[cls] = sum(sizes) / len(sizes)
    return counts, means


def stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


async def heavy_user(redis_url: str, prefix: str) -> int:
    """``MEMORY USAGE`` of one user with :data:`HEAVY_EVENTS` events over 500 items (caps hit)."""
    keys = Keyspace(prefix=prefix)
    redis = Redis.from_url(redis_url)
    try:
        store = RedisStore(redis, keys)
        log = RecordLog("heavy", 1)
        now = time.time()
        records = [
            log.append(
                validate_event(
                    {
                        "event_id": f"heavy-{i}",
                        "event_type": "product_view",
                        "user_id": "heavy",
                        "session_id": f"heavy-{i // 20}",
                        "occurred_at": stamp(now - (HEAVY_EVENTS - i) * 60),
                        "product_id": f"hp{i % 700}",
                        "category": f"c{i % 150}",
                        "price": 10.0 + i % 90,
                    }
                )
            )
            for i in range(HEAVY_EVENTS)
        ]
        for start in range(0, len(records), 500):
            await apply_batch(store, records[start : start + 500], CoreConfig())
        return int(await redis.memory_usage(keys.user_state("heavy"), samples=0) or 0)
    finally:
        await redis.aclose()


async def run(ctx: BenchContext) -> BenchResult:
    result = BenchResult("memory", "Memory: Redis bytes per user and per item, service RSS")
    replayed: Replayed | None = ctx.shared.pop("replayed", None)
    rig: Rig | None = None
    if replayed is None:
        with ctx.rig("memory", keep=True) as rig:
            replayed, _ = await replay(ctx, rig, ctx.pick(3_000, 60_000))
    rig = replayed.rig
    try:
        redis = Redis.from_url(rig.redis_url)
        try:
            used = replayed.used_memory
            counts, means = await classify(redis, replayed.prefix)
        finally:
            await redis.aclose()
        heavy = await heavy_user(rig.redis_url, f"h{uuid.uuid4().hex[:6]}")
    finally:
        rig.close()
    totals = {cls: counts[cls] * means[cls] for cls in counts}
    user_bytes = totals.get("user state", 0.0) / replayed.users
    item_classes = [c for c in totals if c.startswith("item")]
    item_bytes = sum(totals[c] for c in item_classes) / replayed.items
    per_million = used / replayed.users * 1e6
    result.add(
        Figure(
            "Redis per million active users (all keys, extrapolated)",
            per_million,
            "bytes",
            TARGET_PER_MILLION,
            "target 1 GiB",
            "<= 1 GiB per million users",
            per_million <= TARGET_PER_MILLION,
        )
    )
    result.add(
        Figure(
            "Redis bytes per user (state hash)",
            user_bytes,
            "bytes",
            heavy,
            f"a user at the caps ({HEAVY_EVENTS:,} events)",
        )
    )
    result.add(Figure("Redis bytes per item (item statistics)", item_bytes, "bytes"))
    for name, key in (("consumer", "consumer_rss"), ("API", "api_rss")):
        if key in ctx.shared:
            result.add(Figure(f"{name} RSS", float(ctx.shared[key]), "bytes"))
    rows = [
        [
            cls,
            f"{counts[cls]:,}",
            f"{means[cls]:,.0f}",
            human_bytes(totals[cls]),
            f"{totals[cls] / max(used, 1):.0%}",
        ]
        for cls in sorted(totals, key=lambda c: -totals[c])
    ]
    result.tables.append(
        Table(
            f"{replayed.events:,} events of {replayed.users:,} users, {replayed.items:,} items; "
            f"used_memory grew by {human_bytes(used)}",
            ["key class", "keys", "mean bytes (MEMORY USAGE)", "total", "share of used_memory"],
            rows,
        )
    )
    result.notes.append(
        "Per-user figure = user state keys' memory / users; per-item = the item-keyed statistics "
        "(next items, sessions of an item, catalog) / catalog items; the per-million figure "
        "divides all of used_memory's growth (shared statistics included) by the users."
    )
    if not any(k in ctx.shared for k in ("consumer_rss", "api_rss")):
        result.notes.append("Service RSS comes from the throughput and api benchmarks of the run.")
    return result
