"""The consumer as a process (``python -m recstream_consumer``): kill -9, restart, SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore
from recstream_consumer.settings import ConsumerSettings, Runtime

from .conftest import (
    RUNTIMES,
    Sent,
    assert_counts_match,
    consumer_command,
    consumer_settings,
    create_topic,
    interaction_events,
    last_offsets,
    produce_events,
    settings_env,
    total_events,
    wait_for_watermarks,
    wait_until,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4


@contextlib.asynccontextmanager
async def consumer_process(
    settings: ConsumerSettings, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            *consumer_command(),
            env=settings_env(settings),
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


def process_watch(process: asyncio.subprocess.Process, log: Path) -> asyncio.Task[None]:
    async def watch() -> None:
        code = await process.wait()
        raise AssertionError(f"consumer exited with {code}:\n{tail(log)}")

    return asyncio.create_task(watch(), name="consumer-process")


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_kill_9_mid_stream_then_restart_loses_nothing_and_counts_nothing_twice(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
    tmp_path: Path,
) -> None:
    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=PARTITIONS,
        max_batch_records=100,
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    events = interaction_events(6000, users=80)
    users = {e["user_id"] for e in events}
    chunks = [events[i : i + 250] for i in range(0, len(events), 250)]
    sent: list[Sent] = []
    killed = asyncio.Event()

    async def keep_producing() -> None:
        for index, chunk in enumerate(chunks):
            if index == len(chunks) * 2 // 3:
                await killed.wait()  # the last third arrives after the kill
            sent.extend(await produce_events(kafka_bootstrap, topic_name, chunk))
            await asyncio.sleep(0.05)

    producer = asyncio.create_task(keep_producing(), name="producer")
    log = tmp_path / "consumer.log"
    async with consumer_process(settings, log) as first:
        watch = process_watch(first, log)

        async def under_way() -> bool:
            return await total_events(store, users) >= 1500

        await wait_until(under_way, 30, "the first consumer applies events", watch=[watch])
        watch.cancel()
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        killed.set()
    at_kill = await total_events(store, users)
    await producer
    assert 1500 <= at_kill < len(events)

    async with consumer_process(settings, log) as second:
        watch = process_watch(second, log)
        await wait_for_watermarks(store, topic_name, last_offsets(sent), watch=[watch])
        watch.cancel()
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 15) == 0
    await assert_counts_match(store, events)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_sigterm_commits_the_applied_offsets_and_exits_quickly(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
    tmp_path: Path,
) -> None:
    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=PARTITIONS,
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    events = interaction_events(800, users=30)
    sent = await produce_events(kafka_bootstrap, topic_name, events)
    log = tmp_path / "consumer.log"
    async with consumer_process(settings, log) as process:
        await wait_for_watermarks(store, topic_name, last_offsets(sent))
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 15)
        stopped_in = time.monotonic() - started
    assert code == 0, tail(log)
    assert stopped_in < 5.0
    await assert_counts_match(store, events)
    committed = await committed_offsets(kafka_bootstrap, topic_name, settings.consumer.group_id)
    assert committed == {p: offset + 1 for p, offset in last_offsets(sent).items()}


async def committed_offsets(bootstrap: str, topic: str, group_id: str) -> dict[int, int | None]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id)
    await reader.start()
    try:
        return {p: await reader.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await reader.stop()
