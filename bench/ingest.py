"""Ingest benchmark: events/s of one consumer process, per runtime, on this machine.

Pre-produces realistic events (many users and items, mixed types, keyed by
user) into a fresh topic, then times, for each runtime:

- ``fetch``: the runtime's source reading the topic, records only counted;
- ``decode``: the same, every record decoded and validated (no Redis);
- ``core only``: the batch-apply core (decode, fold, statistics) on the
  same partition batches into the in-memory store: no Kafka, no Redis;
- ``end to end``: ``python -m recstream_consumer`` as its own process,
  draining the topic into Redis (timed from its first applied batch to the
  last, so process start and the group join are excluded).

``fetch``, ``decode`` (timed from the partition assignment) and ``core only``
run inside this process; they bound what the consumer can reach. Without
addresses in the environment (``RECSTREAM_BENCH_REDIS_URL``,
``RECSTREAM_BENCH_KAFKA_BOOTSTRAP``) it starts a local redis-server and Tansu
broker and stops them at the end; a broker of the environment is reached with the
``RECSTREAM_KAFKA__SECURITY__*`` settings (TLS, SASL) that the services use.

    uv run python bench/ingest.py --events 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from recstream.apply.batch import BatchReport, DeadLetter, RawRecord, apply_batch, decode_record
from recstream.contract.events import EventError
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.platform.kafka import (
    client_options,
    security_environ,
    security_from_environ,
    start_client,
)
from recstream.platform.redis import redis_client
from recstream.platform.settings import KafkaSecurity
from recstream.store.memory import MemoryStore
from recstream.store.redis import RedisStore
from recstream_cli.localstack import LocalService, start_redis, start_tansu
from recstream_consumer.__main__ import event_loop_runner
from recstream_consumer.handler import ConsumerCounters, FlowControl
from recstream_consumer.rebuild import Partition
from recstream_consumer.service import build_source
from recstream_consumer.settings import ConsumerSettings, Runtime
from recstream_consumer.topics import TopicSpec, ensure_topics

KINDS = [  # (event type, share)
    ("product_view", 0.50),
    ("page_view", 0.08),
    ("product_search", 0.07),
    ("add_to_cart", 0.09),
    ("group_view", 0.08),
    ("group_join_click", 0.04),
    ("wishlist_add", 0.03),
    ("cart_remove", 0.02),
    ("group_join_complete", 0.02),
    ("cart_checkout", 0.025),
    ("payment_success", 0.02),
    ("purchase_completed", 0.02),
    ("rating_submitted", 0.01),
    ("group_leave", 0.005),
    ("wishlist_remove", 0.005),
]
PRODUCT_TYPES = {
    "product_view", "add_to_cart", "wishlist_add", "cart_remove", "wishlist_remove",
    "purchase_completed", "rating_submitted", "payment_success", "cart_checkout",
}  # fmt: skip
GROUP_TYPES = {"group_view", "group_join_click", "group_join_complete", "group_leave"}


def make_events(count: int, users: int, items: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` pairs: Zipf-like users and items, one week of event time."""
    rng = random.Random(seed)
    kinds, shares = zip(*KINDS, strict=True)
    user_weights = [1 / (rank + 1) ** 0.8 for rank in range(users)]
    item_weights = [1 / (rank + 1) ** 0.9 for rank in range(items)]
    picked_users = rng.choices(range(users), user_weights, k=count)
    picked_items = rng.choices(range(items), item_weights, k=count)
    picked_kinds = rng.choices(kinds, shares, k=count)
    start = time.time() - 7 * 86_400
    out = []
    for i in range(count):
        user, item, kind = f"u{picked_users[i]}", picked_items[i], picked_kinds[i]
        event: dict[str, object] = {
            "event_id": f"b{seed}-{i}",
            "event_type": kind,
            "user_id": user,
            "session_id": f"{user}-s{i // 5000}",
            "occurred_at": datetime.fromtimestamp(start + i * 7 * 86_400 / count, UTC).isoformat(),
            "category": f"c{item % 40}",
        }
        if kind in PRODUCT_TYPES:
            event["product_id"] = f"p{item}"
            event["price"] = round(5 + (item % 200) * 1.5, 2)
        if kind in GROUP_TYPES:
            event["group_id"] = f"g{item % 2000}"
        if kind == "rating_submitted":
            event["rating"] = 1 + item % 5
        if kind == "product_search":
            event["query"] = f"query {item % 300}"
        out.append((user.encode(), orjson.dumps(event)))
    return out


