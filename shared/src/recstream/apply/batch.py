"""The owner of one partition's batches: decode, fold, plan, commit, and the outcome.

Every path that writes the log's effect into a store goes through a
:class:`PartitionApplier`: both consumer runtimes (through the consumer's batch
handler), the rebuild of a lost partition, the replay command, the offline
evaluation and the benchmarks. For one partition of one topic it

1. decodes the records (:func:`decode_batch`: bad ones become dead letters with
   the reason, the rest are grouped by user, in offset order);
2. loads the users' states and the partition's shard watermarks, folds each
   user's events with the pure core, plans the per-shard writes and commits all
   of it in one store step guarded by the watermarks it read;
3. retries with one :class:`RetryPolicy` what another writer or an outage got in
   the way of (a watermark conflict during a rebalance, an unavailable store):
   jittered exponential backoff within a time budget, each wait reported to
   ``on_retry`` (the consumer pauses fetching there), and
   :class:`BatchNotAppliedError` past the budget or when asked to stop;
4. keeps the partition's continuity: the offset after the last batch it applied.
   With ``log_start`` (the partition's first offset in the log) every commit asks
   the store to check that the batch continues the partition's state, and a store
   that lost it refuses with :class:`~recstream.store.port.StateLostError`, which
   is not retried here: the caller rebuilds from the log and applies again.

It returns a :class:`~recstream.apply.batch.BatchReport`: what was applied,
skipped as already applied, dropped as a duplicate or as erased, and dead-lettered.
A new applier is made for a partition each time it is assigned: continuity
starts again from the first batch read.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from recstream.apply.retry import TRANSIENT, Retrier, RetryHook, RetryPolicy
from recstream.contract.catalog import CatalogRecord, decode_catalog_record
from recstream.contract.events import Event, EventError, check_event_size, decode_event
from recstream.model.config import CoreConfig
from recstream.model.fold import PositionedEvent, fold_user
from recstream.model.statistics import StatDelta
from recstream.plan.erasure import is_erased
from recstream.plan.shards import plan_catalog_writes, plan_shard_writes
from recstream.store.port import BatchCommit, StateStore, UserWrite

LogStart = Callable[[], Awaitable[int]]  # the partition's first offset in the log


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as read from the log, before decoding."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    # The event ``value`` encodes, when the record was made from an already validated event
    # (records laid out by a replay): decoding it again is skipped.
    event: Event | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: RawRecord
    reason: str
    detail: str


@dataclass(slots=True)
class BatchReport:
    topic: str
    partition: int
    last_offset: int
    records: int = 0
    applied: int = 0
    skipped: int = 0
    duplicates: int = 0
    erased: int = 0  # events of erased users, dropped by the erasure rule
    users: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


def check_event_time(event: Event, received_at: float, config: CoreConfig) -> None:
    """The lateness rule: any past event is accepted; a future one beyond the tolerance is
    not. Any accepted time is represented: the statistics are forward-decayed in log space
    (see :mod:`recstream.model.decay`)."""
    ahead = event.occurred_at.timestamp() - received_at
    if ahead > config.future_tolerance_seconds:
        raise EventError(
            "future_event",
            f"occurred_at is {ahead:.0f}s after the record time "
            f"(tolerance {config.future_tolerance_seconds:.0f}s)",
        )


def decode_record(record: RawRecord, config: CoreConfig) -> PositionedEvent:
    """Decode and validate one record, or raise :class:`EventError` with the reason."""
    if record.value is None:
        raise EventError("empty", "record has no value")
    if record.event is not None:  # validated already; the size rule holds for it too
        check_event_size(record.value)
        event = record.event
    else:
        event = decode_event(record.value)
    if record.key is not None and record.key != event.user_id.encode():
        raise EventError("key_mismatch", "record key is not the event's user_id")
    received_at = record.timestamp_ms / 1000.0
    check_event_time(event, received_at, config)
    return PositionedEvent(event, record.partition, record.offset, received_at)


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """A partition batch after decoding: the good events by user (offset order), the bad
    records as dead letters."""

    records: Sequence[RawRecord]
    by_user: dict[str, list[PositionedEvent]]
    dead_letters: list[DeadLetter]

    @property
    def topic(self) -> str:
        return self.records[0].topic

    @property
    def partition(self) -> int:
        return self.records[0].partition

    @property
    def first_offset(self) -> int:
        return self.records[0].offset

    @property
    def last_offset(self) -> int:
        return self.records[-1].offset


def decode_batch(records: Sequence[RawRecord], config: CoreConfig) -> DecodedBatch:
    """Decode a partition batch (pure): bad records become dead letters, the rest go by user."""
    if not records:
        raise ValueError("empty batch")
    by_user: dict[str, list[PositionedEvent]] = {}
    dead: list[DeadLetter] = []
    for record in records:
        try:
            positioned = decode_record(record, config)
        except EventError as exc:
            dead.append(DeadLetter(record, exc.reason, exc.detail))
            continue
        by_user.setdefault(positioned.event.user_id, []).append(positioned)
    return DecodedBatch(records, by_user, dead)


class PartitionApplier:
    def __init__(
        self,
        store: StateStore,
        config: CoreConfig,
        *,
        catalog: bool = False,
        log_start: LogStart | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        stopping: asyncio.Event | None = None,
        on_retry: RetryHook | None = None,
        retry_on: tuple[type[BaseException], ...] = (),
    ) -> None:
        """``catalog``: the partition is of the ``catalog`` topic (upserts and deletes of
        items). ``log_start``: how to learn the partition's first offset in the log; without
        it the store takes every batch (a replay that lays out its own log, the evaluation,
        tests). ``retry_on``: more errors to wait out, beside the store's (the log client's
        errors, when ``log_start`` reads the log)."""
        self._store = store
        self._config = config
        self._catalog = catalog
        self._log_start = log_start
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._stopping = stopping
        self._on_retry = on_retry
        self._transient = (*TRANSIENT, *retry_on)
        self.next_offset: int | None = None  # the offset after the last batch applied

    def decode(self, records: Sequence[RawRecord]) -> DecodedBatch:
        return decode_batch(records, self._config)

    async def apply(
        self,
        batch: DecodedBatch | Sequence[RawRecord],
        *,
        read_from: int | None = None,
        log_start: int | None = None,
        on_retry: RetryHook | None = None,
    ) -> BatchReport:
        """Apply one batch (records, or records already decoded), in offset order.

        ``read_from`` (default: the batch's first offset, or the offset after the last batch
        this applier applied when that is lower) is where the partition was read from without
        a break; it is checked when the applier knows the log start (``log_start`` here or
        the provider given at construction).
        """
        if not isinstance(batch, DecodedBatch):  # a catalog batch is decoded as it commits
            batch = DecodedBatch(batch, {}, []) if self._catalog else self.decode(batch)
        checked = log_start is not None or self._log_start is not None
        if checked and read_from is None:
            read_from = batch.first_offset
            if self.next_offset is not None:
                read_from = min(read_from, self.next_offset)
        what = f"{batch.topic}[{batch.partition}]@{batch.first_offset}"
        retrier = Retrier(
            self._retry,
            self._rng,
            what=what,
            stopping=self._stopping,
            on_retry=on_retry or self._on_retry,
        )
        while True:
            try:
                start = log_start
                if checked and start is None:
                    assert self._log_start is not None
                    start = await self._log_start()
                report = await self._commit(batch, read_from if checked else None, start or 0)
                break
            except self._transient as exc:
                await retrier.wait(exc, "apply")
        self.next_offset = max(self.next_offset or 0, batch.last_offset + 1)
        return report

    async def _commit(self, batch: DecodedBatch, read_from: int | None, start: int) -> BatchReport:
        if self._catalog:
            return await self._commit_catalog(batch, read_from, start)
        store, config = self._store, self._config
        topic, partition, last = batch.topic, batch.partition, batch.last_offset
        report = BatchReport(topic, partition, last, records=len(batch.records))
        report.dead_letters = list(batch.dead_letters)
        report.users = len(batch.by_user)
        loaded = await store.load_batch(list(batch.by_user), topic, partition)
        writes: list[UserWrite] = []
        deltas: list[StatDelta] = []
        for user_id, events in batch.by_user.items():
            before = loaded.users[user_id]
            erased_at = loaded.erasures.get(user_id)
            if erased_at is not None:
                kept = [
                    e for e in events if not is_erased(e.event.occurred_at.timestamp(), erased_at)
                ]
                report.erased += len(events) - len(kept)
                events = kept
            watermark = before.watermark
            outcome = fold_user(before, events, config, take_ownership=True)
            report.applied += outcome.applied
            report.skipped += outcome.skipped
            report.duplicates += outcome.duplicates
            deltas += outcome.deltas
            if outcome.state.watermark != watermark:
                writes.append(UserWrite(outcome.state, watermark))
        shards = plan_shard_writes(deltas, loaded.shard_marks, store.keyspace, config)
        await store.commit_batch(
            BatchCommit(topic, partition, last, writes, shards, read_from, start)
        )
        return report

    async def _commit_catalog(
        self, batch: DecodedBatch, read_from: int | None, start: int
    ) -> BatchReport:
        store = self._store
        topic, partition, last = batch.topic, batch.partition, batch.last_offset
        report = BatchReport(topic, partition, last, records=len(batch.records))
        decoded: list[tuple[int, CatalogRecord]] = []
        for record in batch.records:
            try:
                if record.value is None:
                    raise EventError("empty", "record has no value")
                decoded.append((record.offset, decode_catalog_record(record.value)))
            except EventError as exc:
                report.dead_letters.append(DeadLetter(record, exc.reason, exc.detail))
        loaded = await store.load_batch([], topic, partition)
        marks, keys = loaded.shard_marks, store.keyspace
        fresh = [(o, r) for o, r in decoded if o > marks.get(keys.shard_of(r.item), -1)]
        shards = plan_catalog_writes(fresh, marks, keys)
        await store.commit_batch(BatchCommit(topic, partition, last, [], shards, read_from, start))
        report.applied, report.skipped = len(fresh), len(decoded) - len(fresh)
        return report


async def apply_batch(
    store: StateStore,
    records: Sequence[RawRecord],
    config: CoreConfig,
    *,
    read_from: int | None = None,
    log_start: int = 0,
) -> BatchReport:
    """Apply one batch of one partition with a fresh :class:`PartitionApplier` (a replay, the
    evaluation, a benchmark: nothing to remember between batches). With ``read_from`` the
    store checks that the batch continues the partition (see
    :class:`~recstream.store.port.BatchCommit`)."""
    applier = PartitionApplier(store, config)
    if read_from is None:
        return await applier.apply(records)
    return await applier.apply(records, read_from=read_from, log_start=log_start)


async def apply_catalog_batch(
    store: StateStore,
    records: Sequence[RawRecord],
    *,
    read_from: int | None = None,
    log_start: int = 0,
) -> BatchReport:
    """:func:`apply_batch` for a batch of the ``catalog`` topic (upserts and deletes of items)."""
    applier = PartitionApplier(store, CoreConfig(), catalog=True)
    if read_from is None:
        return await applier.apply(records)
    return await applier.apply(records, read_from=read_from, log_start=log_start)
