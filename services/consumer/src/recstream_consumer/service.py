"""Wiring of one consumer process: settings in, a running source out.

:func:`open_consumer` builds the Redis client, the store, the dead-letter
producer, the log reader for rebuilds, the metrics, the quality monitor, the
shared batch handler, the chosen :class:`EventSource` and the status port
(``/metrics``, ``/healthz``, ``/readyz``), and closes them again. Next to the
status port run the Redis watch behind ``/readyz`` and the check of the owned
partitions' state (:meth:`~recstream_consumer.handler.BatchHandler.check_partitions`,
every ``STATE_CHECK_SECONDS``). ``__main__`` (the composition root), the
benchmark and the tests use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from recstream.platform.kafka import KafkaConnectError, client_options, start_client
from recstream.platform.redis import redis_client
from recstream.store.eviction import EvictionPolicyError, check_eviction
from recstream.store.port import StoreError
from recstream.store.redis import RedisClient, RedisStore
from recstream_consumer.aiokafka_source import AiokafkaSource
from recstream_consumer.deadletters import KafkaDeadLetterSink
from recstream_consumer.erasures import ErasureSync
from recstream_consumer.handler import (
    BatchHandler,
    ConsumerCounters,
    RecordHandler,
    RetryPolicy,
)
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.prequential import QualityMonitor
from recstream_consumer.rebuild import KafkaPartitionLog
from recstream_consumer.settings import ConsumerSettings
from recstream_consumer.source import EventSource
from recstream_consumer.stats import StatsLog, StatsSnapshot
from recstream_consumer.topics import ensure_topics, topic_specs
from recstream_consumer.web import Readiness, StatusServer, readiness

log = logging.getLogger(__name__)

STATS_INTERVAL_SECONDS = 30.0
STATE_CHECK_SECONDS = 1.0
FOLLOW_STOP_SECONDS = 5.0  # the erasure follower's longest stop


@dataclass
class Consumer:
    settings: ConsumerSettings
    handler: RecordHandler
    source: EventSource
    metrics: ConsumerMetrics
    quality: QualityMonitor | None = None
    status_port: int | None = None  # where /metrics, /healthz and /readyz answer

    @property
    def counters(self) -> ConsumerCounters:
        return self.handler.counters

    def readiness(self) -> Readiness:
        """Ready: owns partitions, Redis answers, and no partition is being rebuilt."""
        state = readiness(
            len(self.source.assignment()),
            self.metrics.store_age(),
            self.settings.consumer.ready_redis_seconds,
        )
        return replace(state, ready=False) if self.metrics.rebuilding_partitions else state

    def stop(self) -> None:
        self.source.stop()


def build_source(
    settings: ConsumerSettings, handler: RecordHandler, metrics: ConsumerMetrics | None = None
) -> EventSource:
    kafka, section = settings.kafka, settings.consumer
    client_id = f"{kafka.client_id}-consumer-{section.instance_id}"
    if section.runtime == "faust":
        from recstream_consumer.faust_source import FaustSource  # faust is slow to import

        return FaustSource(
            bootstrap_servers=kafka.bootstrap_servers,
            security=kafka.security,
            topics=[kafka.interactions_topic, kafka.catalog_topic],
            partitions=kafka.partitions,
            settings=section,
            handler=handler,
            client_id=client_id,
            metrics=metrics,
        )
    return AiokafkaSource(
        bootstrap_servers=kafka.bootstrap_servers,
        security=kafka.security,
        topics=[kafka.interactions_topic, kafka.catalog_topic],
        settings=section,
        handler=handler,
        client_id=client_id,
        metrics=metrics,
    )


def build_quality(
    settings: ConsumerSettings, store: RedisStore, metrics: ConsumerMetrics
) -> QualityMonitor | None:
    section = settings.consumer
    if section.quality_sample_rate <= 0:
        return None
    return QualityMonitor(
        store,
        settings.core,
        settings.scoring,
        metrics,
        rate=section.quality_sample_rate,
        k=section.quality_k,
        window=section.quality_window,
        budget=section.quality_budget,
    )


@contextlib.asynccontextmanager
async def open_consumer(settings: ConsumerSettings) -> AsyncIterator[Consumer]:
    kafka, section = settings.kafka, settings.consumer
    if section.create_topics:
        await ensure_topics(
            kafka.bootstrap_servers, topic_specs(kafka), kafka.client_id, kafka.security
        )
    redis = redis_client(
        settings.redis.url,
        socket_timeout=settings.redis.socket_timeout_seconds,
        socket_connect_timeout=settings.redis.socket_timeout_seconds,
    )
    try:
        await check_eviction(redis, allow_eviction=settings.redis.allow_eviction)
    except EvictionPolicyError:
        await redis.aclose()
        raise
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=f"{kafka.client_id}-dlq-{section.instance_id}",
        acks="all",
        linger_ms=5,
        **client_options(kafka.security),
    )
    try:
        await start_client(producer, kafka.bootstrap_servers, kafka.security)
    except KafkaConnectError:
        await redis.aclose()
        raise
    log_reader = KafkaPartitionLog(
        kafka.bootstrap_servers,
        f"{kafka.client_id}-rebuild-{section.instance_id}",
        kafka.security,
    )
    # the erasure log has a reader of its own: a manual assignment narrows the metadata a
    # client keeps to the assigned topics, so a reader shared with the rebuild could lose
    # sight of the erasures topic between two rebuild steps
    erasure_reader = KafkaPartitionLog(
        kafka.bootstrap_servers,
        f"{kafka.client_id}-erasures-{section.instance_id}",
        kafka.security,
    )
    try:
        await log_reader.start()
        await erasure_reader.start()
        retry = RetryPolicy(
            initial_delay=section.retry_initial_delay_ms / 1000,
            max_delay=section.retry_max_delay_ms / 1000,
            budget=section.retry_budget_seconds,
        )
        store = RedisStore(redis, settings.redis.keyspace())
        erasures = ErasureSync(erasure_reader, kafka.erasures_topic, store, settings.core)
        await erasures.ensure()  # before the first event is folded
        sink = KafkaDeadLetterSink(producer, kafka.dead_letter_topic)
        metrics = ConsumerMetrics(topics=[kafka.interactions_topic, kafka.catalog_topic])
        quality = build_quality(settings, store, metrics)
        handler = BatchHandler(
            store,
            sink,
            settings.core,
            retry,
            catalog_topic=kafka.catalog_topic,
            metrics=metrics,
            quality=quality,
            log=log_reader,
            rebuild_batch_records=section.max_batch_records,
            erasures=erasures,
        )
        source = build_source(settings, handler, metrics)
        consumer = Consumer(settings, handler, source, metrics, quality)
        follow = asyncio.create_task(
            _follow_erasures(erasures, section.erasure_sync_seconds), name="recstream-erasures"
        )
        topics = (kafka.interactions_topic, kafka.catalog_topic)
        slots = asyncio.create_task(
            _watch_slots(store, topics, section.slot_check_seconds), name="recstream-slots"
        )
        try:
            async with _status_port(consumer, redis):
                yield consumer
        finally:
            follow.cancel()
            slots.cancel()
            # bounded: a Kafka client that swallowed the cancellation must not hold the stop
            await asyncio.wait({follow, slots}, timeout=FOLLOW_STOP_SECONDS)
    finally:
        await erasure_reader.stop()
        await log_reader.stop()
        await producer.stop()
        await redis.aclose()


async def _follow_erasures(erasures: ErasureSync, interval: float) -> None:
    """Bring the store up to the erasure log every ``interval`` seconds. The API writes an
    erasure to the log, then to Redis; an API that dies in between leaves the user's state
    in Redis until this applies it (the start and every rebuild do too)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await erasures.ensure()
        except (StoreError, KafkaError, RedisError, OSError, TimeoutError) as exc:
            # Redis or the broker away, or the user's batches kept moving: the next round
            log.warning("erasure log not followed this round, trying again: %s", exc)
        except Exception:  # the loop must never end: it is tried again next time
            log.exception("erasure log not followed this round")


