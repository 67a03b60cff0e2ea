"""The batch handler both runtimes share: one partition batch in, Redis and dead letters out.

Each assigned partition has one :class:`~recstream.apply.batch.PartitionApplier`,
which owns its batches: decode, fold, plan, the atomic store step guarded by
watermarks, and the one retry policy. The handler adds what only a consumer
does around it: the quality monitor (:mod:`~recstream_consumer.prequential`)
scores sampled events before the batch is loaded (from its own reads, so the
write path has no reads in the middle), the dead letters are published and
acknowledged, and the batch is counted in
:class:`~recstream_consumer.metrics.ConsumerMetrics`. Only when
:meth:`BatchHandler.handle` returns may the source commit the batch's offsets.

When Redis (or the dead-letter topic) is unavailable the applier asks the
source, through the handler, to pause fetching and retries the same batch with
jittered exponential backoff, for at most ``retry_budget_seconds``; then it
raises :class:`BatchNotAppliedError` and the source re-reads the batch from its
first offset later. Memory stays bounded (one batch), nothing is committed
past what was applied, and the process does not exit.

With a :class:`~recstream_consumer.rebuild.PartitionLog` each applier also
tells the store where it read its partition from without a break, so the
store refuses a batch that does not continue the partition's state
(:class:`~recstream.store.port.StateLostError`: Redis came back empty, or went
back in time). The handler then re-applies the missing records from the log
(:mod:`~recstream_consumer.rebuild`) and the batch after them. A rebuild runs in
time slices: when one ends first, the handler raises
:class:`RebuildPausedError` and the source reads the batch again, as after an
outage. :meth:`BatchHandler.check_partitions` finds a partition that lost its
state while no batch arrives for it (the status loop calls it every second).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from aiokafka.errors import KafkaError

from recstream.apply.batch import BatchReport, DecodedBatch, PartitionApplier, RawRecord
from recstream.apply.retry import TRANSIENT, BatchNotAppliedError, Retrier, RetryPolicy
from recstream.model.config import CoreConfig
from recstream.store.port import StateLostError, StateStore
from recstream_consumer.deadletters import DeadLetterSink
from recstream_consumer.erasures import ErasureSync
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.prequential import QualityMonitor
from recstream_consumer.rebuild import SLICE_SECONDS, Partition, PartitionLog, StateRebuilder

log = logging.getLogger(__name__)

__all__ = ["BatchNotAppliedError", "RetryPolicy"]  # the consumer's names for the core's


class RebuildPausedError(BatchNotAppliedError):
    """A time slice of a partition's rebuild ended before the batch could be applied."""


def not_applied_level(exc: BatchNotAppliedError) -> int:
    """The log level of a batch not applied: a paused rebuild is progress, not a problem."""
    return logging.INFO if isinstance(exc, RebuildPausedError) else logging.WARNING


class FlowControl(Protocol):
    """What a source offers the handler while it waits for an outage to end."""

    def pause_fetching(self) -> None: ...

    def resume_fetching(self) -> None: ...


def batch_fields(records: Sequence[RawRecord]) -> dict[str, Any]:
    """``topic``, ``partition`` and ``offsets`` (``first-last``) of a batch, for ``extra=``."""
    first, last = records[0], records[-1]
    return {
        "topic": first.topic,
        "partition": first.partition,
        "offsets": f"{first.offset}-{last.offset}",
    }


@dataclass(slots=True)
class ConsumerCounters:
    """This process's totals, for the log lines (the metrics carry the same and more)."""

    batches: int = 0
    records: int = 0
    applied: int = 0
    skipped: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retries: int = 0
    abandoned_batches: int = 0

    def add(self, report: BatchReport) -> None:
        self.batches += 1
        self.records += report.records
        self.applied += report.applied
        self.skipped += report.skipped
        self.duplicates += report.duplicates
        self.dead_lettered += len(report.dead_letters)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> str:
        """``batches=3 records=300 applied=300 ...`` for a log line."""
        return " ".join(f"{name}={value}" for name, value in self.as_dict().items())


class RecordHandler(Protocol):
    """What a source calls per partition batch; :class:`BatchHandler` is the real one."""

    counters: ConsumerCounters

    def request_stop(self) -> None: ...

    async def handle(
        self, records: Sequence[RawRecord], flow: FlowControl | None = None
    ) -> BatchReport: ...

    def forget_partitions(self, partitions: Iterable[Partition]) -> None:
        """The partitions were revoked or (re)assigned: where they were read from is unknown."""
        ...

    async def check_partitions(self, assignment: set[Partition]) -> None:
        """Rebuild owned partitions whose state Redis lost while no batch arrived for them."""
        ...


