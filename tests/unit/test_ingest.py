from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from recstream.apply.batch import PartitionApplier, RawRecord, apply_batch, decode_record
from recstream.apply.retry import BatchNotAppliedError, RetryPolicy
from recstream.contract.events import (
    MAX_EVENT_BYTES,
    EventError,
    EventType,
    decode_event,
    validate_event,
)
from recstream.model.config import CoreConfig
from recstream.model.state import UserState, Watermark
from recstream.offline.evaluation.records import RecordLog
from recstream.readmodel.load import load_trending
from recstream.store.memory import MemoryStore
from recstream.store.port import StateLostError

from .eventgen import BASE, make_event

CONFIG = CoreConfig()
RECEIVED_MS = int((BASE + timedelta(minutes=30)).timestamp() * 1000)


def record(offset: int, event: dict[str, object] | bytes, key: str | None = "u1") -> RawRecord:
    value = event if isinstance(event, bytes) else json.dumps(event).encode()
    return RawRecord("interactions", 3, offset, RECEIVED_MS, key.encode() if key else None, value)


async def test_bad_records_become_dead_letters_and_good_ones_apply() -> None:
    store = MemoryStore()
    future = (datetime.fromtimestamp(RECEIVED_MS / 1000, UTC) + timedelta(hours=1)).isoformat()
    records = [
        record(10, make_event("e1", EventType.PRODUCT_VIEW)),
        record(11, b"{broken"),
        record(12, make_event("e2", EventType.PRODUCT_VIEW, user_id="u2")),  # key says u1
        record(13, make_event("e3", EventType.PAGE_VIEW, occurred_at=future)),
        RawRecord("interactions", 3, 14, RECEIVED_MS, b"u1", None),
        record(15, make_event("e4", EventType.PAGE_VIEW) | {"event_type": "teleport"}),
        record(16, make_event("e5", EventType.ADD_TO_CART)),
    ]
    report = await apply_batch(store, records, CONFIG)
    reasons = {d.record.offset: d.reason for d in report.dead_letters}
    assert reasons == {
        11: "invalid_json",
        12: "key_mismatch",
        13: "future_event",
        14: "empty",
        15: "unknown_event_type",
    }
    assert report.applied == 2
    user = await store.get_user("u1")
    assert user is not None
    assert user.total_events == 2
    assert user.watermark == Watermark(3, 16)
    assert await store.partition_watermarks("interactions") == {3: 16}


async def test_a_redelivered_batch_changes_nothing() -> None:
    store = MemoryStore()
    records = [record(i, make_event(f"e{i}", EventType.PRODUCT_VIEW)) for i in range(5)]
    await apply_batch(store, records, CONFIG)
    before = await store.get_user("u1")
    report = await apply_batch(store, records, CONFIG)
    assert (report.applied, report.skipped) == (0, 5)
    assert await store.get_user("u1") == before


