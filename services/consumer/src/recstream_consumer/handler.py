"""The batch handler both runtimes share: one partition batch in, Redis and dead letters out.

A batch of ``interactions`` is applied with :func:`recstream.apply.batch.apply_batch`
(a batch of the ``catalog`` topic with :func:`~recstream.apply.batch.apply_catalog_batch`):
atomic store steps guarded by watermarks. Then its dead letters
are published and acknowledged. Only when :meth:`BatchHandler.handle`
returns may the source commit the batch's offsets. Each applied batch is
counted in :class:`~recstream_consumer.metrics.ConsumerMetrics`; the quality
monitor (:mod:`~recstream_consumer.prequential`), when there is one, scores
sampled events between the load of the batch's states and their fold.

When Redis (or the dead-letter topic) is unavailable the handler asks the
source to pause fetching and retries the same batch with jittered
exponential backoff, for at most ``retry_budget_seconds``; then it raises
:class:`BatchNotAppliedError` and the source re-reads the batch from its
first offset later. Memory stays bounded (one batch), nothing is committed
past what was applied, and the process does not exit.

With a :class:`~recstream_consumer.rebuild.PartitionLog` the handler also
tells the store where it read each partition from without a break (the
offset after the last batch it applied since the partition was assigned, or
the batch's first offset), so the store refuses a batch that does not continue
the partition's state (:class:`~recstream.store.port.StateLostError`: Redis came
back empty, or went back in time). The handler then re-applies the missing
records from the log (:mod:`~recstream_consumer.rebuild`) and the batch after
them. A rebuild runs in time slices: when one ends first, the handler raises
:class:`RebuildPausedError` and the source reads the batch again, as after an
outage. :meth:`BatchHandler.check_partitions` finds a partition that lost its
state while no batch arrives for it (the status loop calls it every second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from aiokafka.errors import KafkaError

from recstream.apply.batch import BatchReport, RawRecord, apply_batch, apply_catalog_batch
from recstream.model.config import CoreConfig
from recstream.store.port import (
    StateLostError,
    StateStore,
    StoreUnavailableError,
    WatermarkConflictError,
)
from recstream_consumer.deadletters import DeadLetterSink
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.prequential import QualityMonitor
from recstream_consumer.rebuild import SLICE_SECONDS, Partition, PartitionLog, StateRebuilder

log = logging.getLogger(__name__)


class ConsumerError(RuntimeError):
    """Base of the consumer's errors."""


class BatchNotAppliedError(ConsumerError):
    """A batch could not be applied within the retry budget (or the consumer is stopping).

    Nothing of it was committed to the log; it must be read again.
    """


class RebuildPausedError(BatchNotAppliedError):
    """A time slice of a partition's rebuild ended before the batch could be applied."""


def not_applied_level(exc: BatchNotAppliedError) -> int:
    """The log level of a batch not applied: a paused rebuild is progress, not a problem."""
    return logging.INFO if isinstance(exc, RebuildPausedError) else logging.WARNING


