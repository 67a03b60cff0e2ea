"""Helpers for the integration tests: produce to the real broker, wait for Redis, run a consumer.

Every test uses its own topic (``topic_name``), consumer group and key
prefix (``keyspace``), so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.asyncio import Redis

from recstream.contract.events import EventType
from recstream.contract.keyspace import Keyspace
from recstream.platform.kafka import security_environ
from recstream.store.redis import RedisStore
from recstream_consumer.service import Consumer, open_consumer
from recstream_consumer.settings import ConsumerSettings, Runtime
from recstream_consumer.topics import TopicSpec, ensure_topics

from ..unit.eventgen import make_event

RUNTIMES: tuple[Runtime, ...] = ("aiokafka", "faust")
REPO = Path(__file__).resolve().parents[2]

# Short group timeouts: a join costs about half the session timeout on the test broker.
FAST_GROUP: dict[str, Any] = {
    "session_timeout_ms": 1000,
    "heartbeat_interval_ms": 300,
    "poll_timeout_ms": 200,
    "fetch_max_wait_ms": 50,
    "faust_batch_within_ms": 20,
    "faust_commit_interval_seconds": 0.2,
    "retry_initial_delay_ms": 50,
    "retry_max_delay_ms": 500,
    "retry_budget_seconds": 10.0,
    "http_port": 0,  # no status port: tests must not contend for 9100
}


@dataclass(frozen=True, slots=True)
class Sent:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


def consumer_settings(
    *,
    redis_url: str,
    kafka_bootstrap: str,
    keyspace: Keyspace,
    topic: str,
    runtime: Runtime = "aiokafka",
    partitions: int = 4,
    **consumer: Any,
) -> ConsumerSettings:
    """Settings of a consumer that reads ``topic`` into ``keyspace``, with its own group."""
    return ConsumerSettings(
        redis={"url": redis_url, "key_prefix": keyspace.prefix},
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "interactions_topic": topic,
            "dead_letter_topic": f"{topic}.dlq",
            "catalog_topic": f"{topic}.catalog",
            "erasures_topic": f"{topic}.erasures",
            "partitions": partitions,
        },
        consumer={
            "runtime": runtime,
            "group_id": f"g-{topic}",
            "instance_id": f"test-{uuid.uuid4().hex[:6]}",
            **FAST_GROUP,
            **consumer,
        },
    )


def settings_env(settings: ConsumerSettings) -> dict[str, str]:
    """The same settings as environment variables, for a consumer subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    for section in ("redis", "kafka", "consumer"):
        values = getattr(settings, section).model_dump(mode="json", exclude={"security"})
        for name, value in values.items():
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"RECSTREAM_{section.upper()}__{name.upper()}"] = text
    env.update(security_environ(settings.kafka.security))
    return env


@pytest.fixture
def store(redis_client: Redis, keyspace: Keyspace) -> RedisStore:
    """The Redis store of this test's key prefix."""
    return RedisStore(redis_client, keyspace)


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    await ensure_topics(bootstrap, [TopicSpec(topic, partitions, 1)])


def encode(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    headers: Sequence[tuple[str, bytes]] | None = None,
    timestamp_ms: int | None = None,
) -> list[Sent]:
    """Send ``(key, value)`` records in order and wait for every ack."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        pairs = list(records)
        futures = [
            await producer.send(
                topic, value=value, key=key, headers=list(headers or []), timestamp_ms=timestamp_ms
            )
            for key, value in pairs
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [
        Sent(key, value, meta.partition, meta.offset)
        for (key, value), meta in zip(pairs, metadata, strict=True)
    ]


def produce_events(
    bootstrap: str, topic: str, events: Iterable[Mapping[str, Any]]
) -> Awaitable[list[Sent]]:
    """Produce contract events keyed by ``user_id``."""
    return produce(bootstrap, topic, ((e["user_id"].encode(), encode(e)) for e in events))


def last_offsets(sent: Iterable[Sent]) -> dict[int, int]:
    last: dict[int, int] = {}
    for record in sent:
        last[record.partition] = max(last.get(record.partition, -1), record.offset)
    return last


# Deadlines of the waits below, as multiples of what a wait takes idle at most: generous,
# since a loaded 2-core machine runs the consumer, the broker and Redis several times slower.
DEADLINE_SCALE = 4.0


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    within: float,
    what: str,
    *,
    watch: Sequence[asyncio.Task[Any]] = (),
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` until it holds; fail early if a watched task died.

    ``within`` is what the wait takes on an idle machine, at most; the deadline is
    :data:`DEADLINE_SCALE` times that, because CI runs on two cores that other processes
    share. A passing test never waits it out: only a failing one does."""
    deadline = time.monotonic() + within * DEADLINE_SCALE
    while True:
        for task in watch:
            if task.done():
                task.result()  # raises the task's error
                raise AssertionError(f"task {task.get_name()} ended while waiting for {what}")
        if await condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {within * DEADLINE_SCALE:.0f}s waiting for {what}"
            )
        await asyncio.sleep(interval)