# The broker's outages beside the store's: the dead-letter topic, the log read in a rebuild
# (the applier waits out those of its own store step).
_OUTAGE = (KafkaError, *TRANSIENT)


class _Walk:
    """One batch's walk through the handler: its retries share one budget and one pause."""

    def __init__(
        self, handler: BatchHandler, records: Sequence[RawRecord], flow: FlowControl | None
    ) -> None:
        self.records = records
        self.flow = flow
        self.paused = False
        self._handler = handler
        first = records[0]
        self.retrier = Retrier(
            handler.retry,
            handler.rng,
            what=f"{first.topic}[{first.partition}]@{first.offset}",
            stopping=handler.stopping,
            on_retry=self.on_retry,
        )

    def on_retry(self, exc: BaseException, attempt: int, delay: float) -> None:
        handler, first = self._handler, self.records[0]
        handler.counters.retries += 1
        handler.metrics.retries.inc()
        if self.flow is not None and not self.paused:
            self.flow.pause_fetching()
            self.paused = True
        log.warning(
            "batch of %s[%d]@%d not applied yet (%s); retry %d in %.2fs",
            first.topic, first.partition, first.offset, exc, attempt, delay,
            extra=batch_fields(self.records),
        )  # fmt: skip

    def resume(self) -> None:
        if self.paused and self.flow is not None:
            self.flow.resume_fetching()


