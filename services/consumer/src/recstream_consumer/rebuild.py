"""Rebuilding a partition's state from the log when Redis lost it.

The store refuses a batch that does not continue its partition
(:class:`~recstream.store.port.StateLostError`): Redis came back empty (no partition
watermark, and the batch was not read from the log start) or went back in time
(a watermark below where the consumer read on from). The batch handler then
reads the missing records straight from the log with a
:class:`PartitionLog` (its own group-less Kafka client, so the group's fetch
positions and commits stay as they are), applies them with the same batch
core, and applies the refused batch after them. Every structure carries its
own watermark (users: partition and offset; statistic shards: one per
partition), so re-applying from the log start only fills in what is missing.

:class:`StateRebuilder` does one time slice of such a rebuild at a time (the
caller holds the partition's lock) and keeps the logs, the metrics and the
readiness flag of the rebuilds in progress.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from recstream.apply.batch import BatchReport, RawRecord
from recstream.platform.kafka import client_options, start_client
from recstream.platform.settings import KafkaSecurity
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.source import make_record

log = logging.getLogger(__name__)

Partition = tuple[str, int]
# Applies one batch read from ``read_from`` without a break, given the partition's log start.
ApplyBatch = Callable[[Sequence[RawRecord], int, int], Awaitable[BatchReport]]

SLICE_SECONDS = 5.0  # one rebuild step, then the source polls again (heartbeats, rebalances)
READ_TIMEOUT_SECONDS = 30.0
# The reader only fetches during a rebuild: no long polls, they would hold up its other requests.
FETCH_MAX_WAIT_MS = 10


class PartitionLog(Protocol):
    """Direct reads of one partition of the log, outside the consumer group."""

    async def log_start(self, topic: str, partition: int) -> int:
        """The partition's first offset the log still holds."""
        ...

    async def read(
        self, topic: str, partition: int, start: int, end: int, limit: int
    ) -> list[RawRecord]:
        """Records from ``start`` (in offset order, below ``end``, at most ``limit``);
        empty when the log holds none in ``[start, end)``."""
        ...


class KafkaPartitionLog:
    """A :class:`PartitionLog` over a group-less aiokafka consumer (one read at a time)."""

    def __init__(
        self, bootstrap_servers: str, client_id: str, security: KafkaSecurity | None = None
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._security = security or KafkaSecurity()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            **client_options(self._security),
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await start_client(self._consumer, self._bootstrap_servers, self._security)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def log_start(self, topic: str, partition: int) -> int:
        tp = TopicPartition(topic, partition)
        async with self._lock:
            offsets = await asyncio.wait_for(
                self._consumer.beginning_offsets([tp]), READ_TIMEOUT_SECONDS
            )
        return int(offsets[tp])

    async def log_end(self, topic: str, partition: int) -> int:
        tp = TopicPartition(topic, partition)
        async with self._lock:
            offsets = await asyncio.wait_for(self._consumer.end_offsets([tp]), READ_TIMEOUT_SECONDS)
        return int(offsets[tp])

    async def partitions(self, topic: str) -> list[int]:
        """The topic's partitions now (empty when the topic does not exist), from fresh
        metadata of every topic: the client's own metadata follows its assignment only."""
        async with self._lock:
            cluster = await asyncio.wait_for(
                self._consumer._client.fetch_all_metadata(), READ_TIMEOUT_SECONDS
            )
        return sorted(cluster.partitions_for_topic(topic) or ())

    async def read(
        self, topic: str, partition: int, start: int, end: int, limit: int
    ) -> list[RawRecord]:
        tp = TopicPartition(topic, partition)
        async with self._lock:
            self._consumer.assign([tp])
            self._consumer.seek(tp, start)
            try:
                return await self._fetch(tp, start, end, limit)
            finally:
                self._consumer.unsubscribe()  # no fetching between reads

    async def _fetch(self, tp: TopicPartition, start: int, end: int, limit: int) -> list[RawRecord]:
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while True:
            polled = await self._consumer.getmany(tp, timeout_ms=200, max_records=limit)
            records = [
                make_record(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value, m.headers)
                for m in polled.get(tp, [])
                if start <= m.offset < end
            ]
            if records or await self._consumer.position(tp) >= end:
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"{tp.topic}[{tp.partition}]: no record from {start} on")