class FlowControl(Protocol):
    """What a source offers the handler while it waits for an outage to end."""

    def pause_fetching(self) -> None: ...

    def resume_fetching(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_delay: float = 0.1
    max_delay: float = 5.0
    budget: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        ceiling = min(self.max_delay, self.initial_delay * (2.0**attempt))
        return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


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


# A watermark conflict that outlived apply_batch's own re-reads means another writer
# is busy with the same users (a rebalance in flight): wait and try again.
_TRANSIENT = (StoreUnavailableError, WatermarkConflictError, KafkaError, OSError, TimeoutError)


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
    ) -> None:
        self._store = store
        self._catalog_topic = catalog_topic
        self._dead_letters = dead_letters
        self._config = config
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._stopping = asyncio.Event()
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
        self._next: dict[Partition, int] = {}  # offset after the last batch applied
        self._locks: dict[Partition, asyncio.Lock] = {}

    def request_stop(self) -> None:
        """Stop waiting out an outage: a batch in backoff is abandoned whole."""
        self._stopping.set()

    async def handle(
        self, records: Sequence[RawRecord], flow: FlowControl | None = None
    ) -> BatchReport:
        """Apply one partition batch and publish its dead letters; then it may be committed."""
        key = (records[0].topic, records[0].partition)
        async with self._locks.setdefault(key, asyncio.Lock()):
            report = await self._handle(key, records, flow)
        # a redelivered older batch leaves it: the records up to it were applied before
        self._next[key] = max(self._next.get(key, 0), records[-1].offset + 1)
        return report

    async def _handle(
        self, key: Partition, records: Sequence[RawRecord], flow: FlowControl | None
    ) -> BatchReport:
        deadline = time.monotonic() + self._retry.budget
        paused = False
        attempt = 0

        async def back_off(exc: BaseException, step: str) -> None:
            nonlocal paused, attempt
            self.counters.retries += 1
            self.metrics.retries.inc()
            if flow is not None and not paused:
                flow.pause_fetching()
                paused = True
            delay = self._retry.delay(attempt, self._rng)
            attempt += 1
            first, context = records[0], batch_fields(records)
            if time.monotonic() + delay > deadline or self._stopping.is_set():
                self.counters.abandoned_batches += 1
                raise BatchNotAppliedError(
                    f"{step} of {first.topic}[{first.partition}]@{first.offset} failed: {exc}"
                ) from exc
            log.warning(
                "%s of %s[%d]@%d failed (%s); retry %d in %.2fs",
                step, first.topic, first.partition, first.offset, exc, attempt, delay,
                extra=context,
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                self.counters.abandoned_batches += 1
                raise BatchNotAppliedError("stopping during an outage") from exc

        first = records[0].offset
        read_from = min(first, self._next.get(key, first))
        lost: StateLostError | None = None
        try:
            while True:
                try:
                    if lost is not None:
                        refused, lost = lost, None
                        read_from = await self._restore(key, refused, read_from, first)
                    started, sampling = time.perf_counter(), self._sampling_seconds()
                    report = await self._apply(records, read_from)
                    committed_at = time.time()
                    seconds = time.perf_counter() - started
                    seconds -= self._sampling_seconds() - sampling
                    break
                except StateLostError as exc:
                    lost = exc
                except _TRANSIENT as exc:
                    await back_off(exc, "apply")
            while True:
                try:
                    await self._dead_letters.publish(report.dead_letters)
                    break
                except _TRANSIENT as exc:
                    await back_off(exc, "dead-letter publish")
        finally:
            if paused and flow is not None:
                flow.resume_fetching()
        if self._rebuilder is not None:
            self._rebuilder.finish(key)
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

    def _sampling_seconds(self) -> float:
        return self._quality.spent if self._quality is not None else 0.0

    async def _restore(
        self, key: Partition, refused: StateLostError, read_from: int, first: int
    ) -> int:
        """Re-apply what the store lacks below the batch; the offset it now continues from."""
        assert self._rebuilder is not None, "only a checked batch is refused"
        if refused.watermark is None:
            start = await self._rebuilder.log_start(key, refresh=True)
        else:
            start = refused.watermark + 1
        if read_from <= start:
            return read_from  # the log start moved on: nothing is missing
        if self._stopping.is_set():
            raise BatchNotAppliedError("stopping during a rebuild")
        if not await self._rebuilder.step(key, refused.watermark, first):
            raise RebuildPausedError(f"rebuild of {key[0]}[{key[1]}] goes on below offset {first}")
        return start

    async def _apply(self, records: Sequence[RawRecord], read_from: int) -> BatchReport:
        if self._rebuilder is None:
            return await self._apply_from(records, None, 0)
        log_start = await self._rebuilder.log_start((records[0].topic, records[0].partition))
        return await self._apply_from(records, read_from, log_start)

    def _rebuild_from(
        self, records: Sequence[RawRecord], read_from: int, log_start: int
    ) -> Awaitable[BatchReport]:
        """Re-apply records read back from the log: past events, not live quality samples."""
        return self._apply_from(records, read_from, log_start, observe=False)

    def _apply_from(
        self,
        records: Sequence[RawRecord],
        read_from: int | None,
        log_start: int,
        *,
        observe: bool = True,
    ) -> Awaitable[BatchReport]:
        if records[0].topic == self._catalog_topic:
            return apply_catalog_batch(
                self._store, records, read_from=read_from, log_start=log_start
            )
        quality = self._quality if observe else None
        observer = quality.observe if quality is not None else None
        return apply_batch(
            self._store,
            records,
            self._config,
            before_fold=observer,
            read_from=read_from,
            log_start=log_start,
        )

    def forget_partitions(self, partitions: Iterable[Partition]) -> None:
        keys = list(partitions)
        for key in keys:
            self._next.pop(key, None)
        if self._rebuilder is not None:
            self._rebuilder.forget(keys)

    async def check_partitions(self, assignment: set[Partition]) -> None:
        if self._rebuilder is None:
            return
        expected = {k: n for k, n in self._next.items() if k in assignment}  # before reading
        for topic in sorted({t for t, _ in expected}):
            marks = await self._store.partition_watermarks(topic)
            for (t, partition), end in expected.items():
                mark = marks.get(partition)
                if t == topic and (mark is None or mark < end - 1):
                    await self._catch_up((t, partition), end)

    async def _catch_up(self, key: Partition, end: int) -> None:
        """Rebuild a partition below ``end`` (the offset after its last applied batch)."""
        assert self._rebuilder is not None
        while not self._stopping.is_set():
            async with self._locks.setdefault(key, asyncio.Lock()):
                if self._next.get(key) != end:
                    return  # a batch came (it rebuilds by itself), or the partition went
                mark = (await self._store.partition_watermarks(key[0])).get(key[1])
                if mark is not None and mark >= end - 1:
                    self._rebuilder.finish(key)
                    return
                if mark is None and await self._rebuilder.log_start(key, refresh=True) >= end:
                    self._next.pop(key)  # the log no longer holds what was applied
                    return
                if await self._rebuilder.step(key, mark, end):
                    self._rebuilder.finish(key)
                    return
            await asyncio.sleep(0)  # a batch waiting for the partition goes first