class BatchHandler:
    def __init__(
        self,
        store: StateStore,
        dead_letters: DeadLetterSink,
        config: CoreConfig,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        *,
        catalog_topic: str | None = None,
        metrics: ConsumerMetrics | None = None,
        quality: QualityMonitor | None = None,
        log: PartitionLog | None = None,
        rebuild_batch_records: int = 2000,
        rebuild_slice_seconds: float = SLICE_SECONDS,
        erasures: ErasureSync | None = None,
    ) -> None:
        self._store = store
        self._erasures = erasures
        self._catalog_topic = catalog_topic
        self._dead_letters = dead_letters
        self._config = config
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()
        self.stopping = asyncio.Event()
        self.counters = ConsumerCounters()
        self.metrics = metrics or ConsumerMetrics()
        self._quality = quality
        # Without a log nothing is checked: the store takes every batch (tests, benchmarks).
        self._rebuilder = (
            None
            if log is None
            else StateRebuilder(
                log, self._rebuild_from, self.metrics, rebuild_batch_records, rebuild_slice_seconds
            )
        )
        self._appliers: dict[Partition, PartitionApplier] = {}  # one per assigned partition
        self._locks: dict[Partition, asyncio.Lock] = {}

    def request_stop(self) -> None:
        """Stop waiting out an outage: a batch in backoff is abandoned whole."""
        self.stopping.set()

    def applier(self, key: Partition) -> PartitionApplier:
        """The partition's applier, made at its first batch since it was assigned."""
        applier = self._appliers.get(key)
        if applier is None:
            rebuilder = self._rebuilder
            applier = self._appliers[key] = PartitionApplier(
                self._store,
                self._config,
                catalog=key[0] == self._catalog_topic,
                log_start=None if rebuilder is None else lambda: rebuilder.log_start(key),
                retry=self.retry,
                rng=self.rng,
                stopping=self.stopping,
                retry_on=(KafkaError,),  # the log start is read from the broker
            )
        return applier

    async def handle(
        self, records: Sequence[RawRecord], flow: FlowControl | None = None
    ) -> BatchReport:
        """Apply one partition batch and publish its dead letters; then it may be committed."""
        key = (records[0].topic, records[0].partition)
        walk = _Walk(self, records, flow)
        try:
            async with self._locks.setdefault(key, asyncio.Lock()):
                report, seconds, committed_at = await self._handle(key, walk)
        except BatchNotAppliedError as exc:
            if not isinstance(exc, RebuildPausedError):
                self.counters.abandoned_batches += 1
            raise
        finally:
            walk.resume()
        self.counters.add(report)
        interactions = records[0].topic != self._catalog_topic
        self.metrics.record_batch(report, records, seconds, committed_at if interactions else None)
        if report.dead_letters:
            reasons = Counter(letter.reason for letter in report.dead_letters)
            log.info(
                "dead-lettered %d records: %s",
                len(report.dead_letters),
                " ".join(f"{reason}={n}" for reason, n in sorted(reasons.items())),
                extra=batch_fields(records),
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "batch applied: %d records, %d applied, %d skipped, %d duplicates, "
                "%d dead letters in %.1f ms",
                report.records, report.applied, report.skipped, report.duplicates,
                len(report.dead_letters), seconds * 1000, extra=batch_fields(records),
            )  # fmt: skip
        return report

    async def _handle(self, key: Partition, walk: _Walk) -> tuple[BatchReport, float, float]:
        applier, records = self.applier(key), walk.records
        batch: DecodedBatch | Sequence[RawRecord] = records
        if key[0] != self._catalog_topic:
            batch = applier.decode(records)
            if self._quality is not None:
                await self._quality.sample(batch)
        read_from: int | None = None  # the applier's own continuity, until a rebuild
        lost: StateLostError | None = None
        while True:
            started = time.perf_counter()
            try:
                if lost is not None:
                    refused, lost = lost, None
                    read_from = await self._restore(key, refused, records[0].offset, read_from)
                report = await applier.apply(batch, read_from=read_from, on_retry=walk.on_retry)
                break
            except StateLostError as exc:
                lost = exc
            except _OUTAGE as exc:  # reading the log or the store during a rebuild
                await walk.retrier.wait(exc, "rebuild")
        seconds, committed_at = time.perf_counter() - started, time.time()
        while True:
            try:
                await self._dead_letters.publish(report.dead_letters)
                break
            except _OUTAGE as exc:
                await walk.retrier.wait(exc, "dead-letter publish")
        if self._rebuilder is not None:
            self._rebuilder.finish(key)
        return report, seconds, committed_at

    async def _restore(
        self, key: Partition, refused: StateLostError, first: int, read_from: int | None
    ) -> int:
        """Re-apply what the store lacks below the batch; the offset it now continues from."""
        assert self._rebuilder is not None, "only a checked batch is refused"
        applier = self.applier(key)
        if read_from is None:
            known = applier.next_offset
            read_from = first if known is None else min(first, known)
        if refused.watermark is None:
            start = await self._rebuilder.log_start(key, refresh=True)
        else:
            start = refused.watermark + 1
        if read_from <= start:
            return read_from  # the log start moved on: nothing is missing
        if self.stopping.is_set():
            raise BatchNotAppliedError("stopping during a rebuild")
        if not await self._rebuild_step(key, refused.watermark, first):
            raise RebuildPausedError(f"rebuild of {key[0]}[{key[1]}] goes on below offset {first}")
        return start

    async def _rebuild_step(self, key: Partition, watermark: int | None, end: int) -> bool:
        """One time slice of a rebuild; True when it reached ``end``."""
        assert self._rebuilder is not None
        if self._erasures is not None:
            # the store lost state: it may have lost who was erased too, and must know
            # them before it re-applies a single event of theirs (one end-offset request
            # when the store is up to date with the erasure log)
            await self._erasures.ensure()
        return await self._rebuilder.step(key, watermark, end)

    async def _rebuild_from(
        self, records: Sequence[RawRecord], read_from: int, log_start: int
    ) -> BatchReport:
        """Re-apply records read back from the log: past events, not live quality samples."""
        key = (records[0].topic, records[0].partition)
        return await self.applier(key).apply(records, read_from=read_from, log_start=log_start)

    def forget_partitions(self, partitions: Iterable[Partition]) -> None:
        keys = list(partitions)
        for key in keys:
            self._appliers.pop(key, None)
        if self._rebuilder is not None:
            self._rebuilder.forget(keys)

    def _next(self, key: Partition) -> int | None:
        applier = self._appliers.get(key)
        return None if applier is None else applier.next_offset

    async def check_partitions(self, assignment: set[Partition]) -> None:
        if self._rebuilder is None:
            return
        expected = {  # before reading
            k: n for k in assignment if (n := self._next(k)) is not None
        }
        for topic in sorted({t for t, _ in expected}):
            marks = await self._store.partition_watermarks(topic)
            for (t, partition), end in expected.items():
                mark = marks.get(partition)
                if t == topic and (mark is None or mark < end - 1):
                    await self._catch_up((t, partition), end)

    async def _catch_up(self, key: Partition, end: int) -> None:
        """Rebuild a partition below ``end`` (the offset after its last applied batch)."""
        assert self._rebuilder is not None
        while not self.stopping.is_set():
            async with self._locks.setdefault(key, asyncio.Lock()):
                if self._next(key) != end:
                    return  # a batch came (it rebuilds by itself), or the partition went
                mark = (await self._store.partition_watermarks(key[0])).get(key[1])
                if mark is not None and mark >= end - 1:
                    self._rebuilder.finish(key)
                    return
                if mark is None and await self._rebuilder.log_start(key, refresh=True) >= end:
                    self._appliers.pop(key)  # the log no longer holds what was applied
                    return
                if await self._rebuild_step(key, mark, end):
                    self._rebuilder.finish(key)
                    return
            await asyncio.sleep(0)  # a batch waiting for the partition goes first
