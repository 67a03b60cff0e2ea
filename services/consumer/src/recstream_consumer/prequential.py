"""Live prequential quality: score sampled events against the state just before them.

For a sampled share of the ``interactions`` events (:func:`~recstream_consumer.quality.is_sampled`,
by ``event_id``), before their batch is applied, the monitor asks: was the event's
product among the user's top ``k`` next items, as the next-products endpoint
would have ranked them at the event's own time (with its defaults: items already
seen in the session are not listed, so a re-visit counts as a miss)? The monitor
reads the user's state itself (one read per sampled user) and folds the user's
earlier events of the same batch into a private copy; the shared statistics are
those before the batch. It runs before the batch's load, not inside the write:
the store step has no reads in the middle, and it does not run after the commit
either, where the batch's own contributions to the statistics (the very
transition it scores) would already count. The
ranks feed a rolling window (:class:`~recstream_consumer.quality.RollingQuality`)
exported as ``recstream_quality_hit_rate{k}`` and ``recstream_quality_mrr{k}``.

Only events that continue a session with items are scored (as in the offline
next-item protocol): without a session there is nothing to predict from. Group
events are left out (the next-items ranking has products only). A time budget
(:class:`~recstream_consumer.quality.TimeBudget`) caps the share of the
consumer's time the scoring takes; samples beyond it are counted as
``over_budget``, so while the budget binds a replay may score another subset.
Scoring never fails a batch: an error is logged and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from recstream.apply.batch import DecodedBatch
from recstream.contract.items import is_group
from recstream.model.config import CoreConfig
from recstream.model.fold import PositionedEvent, fold_user
from recstream.model.state import UserState
from recstream.offline.evaluation.metrics import rank_of
from recstream.readmodel.load import current_session, load_context
from recstream.scoring import ScoringConfig, next_items
from recstream.store.reads import StatsReader, UserRead
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.quality import RollingQuality, TimeBudget, is_sampled

log = logging.getLogger(__name__)

BURST_SECONDS = 2.0  # the budget may be spent this many seconds ahead at most


class QualityMonitor:
    def __init__(
        self,
        reader: StatsReader,
        core: CoreConfig,
        scoring: ScoringConfig,
        metrics: ConsumerMetrics,
        *,
        rate: float,
        k: int,
        window: int,
        budget: float,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._reader = reader
        self._core = core
        self._scoring = scoring
        self._metrics = metrics
        self._rate = rate
        self._clock = clock
        self.window = RollingQuality(k, window)
        self._budget = TimeBudget(budget, max(budget * BURST_SECONDS, 0.01), clock())
        self._scored_up_to: dict[int, int] = {}  # partition -> highest offset considered
        self.spent = 0.0  # seconds spent scoring, in total

    @property
    def k(self) -> int:
        return self.window.k

    async def sample(self, batch: DecodedBatch) -> None:
        """Score the batch's sampled events, before the batch is applied."""
        if self._rate <= 0.0:
            return
        by_user = batch.by_user
        picked = [
            (user_id, index)
            for user_id, events in by_user.items()
            for index, positioned in enumerate(events)
            if is_sampled(positioned.event.event_id, self._rate)
        ]
        if not picked:
            return
        # a batch read again (a conflict, an outage, a rewind) is not scored twice
        first = by_user[picked[0][0]][picked[0][1]]
        floor = self._scored_up_to.get(first.partition, -1)
        highest = floor
        for user_id, index in picked:
            positioned = by_user[user_id][index]
            highest = max(highest, positioned.offset)
            outcome = "repeat"
            if positioned.offset > floor:
                outcome = await self._sample(user_id, by_user[user_id], index)
            self._metrics.quality_samples.labels(outcome).inc()
        self._scored_up_to[first.partition] = highest

    async def _sample(self, user_id: str, events: Sequence[PositionedEvent], index: int) -> str:
        item = events[index].event.item_key
        if item is None or is_group(item):
            return "no_product"
        started = self._clock()
        if not self._budget.available(started):
            return "over_budget"
        try:
            outcome = await self._score(user_id, events, index, item)
        except Exception:  # scoring must never fail a batch
            log.warning("quality sample of %s failed", user_id, exc_info=True)
            outcome = "error"
        seconds = self._clock() - started
        self._budget.spend(seconds)
        self.spent += seconds
        self._metrics.quality_seconds.inc(seconds)
        return outcome

    async def _score(
        self,
        user_id: str,
        events: Sequence[PositionedEvent],
        index: int,
        item: str,
    ) -> str:
        positioned = events[index]
        (stored,) = await self._reader.read([UserRead(user_id)])
        state = stored if stored is not None else UserState(user_id)
        if state.watermark is not None and state.watermark.covers(
            positioned.partition, positioned.offset
        ):
            return "repeat"  # already applied: the stored state is not the one before it
        if index:
            state = fold_user(state, events[:index], self._core, take_ownership=True).state
        now = positioned.event.occurred_at.timestamp()
        session = current_session(state, now, self._core)
        if session is None or not session.items:
            return "no_session"
        ctx = await load_context(self._reader, user_id, now, self._core, state=state)
        ranking = [scored.item for scored in next_items(ctx, self.k, self._scoring)]
        self.window.add(rank_of(item, ranking, self.k))
        self._metrics.set_quality(self.k, self.window.hit_rate, self.window.mrr)
        return "scored"
