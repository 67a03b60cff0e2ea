"""The impression records of the recommendations the API returns.

Every list a recommendation endpoint returns gets a ``recommendation_id`` and the name of
the variant that ranked it; the API writes a ``recommendation_shown`` event of it to the
interactions topic (keyed by the user, like the user's own events), so the consumer can
attribute what the user does next to it (``recstream.model.attribution``).

Writing never slows the response: the route hands the record to :class:`ImpressionWriter`,
a bounded queue that one background task drains in batches through the app's producer.
When the broker is down the task retries with back-off while the queue holds; a record
that finds the queue full is dropped and counted
(``recstream_api_impressions_total{outcome="dropped"}``): an impression lost leaves the
counters short, it never makes one count twice. A record's ``event_id`` comes from its
``recommendation_id``, so a retried send is one impression to the consumer's dedupe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from recstream.contract.events import (
    MAX_EVENT_BYTES,
    RecommendationShown,
    ShownItem,
    encode_event,
)
from recstream.contract.items import split_key
from recstream_api.exceptions import BrokerUnavailableError
from recstream_api.metrics import ApiMetrics
from recstream_api.publisher import EventPublisher, OutgoingRecord

log = logging.getLogger(__name__)

RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)  # the back-off while the broker is down, then 5 s


class ShownList(NamedTuple):
    """What a response says about its list: its id and the variant that ranked it."""

    recommendation_id: str
    variant: str


def new_recommendation_id() -> str:
    return uuid.uuid4().hex


def ranker_variant(ranker: str) -> str:
    """The variant of ``POST /recommendations``: ``blend``, or ``ranker-<version>`` (a
    version's characters outside ``[A-Za-z0-9_.:-]`` become ``_``: it names Redis keys)."""
    if ranker == "blend":
        return ranker
    return "ranker-" + re.sub(r"[^A-Za-z0-9_.:-]", "_", ranker)[:57]


@dataclass(frozen=True, slots=True)
class ListReturned:
    """A list of recommendations about to be returned."""

    variant: str
    user_id: str
    session_id: str | None
    on_screen: str | None  # the key of the item the page is about, if any
    items: Sequence[tuple[str, float]]  # (item key, score), in the order shown
    at: datetime


def impression_record(recommendation_id: str, returned: ListReturned) -> OutgoingRecord:
    """The ``recommendation_shown`` record of a list. One above the contract's 16 KiB (100
    items with long ids) goes without its scores, and if still too long, with the first
    items that fit: the consumer would dead-letter it whole."""
    record = _record(recommendation_id, returned, scores=True)
    if len(record.value) <= MAX_EVENT_BYTES:
        return record
    record = _record(recommendation_id, returned, scores=False)
    while len(record.value) > MAX_EVENT_BYTES:
        cut = max(1, len(returned.items) * MAX_EVENT_BYTES // len(record.value))
        returned = replace(returned, items=returned.items[: min(cut, len(returned.items) - 1)])
        record = _record(recommendation_id, returned, scores=False)
    return record


def _record(recommendation_id: str, returned: ListReturned, *, scores: bool) -> OutgoingRecord:
    product_id = group_id = None
    if returned.on_screen is not None:
        kind, on_screen_id = split_key(returned.on_screen)
        product_id, group_id = (on_screen_id, None) if kind == "product" else (None, on_screen_id)
    event = RecommendationShown(
        event_id=f"shown-{recommendation_id}",
        event_type="recommendation_shown",
        user_id=returned.user_id,
        session_id=returned.session_id,
        occurred_at=returned.at,
        product_id=product_id,
        group_id=group_id,
        recommendation_id=recommendation_id,
        variant=returned.variant,
        items=[
            ShownItem(kind=kind, id=item_id, position=n, score=round(score, 6) if scores else None)
            for n, ((kind, item_id), score) in enumerate(
                ((split_key(key), score) for key, score in returned.items), start=1
            )
        ],
    )
    return OutgoingRecord(key=returned.user_id.encode(), value=encode_event(event))


class ImpressionWriter:
    """A bounded queue of impression records and the task that publishes them."""

    def __init__(
        self,
        publisher: EventPublisher,
        metrics: ApiMetrics,
        *,
        capacity: int,
        batch_size: int = 500,
        enabled: bool = True,
    ) -> None:
        self._publisher = publisher
        self._metrics = metrics
        self._queue: asyncio.Queue[OutgoingRecord] = asyncio.Queue(capacity)
        self._batch_size = batch_size
        self.enabled = enabled
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._in_flight = 0  # records of the batch being sent

    def record(self, returned: ListReturned) -> ShownList:
        """A new ``recommendation_id`` for a list about to be returned, whose impression
        record is queued (a list of no items has none)."""
        recommendation_id = new_recommendation_id()
        if self.enabled and returned.items:
            self.offer(impression_record(recommendation_id, returned))
        return ShownList(recommendation_id, returned.variant)

    def offer(self, record: OutgoingRecord) -> None:
        """Queue ``record`` for publishing, or drop and count it when the queue is full."""
        if not self.enabled:
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._metrics.count_impressions("dropped")

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="impression-writer")

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Publish what is queued, for at most ``drain_seconds``, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_seconds):
                await self._queue.join()
        self._stopping = True  # a retry loop that outlives its cancellation ends at its next turn
        self._task.cancel()
        # asyncio.wait, not await: a producer start that swallows its cancellation (aiokafka's,
        # with the broker away) would hold the shutdown for ever; it is left behind instead
        await asyncio.wait({self._task}, timeout=drain_seconds)
        self._task = None
        left = self._queue.qsize() + self._in_flight
        if left:
            self._metrics.count_impressions("dropped", left)
            log.warning("stopped with %d impression records unpublished", left)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight = len(batch)
            await self._publish(batch)
            self._in_flight = 0
            for _ in batch:
                self._queue.task_done()

    async def _publish(self, batch: list[OutgoingRecord]) -> None:
        attempt = 0
        while not self._stopping:
            try:
                await self._publisher.publish(batch)
            except BrokerUnavailableError as exc:  # retried: the queue bounds what waits
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                if attempt == 0:
                    log.warning("impression records not published, retrying: %s", exc.message)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            except Exception:
                log.exception("%d impression records dropped", len(batch))
                self._metrics.count_impressions("dropped", len(batch))
                return
            self._metrics.count_impressions("published", len(batch))
            return