async def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    security: KafkaSecurity | None = None,
) -> tuple[float, list[RawRecord]]:
    """Produce; return the rate and the records as the log holds them."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=512 * 1024,
        acks=1,
        **client_options(security or KafkaSecurity()),
    )
    await start_client(producer, bootstrap, security or KafkaSecurity())
    started = time.perf_counter()
    try:
        pending = [await producer.send(topic, value=v, key=k) for k, v in records]
        metadata = await asyncio.gather(*pending)
    finally:
        await producer.stop()
    rate = len(records) / (time.perf_counter() - started)
    logged = [
        RawRecord(topic, m.partition, m.offset, m.timestamp, k, v)
        for (k, v), m in zip(records, metadata, strict=True)
    ]
    return rate, logged


async def core_only(records: Sequence[RawRecord], batch: int, config: CoreConfig) -> Row:
    """The batch-apply core alone: the same partition batches into an in-memory store."""
    by_partition: dict[int, list[RawRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    store = MemoryStore()
    started = time.perf_counter()
    for partition in by_partition.values():
        partition.sort(key=lambda r: r.offset)
        for start in range(0, len(partition), batch):
            await apply_batch(store, partition[start : start + batch], config)
    return Row("-", "core only (memory)", len(records), time.perf_counter() - started)


class CountingHandler:
    """A stand-in for the batch handler: counts records, optionally decodes them."""

    def __init__(self, decode: bool, config: CoreConfig) -> None:
        self.counters = ConsumerCounters()
        self._decode = decode
        self._config = config

    def request_stop(self) -> None:
        pass

    def forget_partitions(self, partitions: Iterable[Partition]) -> None:
        pass

    async def check_partitions(self, assignment: set[Partition]) -> None:
        pass

    async def handle(
        self, records: Sequence[RawRecord], flow: FlowControl | None = None
    ) -> BatchReport:
        first = records[0]
        report = BatchReport(first.topic, first.partition, records[-1].offset, len(records))
        if self._decode:
            for record in records:
                try:
                    decode_record(record, self._config)
                except EventError as exc:
                    report.dead_letters.append(DeadLetter(record, exc.reason, exc.detail))
        report.applied = len(records) - len(report.dead_letters)
        self.counters.add(report)
        return report


@dataclass
class Row:
    runtime: str
    mode: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def measure(
    progress: Callable[[], Awaitable[int]], total: int, within: float, interval: float = 0.01
) -> tuple[int, float]:
    """Events counted and seconds taken from the first progress seen to ``total``."""
    deadline = time.monotonic() + within
    first_count, first_at = 0, 0.0
    while time.monotonic() < deadline:
        count = await progress()
        now = time.perf_counter()
        if count and not first_count:
            first_count, first_at = count, now
        if count >= total:
            return total - first_count, now - first_at
        await asyncio.sleep(interval)
    raise TimeoutError(f"only {await progress()} of {total} events within {within}s")


def settings_for(
    runtime: Runtime,
    args: argparse.Namespace,
    redis_url: str,
    bootstrap: str,
    topic: str,
    security: KafkaSecurity,
) -> ConsumerSettings:
    return ConsumerSettings(
        redis={"url": redis_url, "key_prefix": f"bench{uuid.uuid4().hex[:8]}"},
        kafka={
            "bootstrap_servers": bootstrap,
            "security": security,
            "interactions_topic": topic,
            "dead_letter_topic": f"{topic}.dlq",
            "catalog_topic": f"{topic}.catalog",
            "partitions": args.partitions,
        },
        consumer={
            "runtime": runtime,
            "group_id": f"bench-{runtime}-{uuid.uuid4().hex[:8]}",
            "max_batch_records": args.batch,
            "max_poll_records": args.poll,
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 500,
            "faust_stream_buffer_maxsize": args.faust_buffer,
            "event_loop": args.loop,
            "log_level": "WARNING",
        },
    )


async def in_process(runtime: Runtime, decode: bool, settings: ConsumerSettings, total: int) -> Row:
    """Timed from the moment the source owns its partitions (the group join excluded)."""
    handler = CountingHandler(decode, settings.core)
    source = build_source(settings, handler)
    task = asyncio.create_task(source.run())
    try:
        while not source.assignment():
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        started, before = time.perf_counter(), handler.counters.records
        while handler.counters.records < total:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
    finally:
        source.stop()
        await task
    return Row(runtime, "decode" if decode else "fetch", total - before, seconds)


async def end_to_end(runtime: Runtime, settings: ConsumerSettings, total: int, log: Path) -> Row:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    for section in ("redis", "kafka", "consumer"):
        values = getattr(settings, section).model_dump(mode="json", exclude={"security"})
        for name, value in values.items():
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"RECSTREAM_{section.upper()}__{name.upper()}"] = text
    env.update(security_environ(settings.kafka.security))
    redis = redis_client(settings.redis.url)  # RECSTREAM_BENCH_REDIS_URL may name a cluster
    store = RedisStore(redis, Keyspace(prefix=settings.redis.key_prefix))
    topic = settings.kafka.interactions_topic
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recstream_consumer", env=env, stdout=sink, stderr=sink
        )

    async def progress() -> int:
        if process.returncode is not None:
            raise RuntimeError(f"consumer exited with {process.returncode}, see {log}")
        return sum(offset + 1 for offset in (await store.partition_watermarks(topic)).values())

    try:
        events, seconds = await measure(progress, total, within=1200, interval=0.05)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        await redis.aclose()
    return Row(runtime, "end to end (Redis)", events, seconds)


async def run(args: argparse.Namespace) -> list[Row]:
    services: list[LocalService] = []
    workdir = Path(tempfile.mkdtemp(prefix="recstream-bench-"))
    redis_url = os.environ.get("RECSTREAM_BENCH_REDIS_URL")
    bootstrap = os.environ.get("RECSTREAM_BENCH_KAFKA_BOOTSTRAP")
    # a broker of the environment may need TLS/SASL (RECSTREAM_KAFKA__SECURITY__*)
    security = security_from_environ() if bootstrap else KafkaSecurity()
    finished = False
    try:
        if redis_url is None:
            services.append(start_redis(log_dir=workdir))
            redis_url = services[-1].address
        if bootstrap is None:
            services.append(start_tansu(log_dir=workdir))
            bootstrap = services[-1].address
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        await ensure_topics(bootstrap, [TopicSpec(topic, args.partitions, 1)], security=security)
        records = make_events(args.events, args.users, args.items)
        print(f"producing {len(records)} events to {topic} ({args.partitions} partitions)...")
        rate, logged = await produce(bootstrap, topic, records, security)
        print(f"  produce rate {rate:,.0f} events/s")
        rows = [await core_only(logged, args.batch, CoreConfig())]
        print(f"  core only: {rows[-1].rate:,.0f} events/s")
        for runtime in args.runtimes:
            for decode in (False, True):
                settings = settings_for(runtime, args, redis_url, bootstrap, topic, security)
                rows.append(await in_process(runtime, decode, settings, len(records)))
                print(f"  {rows[-1].runtime} {rows[-1].mode}: {rows[-1].rate:,.0f} events/s")
            settings = settings_for(runtime, args, redis_url, bootstrap, topic, security)
            rows.append(await end_to_end(runtime, settings, len(records), workdir / "consumer.log"))
            print(f"  {rows[-1].runtime} {rows[-1].mode}: {rows[-1].rate:,.0f} events/s")
        finished = True
        return rows
    finally:
        for service in reversed(services):
            service.stop()
        if finished:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--batch", type=int, default=2000, help="consumer.max_batch_records")
    parser.add_argument("--poll", type=int, default=24_000, help="consumer.max_poll_records")
    parser.add_argument("--faust-buffer", type=int, default=8192, help="stream_buffer_maxsize")
    parser.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto")
    parser.add_argument("--runtimes", type=lambda s: s.split(","), default=["aiokafka", "faust"])
    args = parser.parse_args()
    rows = event_loop_runner(args.loop)(run(args))
    print(
        f"\nevent loop {args.loop}, poll {args.poll}, batch {args.batch}, "
        f"faust buffer {args.faust_buffer}, {args.partitions} partitions"
    )
    print(f"{'runtime':<10} {'mode':<20} {'events':>9} {'seconds':>8} {'events/s':>10}")
    for r in rows:
        print(f"{r.runtime:<10} {r.mode:<20} {r.events:>9,} {r.seconds:>8.2f} {r.rate:>10,.0f}")


if __name__ == "__main__":
    main()
