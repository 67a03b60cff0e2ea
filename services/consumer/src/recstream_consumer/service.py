"""Wiring of one consumer process: settings in, a running source out.

:func:`open_consumer` builds the Redis client, the store, the dead-letter
producer, the shared batch handler and the chosen :class:`EventSource`, and
closes them again. ``__main__`` (the composition root), the benchmark and
the tests use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from recstream.store import RedisStore
from recstream_consumer.aiokafka_source import AiokafkaSource
from recstream_consumer.deadletters import KafkaDeadLetterSink
from recstream_consumer.handler import (
    BatchHandler,
    ConsumerCounters,
    RecordHandler,
    RetryPolicy,
)
from recstream_consumer.settings import ConsumerSettings
from recstream_consumer.source import EventSource
from recstream_consumer.topics import ensure_topics, topic_specs

log = logging.getLogger(__name__)

STATS_INTERVAL_SECONDS = 30.0


@dataclass
class Consumer:
    settings: ConsumerSettings
    handler: RecordHandler
    source: EventSource

    @property
    def counters(self) -> ConsumerCounters:
        return self.handler.counters

    def stop(self) -> None:
        self.source.stop()


def build_source(settings: ConsumerSettings, handler: RecordHandler) -> EventSource:
    kafka, section = settings.kafka, settings.consumer
    client_id = f"{kafka.client_id}-consumer-{section.instance_id}"
    if section.runtime == "faust":
        from recstream_consumer.faust_source import FaustSource  # faust is slow to import

        return FaustSource(
            bootstrap_servers=kafka.bootstrap_servers,
            topics=[kafka.interactions_topic, kafka.catalog_topic],
            partitions=kafka.partitions,
            settings=section,
            handler=handler,
            client_id=client_id,
        )
    return AiokafkaSource(
        bootstrap_servers=kafka.bootstrap_servers,
        topics=[kafka.interactions_topic, kafka.catalog_topic],
        settings=section,
        handler=handler,
        client_id=client_id,
    )


@contextlib.asynccontextmanager
async def open_consumer(settings: ConsumerSettings) -> AsyncIterator[Consumer]:
    kafka, section = settings.kafka, settings.consumer
    if section.create_topics:
        await ensure_topics(kafka.bootstrap_servers, topic_specs(kafka), kafka.client_id)
    redis = Redis.from_url(
        settings.redis.url,
        socket_timeout=settings.redis.socket_timeout_seconds,
        socket_connect_timeout=settings.redis.socket_timeout_seconds,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=f"{kafka.client_id}-dlq-{section.instance_id}",
        acks="all",
        linger_ms=5,
    )
    await producer.start()
    try:
        retry = RetryPolicy(
            initial_delay=section.retry_initial_delay_ms / 1000,
            max_delay=section.retry_max_delay_ms / 1000,
            budget=section.retry_budget_seconds,
        )
        store = RedisStore(redis, settings.redis.keyspace())
        sink = KafkaDeadLetterSink(producer, kafka.dead_letter_topic)
        handler = BatchHandler(store, sink, settings.core, retry, catalog_topic=kafka.catalog_topic)
        yield Consumer(settings, handler, build_source(settings, handler))
    finally:
        await producer.stop()
        await redis.aclose()


async def _log_stats(consumer: Consumer, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        log.info("consumer stats: %s", consumer.counters.as_dict())


async def serve(settings: ConsumerSettings, *, handle_signals: bool = True) -> ConsumerCounters:
    """Run one consumer until SIGTERM/SIGINT (or until its source is stopped)."""
    async with open_consumer(settings) as consumer:
        loop = asyncio.get_running_loop()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, consumer.stop)
        stats = asyncio.create_task(_log_stats(consumer, STATS_INTERVAL_SECONDS))
        log.info(
            "consumer %s starting: runtime=%s topic=%s group=%s",
            settings.consumer.instance_id,
            consumer.source.name,
            settings.kafka.interactions_topic,
            settings.consumer.group_id,
        )
        try:
            await consumer.source.run()
        finally:
            stats.cancel()
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
        return consumer.counters
