"""Why an item would (or would not) be recommended to this user now.

The explanation reads the same ranking as :func:`recommend`, so it agrees
with it: the rank after the business filters, each component's weighted
contribution, the session intent, the filter that removes the item, and the
user's own events that fed each component:

- *sequential*: the latest events on the anchors whose transitions lead to the
  item (or on the item itself, for a revisit);
- *session*: the latest events on the current-session items shared with the
  neighbour sessions that contain the item;
- *content*: events on the item (or its group's product), else on items of
  the same category.

For a group deal the product's evidence counts as the group's.

Given a learned ranker (:mod:`recstream.scoring.learned`), the ranking is the model's,
and the explanation also names the features that placed the item: the ones whose
contributions to its score (LightGBM's ``pred_contrib``) raised it most, in ``features``
and in the ``reason`` text. The events behind the item's sources are given as for the
blend, so an explanation stays backed by the user's own evidence either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from recstream.model.config import CoreConfig
from recstream.model.state import HistoryEntry
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ScoringConfig
from recstream.scoring.filters import cut, filter_reason, resolve_filters, user_items
from recstream.scoring.items import category_of, product_of
from recstream.scoring.models import (
    Explanation,
    Intent,
    RecommendationRequest,
    ScoredItem,
    TriggerEvent,
)
from recstream.scoring.recommender import Ranking, rank
from recstream.scoring.sequential import anchor_support
from recstream.scoring.session import neighbour_support

if TYPE_CHECKING:  # numpy and LightGBM load with the first learned ranking
    from recstream.scoring.learned import LearnedRanker

MAX_TRIGGERS = 10
PER_ITEM = 2

FILTER_TEXT = {
    "on_screen": "it is the item on screen",
    "excluded_item": "the request excludes it",
    "seen_in_session": "you already saw it in this session",
    "kind": "the request asks for another kind of item",
    "already_purchased": "you already bought it",
    "already_joined": "you already joined this group",
    "in_cart": "it is in your cart",
    "out_of_stock": "it is out of stock",
    "group_closed": "the group is closed",
    "group_cancelled": "the group was cancelled",
    "group_full": "the group is full",
    "group_expired": "the group's closing time has passed",
    "category_excluded": "its category is excluded",
    "category_not_included": "its category is not among the requested ones",
    "category_cap": "enough items of its category rank higher (diversity cap)",
}


def _events_on(ctx: RecommendationContext, items: Iterable[str]) -> list[HistoryEntry]:
    """The latest ``PER_ITEM`` events on each of the items, newest first."""
    wanted = set(items)
    picked: list[HistoryEntry] = []
    per_item: dict[str, int] = {}
    for entry in reversed(ctx.state.history):
        if entry.item in wanted and per_item.get(entry.item, 0) < PER_ITEM:
            per_item[entry.item] = per_item.get(entry.item, 0) + 1
            picked.append(entry)
    return picked


def _evidence_items(ctx: RecommendationContext, item: str) -> list[str]:
    product = product_of(ctx, item)
    return [item] if product is None else [item, product]


def _content_events(ctx: RecommendationContext, item: str) -> list[HistoryEntry]:
    direct = _events_on(ctx, _evidence_items(ctx, item))
    if direct:
        return direct
    category = category_of(ctx, item)
    if category is None:
        return []
    same = [e for e in reversed(ctx.state.history) if e.category == category]
    return same[: PER_ITEM * 2]


def _triggers(
    ctx: RecommendationContext, item: str, scored: ScoredItem | None, config: ScoringConfig
) -> tuple[TriggerEvent, ...]:
    if scored is None:
        return ()
    found: dict[str, tuple[HistoryEntry, list[str]]] = {}
    components = sorted(scored.components.items(), key=lambda kv: (-kv[1], kv[0]))
    for component, contribution in components:
        if contribution <= 0 or component == "popular":
            continue
        if component == "content":
            entries = _content_events(ctx, item)
        else:
            support: dict[str, float] = {}
            for target in _evidence_items(ctx, item):
                pick = anchor_support if component == "sequential" else neighbour_support
                support.update(pick(ctx, target, config))
            entries = _events_on(ctx, support)
        for entry in entries:
            found.setdefault(entry.event_id, (entry, []))[1].append(component)
    ordered = sorted(found.values(), key=lambda ec: (-ec[0].at, ec[0].event_id))
    return tuple(
        TriggerEvent(e.event_id, e.event_type, e.at, e.item, tuple(fed))
        for e, fed in ordered[:MAX_TRIGGERS]
    )


def _names(items: Iterable[str | None], limit: int = 3) -> str:
    names = [i for i in dict.fromkeys(items) if i is not None][:limit]
    return ", ".join(names)


def _model_text(ranker: str, features: tuple[tuple[str, float], ...]) -> str:
    """What the model saw in the item: ``model v2 ranks it for popular_score (+0.412)``."""
    if not features:
        return f"model {ranker} ranks it, though none of its features raised its score"
    named = ", ".join(f"{name} ({value:+.3g})" for name, value in features)
    return f"model {ranker} ranks it for {named}"


def _features(ranking: Ranking, item: str) -> tuple[tuple[str, float], ...]:
    if ranking.learned is None:
        return ()
    return ranking.learned.reasons([item]).get(item, ())


def _reason(
    ctx: RecommendationContext,
    item: str,
    scored: ScoredItem | None,
    rank_: int | None,
    limit: int,
    filtered_by: str | None,
    triggers: tuple[TriggerEvent, ...],
    intent: Intent,
    model: str | None = None,
) -> str:
    if filtered_by is not None:
        return f"Not recommended: {FILTER_TEXT.get(filtered_by, filtered_by)}."
    if scored is None or rank_ is None:
        return "Not recommended: nothing you did recently points to it, and it is not popular now."
    source = scored.source
    if source == "cold_start":
        why = "Popular right now; there is no history of yours to personalise with yet"
    elif source == "popular":
        why = "Popular right now, filling up the list"
    elif source == "sequential":
        why = f"Often comes next after {_names(t.item for t in triggers if source in t.components)}"
    elif source == "session":
        shared = _names(t.item for t in triggers if source in t.components)
        why = f"Sessions like yours (also with {shared}) went on to it"
    else:
        category = category_of(ctx, item)
        why = f"Fits your interests{f' in {category}' if category else ''}"
    entry = ctx.catalog.get(item)
    if entry is not None and entry.kind == "group" and entry.target_size:
        why += f"; group deal {entry.current_size}/{entry.target_size} joined"
    if intent.kind != "unknown":
        kind = intent.kind.replace("_", "-")
        why += f"; your session suggests {kind} intent ({intent.confidence:.0%} sure)"
    if model is not None:
        why += f"; {model}"
    position = f"rank {rank_}" if rank_ <= limit else f"rank {rank_}, below the top {limit}"
    return f"{why} ({position})."


def explain(
    ctx: RecommendationContext,
    item: str,
    request: RecommendationRequest,
    config: ScoringConfig,
    core: CoreConfig,
    ranker: LearnedRanker | None = None,
) -> Explanation:
    """Why ``item`` would or would not be among this user's recommendations now, ranked
    as :func:`~recstream.scoring.recommender.recommend` ranks it with ``ranker``."""
    ranking = rank(ctx, request, config, core, ranker)
    filters = resolve_filters(request, config)
    by_item = {s.item: s for s in ranking.items}
    scored = by_item.get(item)
    kept, skipped = cut(ctx, (s.item for s in ranking.items), filters, len(ranking.items))
    filtered_by = filter_reason(ctx, item, filters, user_items(ctx)) or skipped.get(item)
    rank_ = kept.index(item) + 1 if item in kept else None
    limit = max(0, min(request.limit, config.max_limit))
    triggers = _triggers(ctx, item, scored, config)
    version = ranking.learned.ranker.version if ranking.learned is not None else "blend"
    features = _features(ranking, item)
    in_model = ranking.learned is not None and item in ranking.learned.candidates.items
    model = _model_text(version, features) if in_model else None
    return Explanation(
        item=item,
        recommended=rank_ is not None and rank_ <= limit,
        rank=rank_,
        score=scored.score if scored is not None else 0.0,
        components=dict(scored.components) if scored is not None else {},
        source=scored.source if scored is not None else None,
        intent=ranking.intent,
        filtered_by=filtered_by,
        triggers=triggers,
        reason=_reason(
            ctx, item, scored, rank_, limit, filtered_by, triggers, ranking.intent, model
        ),
        ranker=version,
        features=features,
    )