async def _watch_slots(store: RedisStore, topics: Sequence[str], interval: float) -> None:
    """On a Redis Cluster, every ``interval`` seconds: when a primary came back without its
    data (hash slots lost their markers) and it did not hold the partition watermarks,
    delete the rest of the keyspace version, so that every owner rebuilds its partitions
    from the log as after a ``FLUSHALL``
    (:meth:`~recstream_consumer.handler.BatchHandler.check_partitions`); the markers are
    written again after, so a stop in between finds the loss again."""
    if not store.cluster:
        return
    while True:
        try:
            lost = await store.lost_slots()
            if lost:
                log.error(
                    "Redis Cluster lost the data of %d hash slots (a primary came back "
                    "empty): the keyspace is deleted and every partition of %s is rebuilt "
                    "from the log",
                    lost,
                    ", ".join(topics),
                )
                await store.forget_keyspace()
                await store.mark_slots()
        except (StoreError, RedisError, OSError, TimeoutError) as exc:
            log.warning("hash slots not checked this round, trying again: %s", exc)
        except Exception:  # the loop must never end: it is tried again next time
            log.exception("hash slots not checked this round")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def _status_port(consumer: Consumer, redis: RedisClient) -> AsyncIterator[None]:
    """The status server (unless the port is 0) and the Redis watch behind ``/readyz``."""
    section = consumer.settings.consumer
    server = StatusServer(consumer.metrics, consumer.readiness)
    if section.http_port:
        consumer.status_port = await server.start(section.http_host, section.http_port)
    watches = [
        asyncio.create_task(
            _watch_store(redis, consumer.metrics, section.ready_redis_seconds / 3),
            name="recstream-redis-watch",
        ),
        asyncio.create_task(_check_state(consumer), name="recstream-state-check"),
    ]
    try:
        yield
    finally:
        for watch in watches:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        await server.stop()


