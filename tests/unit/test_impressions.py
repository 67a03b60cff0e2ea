"""The API's impression records (recstream_api/impressions.py): within the contract's size,
and a writer that never blocks a response nor the shutdown, counting what it drops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from recstream.contract.events import MAX_EVENT_BYTES, MAX_ID_LENGTH, decode_event
from recstream.platform.settings import KafkaSettings
from recstream_api.exceptions import BrokerUnavailableError
from recstream_api.impressions import ImpressionWriter, ListReturned, impression_record
from recstream_api.metrics import ApiMetrics
from recstream_api.publisher import Delivered, EventPublisher, OutgoingRecord

AT = datetime(2026, 12, 6, 12, tzinfo=UTC)


def returned(items: int, id_length: int = 8) -> ListReturned:
    keys = [f"p:{str(n).rjust(id_length, 'x')}" for n in range(items)]
    return ListReturned("blend", "u-1", "s-1", "p:screen", [(k, 0.5) for k in keys], AT)


def test_a_list_of_long_ids_is_recorded_within_the_contracts_size() -> None:
    small = decode_event(impression_record("r1", returned(3)).value)
    assert [i.score for i in small.items] == [0.5, 0.5, 0.5]  # type: ignore[union-attr]

    record = impression_record("r2", returned(100, MAX_ID_LENGTH))
    assert len(record.value) <= MAX_EVENT_BYTES
    event = decode_event(record.value)
    items = event.items  # type: ignore[union-attr]
    assert 50 < len(items) < 100, "the first items that fit"
    assert [i.position for i in items] == list(range(1, len(items) + 1))
    assert all(i.score is None for i in items)


class DownPublisher(EventPublisher):
    """A broker that never answers: every publish fails as the real one does."""

    def __init__(self) -> None:
        super().__init__(KafkaSettings(), 0, 1.0)
        self.attempts = 0

    async def publish(
        self, records: Sequence[OutgoingRecord], topic: str | None = None
    ) -> list[Delivered]:
        self.attempts += 1
        raise BrokerUnavailableError("the broker is away")


def counted(metrics: ApiMetrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "recstream_api_impressions_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_with_the_broker_away_records_wait_then_drop_and_the_shutdown_is_bounded() -> None:
    metrics = ApiMetrics()
    publisher = DownPublisher()
    writer = ImpressionWriter(publisher, metrics, capacity=3)
    await writer.start()
    for _ in range(6):
        writer.record(returned(2))
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    assert publisher.attempts >= 1
    assert counted(metrics, "dropped") >= 1, "the queue holds 3; the others are dropped"
    started = time.monotonic()
    await writer.stop(drain_seconds=0.2)
    assert time.monotonic() - started < 1.0
    assert counted(metrics, "dropped") == 6, "every record: queued, in flight or refused"
    assert counted(metrics, "published") == 0