@dataclass(slots=True)
class _Rebuild:
    started: float
    start: int
    lost: bool  # known to have lost records (no watermark, or records found below the batch)
    records: int = 0
    next: int = 0  # the offset after the last record this rebuild applied


class StateRebuilder:
    """Rebuild steps of partitions (the caller serialises the steps of one partition)."""

    def __init__(
        self,
        log: PartitionLog,
        apply: ApplyBatch,
        metrics: ConsumerMetrics,
        batch_records: int,
        slice_seconds: float = SLICE_SECONDS,
    ) -> None:
        self._log = log
        self._apply = apply
        self._metrics = metrics
        self._batch = batch_records
        self._slice = slice_seconds
        self._log_starts: dict[Partition, int] = {}
        self._running: dict[Partition, _Rebuild] = {}

    def rebuilding(self) -> set[Partition]:
        return set(self._running)

    async def log_start(self, key: Partition, *, refresh: bool = False) -> int:
        """The partition's log start, asked of the log once (or again with ``refresh``)."""
        if refresh or key not in self._log_starts:
            self._log_starts[key] = await self._log.log_start(*key)
        return self._log_starts[key]

    async def step(self, key: Partition, watermark: int | None, end: int) -> bool:
        """Apply the records the store lacks below ``end``, for at most one time slice.

        ``watermark`` is the partition's stored one (None: none). True when the store
        holds everything below ``end``; False when the slice ran out first.
        """
        log_start = await self.log_start(key, refresh=watermark is None)
        start = log_start if watermark is None else watermark + 1
        self._begin(key, watermark, start, end, log_start)
        running = self._running[key]
        read_from = start  # this step reads on from here without a break
        deadline = time.monotonic() + self._slice
        while start < end:
            chunk = await self._log.read(*key, start, end, self._batch)
            if not chunk:
                break
            if not running.lost:
                running.lost = True
                log.error(
                    "Redis lost records of %s[%d]: it holds the partition up to offset %d "
                    "only, the log has records from %d on; re-applying them",
                    *key, start - 1, chunk[0].offset, extra=_fields(key),
                )  # fmt: skip
                self._metrics.state_lost.labels(*_labels(key)).inc()
            await self._apply(chunk, read_from, log_start)
            self._metrics.store_seen()
            self._metrics.rebuilt_records.labels(key[0]).inc(len(chunk))
            running.records += len(chunk)
            start = running.next = chunk[-1].offset + 1
            if start < end and time.monotonic() > deadline:
                return False
        return True

    def finish(self, key: Partition) -> None:
        """The partition's state is whole again (or it was never missing)."""
        running = self._running.pop(key, None)
        if running is None:
            return
        self._metrics.set_rebuilding(*key, False)
        if running.lost:
            log.info(
                "rebuilt %s[%d] from the log: %d records from offset %d in %.2f s",
                *key, running.records, running.start, time.monotonic() - running.started,
                extra=_fields(key),
            )  # fmt: skip

    def forget(self, keys: Sequence[Partition]) -> None:
        """The partitions went to another member: it rebuilds them if needed."""
        for key in keys:
            if self._running.pop(key, None) is not None:
                self._metrics.set_rebuilding(*key, False)

    def _begin(
        self, key: Partition, watermark: int | None, start: int, end: int, log_start: int
    ) -> None:
        running = self._running.get(key)
        if running is not None and start >= running.next:
            return  # the rebuild goes on where its last step ended
        # A new rebuild, or the store lost what this one had applied: begin again from here.
        self._running[key] = _Rebuild(time.monotonic(), start, lost=watermark is None, next=start)
        self._metrics.set_rebuilding(*key, True)
        if watermark is not None:
            return  # records below the batch may only be offsets without records: see step()
        self._metrics.state_lost.labels(*_labels(key)).inc()
        log.error(
            "Redis lost the state of %s[%d]: no partition watermark, but the consumer reads "
            "on from offset %d; rebuilding it from the log start (offset %d)",
            *key, end, start, extra=_fields(key),
        )  # fmt: skip
        if log_start > 0:
            log.warning(
                "%s[%d]: the log no longer holds the records before offset %d; their events "
                "are missing from the rebuilt state (`recstream replay` of an event file "
                "restores them)",
                *key, log_start, extra=_fields(key),
            )  # fmt: skip


def _labels(key: Partition) -> tuple[str, str]:
    return key[0], str(key[1])


def _fields(key: Partition) -> dict[str, object]:
    return {"topic": key[0], "partition": key[1]}
