"""On real sessions (yoochoose-100k): the item a user just viewed is in none of their lists.

The first 30,000 training clicks are applied through the consumer's core; the 300 users
whose last click is the latest are asked for ten blended recommendations and ten next
items, as the API asks by default. With ``include_seen`` (what the API returned before
it left the session's items out) the item just viewed is the top of most lists, which
shows the data would expose the defect.
"""

from __future__ import annotations

from pathlib import Path

from recstream.apply.batch import RawRecord, apply_batch
from recstream.model.config import CoreConfig
from recstream.offline.datasets import session_tsv_events
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.training import landmark_for
from recstream.readmodel.load import load_context
from recstream.scoring import RecommendationRequest, ScoringConfig, next_items, recommend
from recstream.store.memory import MemoryStore

EVENTS = 30_000
USERS = 300


async def test_the_item_just_viewed_is_never_recommended_back(datasets: Path) -> None:
    path = datasets / "yoochoose-100k" / "yoochoose-clicks-100k_train_full.txt"
    with path.open() as handle:
        events = list(session_tsv_events(handle))[:EVENTS]
    core = CoreConfig(decay_landmark=landmark_for(events))
    store, log = MemoryStore(), RecordLog("interactions", 4)
    for start in range(0, len(events), 500):
        by_partition: dict[int, list[RawRecord]] = {}
        for record in (log.append(e) for e in events[start : start + 500]):
            by_partition.setdefault(record.partition, []).append(record)
        for batch in by_partition.values():
            await apply_batch(store, batch, core)
    last: dict[str, tuple[float, str]] = {}
    for event in events:
        if event.item_key is not None:
            last[event.user_id] = (event.occurred_at.timestamp(), event.item_key)
    scoring = ScoringConfig()
    shown = top_was_viewed = 0
    for user in sorted(last, key=lambda u: last[u])[-USERS:]:
        now, viewed = last[user]
        ctx = await load_context(store, user, now, core)
        lists = [
            [s.item for s in recommend(ctx, RecommendationRequest(limit=10), scoring, core).items],
            [s.item for s in next_items(ctx, 10, scoring)],
        ]
        shown += sum(viewed in items for items in lists)
        old = recommend(ctx, RecommendationRequest(limit=10, include_seen=True), scoring, core)
        top_was_viewed += old.items[0].item == viewed
    assert shown == 0
    assert top_was_viewed > USERS // 2