async def wait_for_watermarks(
    store: RedisStore,
    topic: str,
    expected: Mapping[int, int],
    within: float = 30.0,
    *,
    watch: Sequence[asyncio.Task[Any]] = (),
) -> None:
    """Wait until Redis has applied every partition up to the given last offsets."""

    async def caught_up() -> bool:
        marks = await store.partition_watermarks(topic)
        return all(marks.get(p, -1) >= offset for p, offset in expected.items())

    await wait_until(caught_up, within, f"watermarks {dict(expected)} of {topic}", watch=watch)


async def total_events(store: RedisStore, users: Iterable[str]) -> int:
    total = 0
    for user in users:
        state = await store.get_user(user)
        total += state.total_events if state is not None else 0
    return total


async def wait_for_total_events(
    store: RedisStore, users: Iterable[str], expected: int, within: float = 30.0
) -> None:
    """Wait until the users' states in Redis count ``expected`` events together."""
    user_list = list(users)

    async def reached() -> bool:
        return await total_events(store, user_list) >= expected

    await wait_until(reached, within, f"{expected} events in Redis")


@contextlib.asynccontextmanager
async def running_consumer(settings: ConsumerSettings) -> AsyncIterator[tuple[Consumer, Any]]:
    """One consumer in this process; stopped (gracefully) when the block ends."""
    async with open_consumer(settings) as consumer:
        task = asyncio.create_task(consumer.source.run(), name=f"consumer-{settings.consumer}")
        try:
            yield consumer, task
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 20)


async def read_topic(bootstrap: str, topic: str, count: int, within: float = 15.0) -> list[Any]:
    """The first ``count`` records of every partition of ``topic`` (no consumer group)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records: list[Any] = []
        deadline = time.monotonic() + within
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                records.extend(messages)
        return records
    finally:
        await consumer.stop()


def consumer_command() -> list[str]:
    return [sys.executable, "-m", "recstream_consumer"]


KINDS = [
    EventType.PRODUCT_VIEW,
    EventType.PRODUCT_VIEW,
    EventType.ADD_TO_CART,
    EventType.GROUP_VIEW,
    EventType.GROUP_JOIN_CLICK,
    EventType.PURCHASE_COMPLETED,
    EventType.PRODUCT_SEARCH,
    EventType.CART_REMOVE,
]


def interaction_events(count: int, users: int, *, start: int = 0) -> list[dict[str, Any]]:
    """Mixed events of ``users`` users, ids ``e<start>``..."""
    return [
        make_event(
            f"e{i}",
            KINDS[i % len(KINDS)],
            f"u{i % users}",
            minutes=i,
            product_id=f"p{i % 13}",
            group_id=f"g{i % 5}",
            category=f"c{i % 4}",
        )
        for i in range(start, start + count)
    ]


def expected_counts(events: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    per_user: dict[str, Counter[str]] = {}
    for event in events:
        per_user.setdefault(event["user_id"], Counter())[event["event_type"]] += 1
    return per_user


async def assert_counts_match(store: RedisStore, events: list[dict[str, Any]]) -> None:
    for user, counts in expected_counts(events).items():
        state = await store.get_user(user)
        assert state is not None, f"{user} missing in Redis"
        assert state.total_events == sum(counts.values()), user
        assert dict(state.counts) == dict(counts), user


class TcpProxy:
    """A loopback TCP proxy that can be cut and restored: a network outage on demand."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()