class RacingStore(MemoryStore):
    """A store where another writer commits between our read and our write, a few times."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    async def commit_batch(self, commit):  # type: ignore[no-untyped-def]
        if self.races:
            self.races -= 1
            user_id = commit.writes[0].state.user_id
            self.users[user_id] = UserState(user_id, watermark=Watermark(99, self.races))
        await super().commit_batch(commit)


async def test_a_watermark_conflict_is_retried_on_fresh_state() -> None:
    store = RacingStore(races=1)
    records = [record(0, make_event("e0", EventType.PRODUCT_VIEW))]
    report = await apply_batch(store, records, CONFIG)
    assert report.applied == 1


async def test_persistent_conflicts_end_the_retries_and_write_nothing() -> None:
    store = RacingStore(races=1000)
    records = [record(0, make_event("e0", EventType.PRODUCT_VIEW))]
    waits: list[tuple[int, float]] = []
    applier = PartitionApplier(
        store,
        CONFIG,
        retry=RetryPolicy(initial_delay=0.001, max_delay=0.004, budget=0.05),
        on_retry=lambda exc, attempt, delay: waits.append((attempt, delay)),
    )
    with pytest.raises(BatchNotAppliedError, match="apply of interactions"):
        await applier.apply(records)
    assert await store.partition_watermarks("interactions") == {}
    assert [attempt for attempt, _ in waits] == list(range(1, len(waits) + 1))
    assert all(0.0005 <= delay <= 0.004 for _, delay in waits)
    assert applier.next_offset is None  # nothing applied: continuity unchanged


async def test_a_stopping_applier_abandons_the_batch_in_its_backoff() -> None:
    stopping = asyncio.Event()
    applier = PartitionApplier(
        RacingStore(races=1000),
        CONFIG,
        retry=RetryPolicy(initial_delay=10.0, max_delay=10.0, budget=60.0),
        stopping=stopping,
        on_retry=lambda *_: stopping.set(),
    )
    with pytest.raises(BatchNotAppliedError, match="stopping"):
        await asyncio.wait_for(
            applier.apply([record(0, make_event("e0", EventType.PRODUCT_VIEW))]), 5.0
        )


async def test_the_applier_remembers_where_it_read_its_partition_from() -> None:
    store = MemoryStore()
    log_start_calls: list[int] = []

    async def log_start() -> int:
        log_start_calls.append(1)
        return 0

    def span(first: int, end: int) -> list[RawRecord]:
        return [record(o, make_event(f"e{o}", EventType.PRODUCT_VIEW)) for o in range(first, end)]

    applier = PartitionApplier(store, CONFIG, log_start=log_start)
    await applier.apply(span(0, 3))
    assert applier.next_offset == 3
    await applier.apply(span(3, 5))  # continues: read on from 3, the store's watermark is 2
    assert applier.next_offset == 5
    # a new assignment starts at 7: the store's watermark is 4, so 5 and 6 were never applied
    reassigned = PartitionApplier(store, CONFIG, log_start=log_start)
    with pytest.raises(StateLostError) as lost:
        await reassigned.apply(span(7, 9))
    assert lost.value.watermark == 4
    assert reassigned.next_offset is None
    assert len(log_start_calls) == 3


def test_a_laid_out_record_carries_its_validated_event_and_is_not_decoded_again() -> None:
    event = validate_event(make_event("e1", EventType.PRODUCT_VIEW))
    laid_out = RecordLog("interactions", 4).append(event, RECEIVED_MS)
    assert laid_out.event is event
    assert decode_event(laid_out.value or b"") == event
    assert decode_record(laid_out, CONFIG).event is event  # the same object: no second decode
    read = RawRecord("interactions", 0, 0, RECEIVED_MS, b"u1", laid_out.value)
    assert decode_record(read, CONFIG).event == event  # a record from the log is decoded


def test_a_laid_out_record_above_the_size_limit_is_refused_like_a_read_one() -> None:
    event = validate_event(make_event("e1", EventType.PRODUCT_VIEW))
    laid_out = RecordLog("interactions", 4).append(event, RECEIVED_MS)
    padded = laid_out.value + b" " * MAX_EVENT_BYTES  # type: ignore[operator]
    for record in (replace(laid_out, value=padded), replace(laid_out, value=padded, event=None)):
        with pytest.raises(EventError) as refused:
            decode_record(record, CONFIG)
        assert refused.value.reason == "oversize"


async def test_events_of_any_year_are_applied_and_their_statistics_read_back_finite() -> None:
    """A producer whose clock is years ahead stamps the event and the record alike: the
    future rule lets it through. Forward-decayed linearly from the 2026 landmark, a weight
    would overflow a double after about 2034; kept in log space, 2040, 2100 and 9999 are
    applied, and their popularity reads back as its value at that time."""
    store = MemoryStore()
    view = CONFIG.weight(EventType.PRODUCT_VIEW)
    for n, year in enumerate((2040, 2100, 9999)):
        at = datetime(year, 1, 1, tzinfo=UTC)
        events = [
            make_event(
                f"{name}-{year}",
                EventType.PRODUCT_VIEW,
                occurred_at=at.isoformat(),
                product_id=product,
            )
            for name, product in (("a", "common"), ("b", f"new-{year}"), ("c", "common"))
        ]
        stamped = int(at.timestamp() * 1000)
        records = [
            replace(record(3 * n + i, e), timestamp_ms=stamped) for i, e in enumerate(events)
        ]
        report = await apply_batch(store, records, CONFIG)
        assert (report.applied, report.dead_letters) == (3, [])
        popular = (await load_trending(store, at.timestamp(), CONFIG)).popular
        assert popular["p:common"] == pytest.approx(2 * view)  # earlier years decayed away
        assert popular[f"p:new-{year}"] == pytest.approx(view)
        assert all(math.isfinite(v) for v in popular.values())
