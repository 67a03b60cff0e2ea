"""Timing consumer processes that drain a topic into Redis, observed from outside.

Progress is the sum over partitions of the partition watermarks (last applied
offset + 1) the consumers advance in the same Lua step as the state, read
from Redis by this process. The clock starts at the first progress seen (so
process start-up and the group join are excluded) and stops when every
record is applied. CPU seconds of each process over the same window come
from ``/proc``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from bench.stack import Child, Rig, cpu_seconds
from recstream.contract.keyspace import Keyspace
from recstream.offline.evaluation.records import partition_for
from recstream.platform.redis import redis_client
from recstream.store.redis import RedisStore


@dataclass
class Drain:
    events: int
    seconds: float
    consumer_cpu: float
    redis_cpu: float
    broker_cpu: float
    consumer_rss: int
    series: list[tuple[float, int]] = field(default_factory=list)  # (seconds, applied)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        return self.events / self.consumer_cpu if self.consumer_cpu else 0.0


async def applied(store: RedisStore, topic: str) -> int:
    return sum(offset + 1 for offset in (await store.partition_watermarks(topic)).values())


async def watch(
    rig: Rig,
    consumers: Sequence[Child],
    topic: str,
    prefix: str,
    total: int,
    *,
    start_at: int = 0,
    within: float = 900.0,
) -> Drain:
    """Wait until ``total`` records of ``topic`` are applied; time from the first one past
    ``start_at``."""
    redis = redis_client(rig.redis_url)
    store = RedisStore(redis, Keyspace(prefix=prefix))
    pids = [c.pid for c in consumers]
    others = [*rig.redis_pids, rig.broker_pid or 0]
    deadline = time.monotonic() + within
    try:
        count = await applied(store, topic)
        while count <= start_at:
            _check(consumers, deadline, count, total)
            await asyncio.sleep(0.005)
            count = await applied(store, topic)
        first, started = count, time.perf_counter()
        cpu0 = [cpu_seconds(p) for p in pids + others]
        series = [(0.0, 0)]
        rss = 0
        while count < total:
            _check(consumers, deadline, count, total)
            await asyncio.sleep(0.02)
            count = await applied(store, topic)
            series.append((time.perf_counter() - started, count - first))
            rss = max(rss, *(c.rss() for c in consumers))
        seconds = time.perf_counter() - started
        cpu = [cpu_seconds(p) - c0 for p, c0 in zip(pids + others, cpu0, strict=True)]
    finally:
        await redis.aclose()
    n, r = len(pids), len(rig.redis_pids)
    return Drain(total - first, seconds, sum(cpu[:n]), sum(cpu[n : n + r]), cpu[n + r], rss, series)


def _check(consumers: Sequence[Child], deadline: float, count: int, total: int) -> None:
    for child in consumers:
        child.check()
    if time.monotonic() > deadline:
        raise TimeoutError(f"only {count} of {total} records applied in time")


def probe_keys(partitions: int) -> list[bytes]:
    """One user key per partition (Kafka's default partitioner)."""
    keys: dict[int, bytes] = {}
    n = 0
    while len(keys) < partitions:
        key = f"probe{n}".encode()
        keys.setdefault(partition_for(key, partitions), key)
        n += 1
    return [keys[p] for p in range(partitions)]


async def send_probes(bootstrap: str, topic: str, partitions: int, value: bytes) -> int:
    """One record on every partition (the consumers' group is settled once all are applied)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        for key in probe_keys(partitions):
            user = key.decode()
            body = value.replace(b"__USER__", key).replace(b"__ID__", f"{user}-probe".encode())
            await producer.send_and_wait(topic, value=body, key=key)
    finally:
        await producer.stop()
    return partitions


async def wait_applied(rig: Rig, prefix: str, topic: str, count: int, within: float) -> None:
    redis = redis_client(rig.redis_url)
    store = RedisStore(redis, Keyspace(prefix=prefix))
    deadline = time.monotonic() + within
    try:
        while await applied(store, topic) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} probe records not applied within {within:.0f}s")
            for child in rig.children:
                child.check()
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
