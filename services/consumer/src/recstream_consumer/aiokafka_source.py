"""The plain aiokafka runner: ``getmany`` batches per partition, manual commits.

Each poll returns up to ``max_poll_records`` records grouped by partition,
cut into batches of at most ``max_batch_records``. Every partition batch goes
through the handler (Redis step, dead letters acknowledged); the offsets of
the batches that succeeded are then committed (``last offset + 1``). A batch
the handler gives up on (an outage outlasting the retry budget) rewinds its
partition, and every partition not yet handled in that poll, to the first
offset not applied, so it is read again.

A rebalance waits for the in-flight batch: the listener takes the same lock
as the poll loop, commits what was applied, then lets the partitions go.

Lag (``recstream_consumer_lag``) is the partition's high-water mark, as the
last fetch response reported it (``consumer.highwater``), minus the next
offset to apply (before the first batch of a partition: the fetch position);
it is refreshed after every poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError

from recstream.platform.kafka import client_options, start_client
from recstream.platform.settings import KafkaSecurity
from recstream_consumer.handler import (
    BatchNotAppliedError,
    RecordHandler,
    batch_fields,
    not_applied_level,
)
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.settings import ConsumerSection
from recstream_consumer.source import make_record

log = logging.getLogger(__name__)

COMMIT_TIMEOUT_SECONDS = 10.0


class AiokafkaSource:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        security: KafkaSecurity | None = None,
        topics: Sequence[str],
        settings: ConsumerSection,
        handler: RecordHandler,
        client_id: str = "recstream-consumer",
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._topics = list(topics)
        self._handler = handler
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()  # held while a poll's batches are handled
        self._applied: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self._committed: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._bootstrap_servers = bootstrap_servers
        self._security = security or KafkaSecurity()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            **client_options(self._security),
            client_id=client_id,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset=settings.auto_offset_reset,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            max_poll_interval_ms=settings.max_poll_interval_ms,
        )

    @property
    def name(self) -> str:
        return "aiokafka"

    @property
    def consumer(self) -> AIOKafkaConsumer:
        return self._consumer

    def stop(self) -> None:
        self._stopping.set()
        self._handler.request_stop()

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    # FlowControl, used by the handler while it waits out an outage
    def pause_fetching(self) -> None:
        self._paused = set(self._consumer.assignment())
        self._consumer.pause(*self._paused)

    def resume_fetching(self) -> None:
        still_assigned = self._paused & set(self._consumer.assignment())
        self._consumer.resume(*still_assigned)
        self._paused = set()

    async def run(self) -> None:
        consumer = self._consumer
        consumer.subscribe(self._topics, listener=_Rebalance(self))
        await start_client(consumer, self._bootstrap_servers, self._security)
        log.info(
            "aiokafka source started: topics=%s group=%s", self._topics, self._settings.group_id
        )
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(
                    timeout_ms=self._settings.poll_timeout_ms,
                    max_records=self._settings.max_poll_records,
                )
                if batches:
                    async with self._lock:
                        await self._handle_poll(batches)
                        await self._commit_applied()
                await self._update_lag()
        finally:
            async with self._lock:
                await self._commit_applied()
            await consumer.stop()
            log.info("aiokafka source stopped: %s", self._handler.counters.summary())

    async def _handle_poll(
        self, polled: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        assigned = self._consumer.assignment()
        size = self._settings.max_batch_records
        pending = [
            (tp, messages[start : start + size])
            for tp, messages in polled.items()
            if tp in assigned
            for start in range(0, len(messages), size)
        ]
        for index, (tp, messages) in enumerate(pending):
            if self._stopping.is_set():
                return  # not applied, not committed: read again by whoever owns it next
            records = [
                make_record(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value, m.headers)
                for m in messages
            ]
            try:
                await self._handler.handle(records, flow=self)
            except BatchNotAppliedError as exc:
                log.log(
                    not_applied_level(exc),
                    "batch not applied, will read it again: %s",
                    exc,
                    extra=batch_fields(records),
                )
                self._rewind(pending[index:])
                return
            self._applied[tp] = messages[-1].offset + 1

    async def _update_lag(self) -> None:
        if self._metrics is None:
            return
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue  # nothing fetched yet
            next_offset = self._applied.get(tp)
            if next_offset is None:
                try:  # a fetch was answered, so the position is known: this does not wait
                    next_offset = await self._consumer.position(tp)
                except IllegalStateError:
                    continue  # revoked meanwhile
            self._metrics.set_lag(tp.topic, tp.partition, highwater - next_offset)

    def _rewind(
        self, pending: Sequence[tuple[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]]
    ) -> None:
        """Seek every partition with a batch not applied back to its first such batch."""
        assigned = self._consumer.assignment()
        first: dict[TopicPartition, int] = {}
        for tp, messages in pending:
            first.setdefault(tp, messages[0].offset)
        for tp, offset in first.items():
            if tp in assigned:
                self._consumer.seek(tp, offset)

    async def _commit_applied(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the applied offsets not committed yet (all, or those of ``only``)."""
        assigned = self._consumer.assignment()
        offsets = {
            tp: offset
            for tp, offset in self._applied.items()
            if tp in assigned
            and (only is None or tp in only)
            and self._committed.get(tp, -1) < offset
        }
        if not offsets:
            return
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), COMMIT_TIMEOUT_SECONDS)
        except (KafkaError, TimeoutError) as exc:
            # Correctness does not rest on the commit: Redis watermarks make a replay a no-op.
            log.warning("offset commit failed (%r); the batches will be skipped on replay", exc)
            return
        self._committed.update(offsets)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:  # the in-flight batch finishes (or is abandoned whole) first
            await self._commit_applied(only=set(revoked))
            for tp in revoked:
                self._applied.pop(tp, None)
                self._committed.pop(tp, None)
        self._handler.forget_partitions((tp.topic, tp.partition) for tp in revoked)
        if self._metrics is not None:
            self._metrics.forget_partitions((tp.topic, tp.partition) for tp in revoked)
        if revoked:
            log.info("partitions revoked: %s", describe(revoked))

    def on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._handler.forget_partitions((tp.topic, tp.partition) for tp in assigned)
        if self._metrics is not None:
            self._metrics.rebalances.inc()
        log.info("partitions assigned: %s", describe(assigned))


def describe(partitions: Iterable[TopicPartition]) -> str:
    """``topic[0,1,2] other[3]`` for logs."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return " ".join(f"{t}{sorted(p)}" for t, p in sorted(by_topic.items())) or "none"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, source: AiokafkaSource) -> None:
        self._source = source

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._source.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._source.on_assigned(assigned)
