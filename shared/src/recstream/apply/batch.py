"""The batch-apply core: one partition batch of raw records in, one atomic store commit out.

Both consumer runtimes (aiokafka and faust) and the replay command call
:func:`apply_batch`; it decodes, routes bad records to dead letters, folds
each user's events with the pure core and commits through the store port.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from recstream.contract.catalog import CatalogRecord, decode_catalog_record
from recstream.contract.events import Event, EventError, check_event_size, decode_event
from recstream.model.config import CoreConfig
from recstream.model.fold import PositionedEvent, fold_user
from recstream.model.statistics import StatDelta
from recstream.plan.erasure import is_erased
from recstream.plan.shards import plan_catalog_writes, plan_shard_writes
from recstream.store.port import (
    BatchCommit,
    BatchState,
    StateStore,
    UserWrite,
    WatermarkConflictError,
)

MAX_CONFLICT_RETRIES = 3

# Sees a batch's decoded events by user and their loaded states before the fold; must not
# change them (the consumer's live quality sampler scores events against them).
BatchObserver = Callable[[Mapping[str, Sequence[PositionedEvent]], BatchState], Awaitable[None]]


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
    """The lateness rule: any past event is accepted; a future one beyond the tolerance is not."""
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


async def apply_batch(
    store: StateStore,
    records: Sequence[RawRecord],
    config: CoreConfig,
    *,
    before_fold: BatchObserver | None = None,
    read_from: int | None = None,
    log_start: int = 0,
) -> BatchReport:
    """Apply one batch of records of a single partition, in offset order.

    ``before_fold`` is awaited after each load of the batch's states, before they are folded.
    With ``read_from`` (and the partition's ``log_start``) the store refuses, with
    :class:`~recstream.store.port.StateLostError`, a batch that does not continue its partition
    (see :class:`~recstream.store.port.BatchCommit`).
    """
    if not records:
        raise ValueError("empty batch")
    topic, partition = records[0].topic, records[0].partition
    report = BatchReport(topic, partition, records[-1].offset, records=len(records))
    by_user: dict[str, list[PositionedEvent]] = {}
    for record in records:
        try:
            positioned = decode_record(record, config)
        except EventError as exc:
            report.dead_letters.append(DeadLetter(record, exc.reason, exc.detail))
            continue
        by_user.setdefault(positioned.event.user_id, []).append(positioned)
    report.users = len(by_user)
    for attempt in range(MAX_CONFLICT_RETRIES + 1):
        loaded = await store.load_batch(list(by_user), topic, partition)
        if before_fold is not None:
            await before_fold(by_user, loaded)
        writes: list[UserWrite] = []
        deltas: list[StatDelta] = []
        applied = skipped = duplicates = 0
        erased = 0
        for user_id, events in by_user.items():
            before = loaded.users[user_id]
            erased_at = loaded.erasures.get(user_id)
            if erased_at is not None:
                kept = [
                    e for e in events if not is_erased(e.event.occurred_at.timestamp(), erased_at)
                ]
                erased += len(events) - len(kept)
                events = kept
            watermark = before.watermark
            outcome = fold_user(before, events, config, take_ownership=True)
            applied += outcome.applied
            skipped += outcome.skipped
            duplicates += outcome.duplicates
            deltas += outcome.deltas
            if outcome.state.watermark != watermark:
                writes.append(UserWrite(outcome.state, watermark))
        shards = plan_shard_writes(deltas, loaded.shard_marks, store.keyspace, config)
        commit = BatchCommit(
            topic, partition, report.last_offset, writes, shards, read_from, log_start
        )
        try:
            await store.commit_batch(commit)
        except WatermarkConflictError:
            if attempt == MAX_CONFLICT_RETRIES:
                raise
            continue
        report.applied, report.skipped, report.duplicates = applied, skipped, duplicates
        report.erased = erased
        break
    return report


async def apply_catalog_batch(
    store: StateStore,
    records: Sequence[RawRecord],
    *,
    read_from: int | None = None,
    log_start: int = 0,
) -> BatchReport:
    """Apply one partition batch of the ``catalog`` topic: upserts and deletes of items.

    ``read_from`` and ``log_start`` as for :func:`apply_batch`.
    """
    if not records:
        raise ValueError("empty batch")
    topic, partition = records[0].topic, records[0].partition
    report = BatchReport(topic, partition, records[-1].offset, records=len(records))
    decoded: list[tuple[int, CatalogRecord]] = []
    for record in records:
        try:
            if record.value is None:
                raise EventError("empty", "record has no value")
            decoded.append((record.offset, decode_catalog_record(record.value)))
        except EventError as exc:
            report.dead_letters.append(DeadLetter(record, exc.reason, exc.detail))
    for attempt in range(MAX_CONFLICT_RETRIES + 1):
        loaded = await store.load_batch([], topic, partition)
        marks, keys = loaded.shard_marks, store.keyspace
        fresh = [(o, r) for o, r in decoded if o > marks.get(keys.shard_of(r.item), -1)]
        shards = plan_catalog_writes(fresh, marks, keys)
        try:
            commit = BatchCommit(
                topic, partition, report.last_offset, [], shards, read_from, log_start
            )
            await store.commit_batch(commit)
        except WatermarkConflictError:
            if attempt == MAX_CONFLICT_RETRIES:
                raise
            continue
        report.applied, report.skipped = len(fresh), len(decoded) - len(fresh)
        break
    return report
