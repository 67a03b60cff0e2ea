"""Why an item would or would not be recommended: built from the same ranking as ``recommend``.

Pure: the core's full ranking (:func:`recstream.scoring.recommender.rank`) is
cut through the business filters without a limit, so the item's rank is the
rank it has in ``recommend``'s answer when that answer is long enough; the
filter that removes it is the one the cut reports. The triggering events are
the user's own history entries on the items that fed each component: the
anchors whose transitions lead to it (sequential), the session items shared
with the neighbour sessions that hold it (session), and the user's events in
its category or on the item itself (content), and the purchase or join behind
an ``already_purchased`` / ``already_joined`` filter.
"""

from __future__ import annotations

from collections.abc import Iterable

from recstream.config import CoreConfig
from recstream.context import RecommendationContext
from recstream.scoring.config import ScoringConfig
from recstream.scoring.filters import PURCHASE_TYPES, cut, resolve_filters
from recstream.scoring.items import category_of, product_of
from recstream.scoring.models import (
    Explanation,
    RecommendationRequest,
    TriggerEvent,
)
from recstream.scoring.recommender import rank
from recstream.scoring.sequential import anchor_support
from recstream.scoring.session import neighbour_support
from recstream.state import HistoryEntry

TRIGGERS_PER_COMPONENT = 3

FILTER_TEXT = {
    "excluded_item": "the request excludes it",
    "kind": "the request asks for another kind of item",
    "already_purchased": "you already bought it",
    "already_joined": "you already joined this group",
    "out_of_stock": "it is out of stock",
    "group_closed": "the group deal is closed",
    "group_cancelled": "the group deal was cancelled",
    "group_full": "the group deal is full",
    "group_expired": "the group deal has expired",
    "category_excluded": "its category is excluded",
    "category_not_included": "its category is not among the requested ones",
    "category_cap": "enough items of its category rank above it",
}
COMPONENT_TEXT = {
    "sequential": "it often comes next after {items}",
    "session": "sessions like yours that included {items} went on to it",
    "content": "it matches what you engage with{items}",
    "popular": "it is popular now",
    "cold_start": "it is popular now and we know little about you yet",
}


def _latest_events(history: Iterable[HistoryEntry], items: set[str]) -> list[HistoryEntry]:
    """The newest history entry on each of ``items``, newest first."""
    newest: dict[str, HistoryEntry] = {}
    for entry in history:
        if entry.item in items:
            newest[entry.item] = entry
    return sorted(newest.values(), key=lambda e: (-e.at, e.event_id))


def _triggers(
    ctx: RecommendationContext, item: str, components: dict[str, float], config: ScoringConfig
) -> list[TriggerEvent]:
    subject = product_of(ctx, item) or item
    history = ctx.state.history
    found: list[TriggerEvent] = []
    sources: dict[str, list[HistoryEntry]] = {}
    if components.get("sequential", 0.0) > 0:
        support = anchor_support(ctx, subject, config) or anchor_support(ctx, item, config)
        sources["sequential"] = _latest_events(history, set(support))
    if components.get("session", 0.0) > 0:
        support = neighbour_support(ctx, subject, config) or neighbour_support(ctx, item, config)
        sources["session"] = _latest_events(history, set(support))
    if components.get("content", 0.0) > 0:
        category = category_of(ctx, item)
        related = [
            e
            for e in history
            if e.item in (item, subject) or (category is not None and e.category == category)
        ]
        sources["content"] = sorted(related, key=lambda e: (-e.at, e.event_id))
    for component, entries in sources.items():
        for entry in entries[:TRIGGERS_PER_COMPONENT]:
            found.append(
                TriggerEvent(entry.event_id, entry.event_type, entry.at, entry.item, component)
            )
    return found


def _filter_triggers(
    ctx: RecommendationContext, item: str, filtered_by: str | None
) -> list[TriggerEvent]:
    """The purchase or join that makes an item ``already_purchased`` / ``already_joined``."""
    if filtered_by not in ("already_purchased", "already_joined"):
        return []
    done = [e for e in ctx.state.history if e.item == item and e.event_type in PURCHASE_TYPES]
    return [TriggerEvent(e.event_id, e.event_type, e.at, e.item, "filter") for e in done[-1:]]


def _names(triggers: list[TriggerEvent], component: str) -> str:
    items = [t.item.partition(":")[2] for t in triggers if t.component == component and t.item]
    return ", ".join(dict.fromkeys(items)) or "your recent items"


def _reason(
    rank_: int | None,
    limit: int,
    filtered_by: str | None,
    source: str | None,
    triggers: list[TriggerEvent],
) -> str:
    if filtered_by is not None:
        return f"not recommended: {FILTER_TEXT.get(filtered_by, filtered_by)}"
    if rank_ is None or source is None:
        return "not recommended: nothing you did recently leads to it and it is not popular"
    items = _names(triggers, source)
    if source == "content":
        items = f" ({items})" if any(t.component == "content" for t in triggers) else ""
    why = COMPONENT_TEXT.get(source, source).format(items=items)
    if rank_ <= limit:
        return f"recommended at rank {rank_}: {why}"
    return f"ranked {rank_}, below the top {limit}: {why}"


def explain(
    ctx: RecommendationContext,
    item: str,
    request: RecommendationRequest,
    config: ScoringConfig,
    core: CoreConfig,
) -> Explanation:
    """Why ``item`` would (not) be in ``recommend(ctx, request, ...)`` now."""
    ranking = rank(ctx, request, config, core)
    by_item = {scored.item: scored for scored in ranking.items}
    filters = resolve_filters(request, config)
    order = [s.item for s in ranking.items]
    if item not in by_item:
        order.append(item)  # not a candidate: only the filters can still say something
    kept, skipped = cut(ctx, order, filters, len(order))
    scored = by_item.get(item)
    position = kept.index(item) + 1 if item in kept and scored is not None else None
    filtered_by = skipped.get(item)
    limit = max(0, min(request.limit, config.max_limit))
    components = dict(scored.components) if scored is not None else {}
    triggers = _triggers(ctx, item, components, config) + _filter_triggers(ctx, item, filtered_by)
    source = scored.source if scored is not None else None
    return Explanation(
        item=item,
        recommended=position is not None and position <= limit,
        rank=position,
        score=scored.score if scored is not None else 0.0,
        components=components,
        source=source,
        intent=ranking.intent,
        filtered_by=filtered_by,
        triggers=tuple(triggers),
        reason=_reason(position, limit, filtered_by, source, triggers),
    )
