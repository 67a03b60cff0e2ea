"""Non-personalised lists: items similar to one item, and what is trending.

**Similar items** (an item page's "shoppers also viewed") come from three streaming
statistics of the item, each normalised by its best value:

- ``viewed_together``: co-visitation, the items of the same sessions (a cart add or a
  purchase counts more than a view, a near neighbour more than a far one);
- ``same_shoppers``: co-engagement, the items the same users engaged with in their
  other sessions (item-to-item collaborative filtering);
- ``viewed_next``: first-order transitions, the items that came next.

An item's score is the mean of its three components, equal weights, not fitted to any
data; the components say why it is there. **Trending** ranks items by their decayed
popularity (half-life ``popularity_half_life_days``), overall or within a category.
Both lists leave out the item on screen, items out of stock and group deals that
cannot be joined, and keep the requested kind (products, groups or both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ItemKind, ScoringConfig
from recstream.scoring.filters import Filters, UserItems, filter_reason
from recstream.scoring.items import category_of

SIMILAR_SOURCES = ("viewed_together", "same_shoppers", "viewed_next")
_NOBODY = UserItems(frozenset(), frozenset(), frozenset())


@dataclass(frozen=True, slots=True)
class ListedItem:
    item: str
    score: float
    category: str | None
    components: Mapping[str, float] = field(default_factory=dict)


def _normalised(scores: Mapping[str, float]) -> dict[str, float]:
    best = max(scores.values(), default=0.0)
    return {i: s / best for i, s in scores.items() if s > 0} if best > 0 else {}


def _filters(kind: ItemKind, on_screen: frozenset[str]) -> Filters:
    return Filters(
        kind=kind,
        include_categories=None,
        exclude_categories=frozenset(),
        exclude_items=frozenset(),
        current_items=on_screen,
        include_seen=True,
        exclude_purchased=False,
        exclude_in_cart=False,
        max_per_category=None,
    )


def _listed(
    ctx: RecommendationContext,
    scored: Mapping[str, float],
    components: Mapping[str, Mapping[str, float]],
    limit: int,
    filters: Filters,
) -> list[ListedItem]:
    ranked = sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))
    listed: list[ListedItem] = []
    for item, score in ranked:
        if filter_reason(ctx, item, filters, _NOBODY) is not None:
            continue
        parts = {name: values[item] for name, values in components.items() if item in values}
        listed.append(ListedItem(item, score, category_of(ctx, item), parts))
        if len(listed) == limit:
            break
    return listed


def similar_items(
    ctx: RecommendationContext, item: str, limit: int, kind: ItemKind | None, config: ScoringConfig
) -> list[ListedItem]:
    """The items most related to ``item`` (a context of :func:`load_item_context`)."""
    components = {
        "viewed_together": _normalised(ctx.covisited.get(item, {})),
        "same_shoppers": _normalised(ctx.co_engaged.get(item, {})),
        "viewed_next": _normalised(ctx.transitions.get(item, {})),
    }
    scored: dict[str, float] = {}
    for values in components.values():
        for other, value in values.items():
            scored[other] = scored.get(other, 0.0) + value / len(SIMILAR_SOURCES)
    filters = _filters(kind or config.default_kind, frozenset({item}))
    return _listed(ctx, scored, components, limit, filters)


def trending_items(
    ctx: RecommendationContext,
    category: str | None,
    limit: int,
    kind: ItemKind | None,
    config: ScoringConfig,
    on_screen: frozenset[str] = frozenset(),
) -> list[ListedItem]:
    """The most popular items now (a context of :func:`load_trending`)."""
    raw = ctx.popular_in_category.get(category, {}) if category is not None else ctx.popular
    popularity = _normalised(raw)
    filters = _filters(kind or config.default_kind, on_screen)
    return _listed(ctx, popularity, {"popularity": popularity}, limit, filters)