async def _watch_store(redis: RedisClient, metrics: ConsumerMetrics, interval: float) -> None:
    """Ping Redis when no batch showed it answering within ``interval``."""
    while True:
        age = metrics.store_age()
        if age is None or age >= interval:
            try:
                await redis.ping()
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("redis ping failed: %s", exc)
            else:
                metrics.store_seen()
        await asyncio.sleep(interval)


async def _check_state(consumer: Consumer) -> None:
    """Find owned partitions whose state Redis lost while no batch came, and rebuild them."""
    while True:
        await asyncio.sleep(STATE_CHECK_SECONDS)
        try:
            await consumer.handler.check_partitions(consumer.source.assignment())
        except (StoreError, KafkaError, RedisError, OSError, TimeoutError) as exc:
            log.debug("state check failed (tried again): %s", exc)
        except Exception:  # the check must never end: it is tried again next time
            log.exception("state check failed")


def stats_snapshot(consumer: Consumer) -> StatsSnapshot:
    """What the ``consumer stats`` line reports (:mod:`~recstream_consumer.stats`)."""
    lag = sum(
        int(sample.value) for family in consumer.metrics.lag.collect() for sample in family.samples
    )
    quality = consumer.quality
    return StatsSnapshot.of(
        consumer.counters.as_dict(),
        consumer.source.assignment(),
        consumer.metrics.rebuilding_partitions,
        lag,
        quality.window if quality is not None else None,
    )


async def _log_stats(consumer: Consumer, interval: float) -> None:
    """A ``consumer stats`` line every ``interval``: at INFO when something changed."""
    stats = StatsLog()
    while True:
        await asyncio.sleep(interval)
        stats.write(stats_snapshot(consumer))


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
