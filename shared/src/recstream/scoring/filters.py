"""Business filters, applied to the ranked candidates before the top-K cut.

In order (the first that applies is the reason reported): the items on
screen (the page's own product or group and the others it shows: never
recommended back, whatever the request asks), items the request excludes,
item kind (products / groups / both), already purchased products and already
joined groups (from the user's recent history), products in the cart, items
already seen in the current session (unless the request includes them:
"continue browsing"), out of stock, group deals that cannot be joined (closed,
cancelled, full or expired), category include / exclude lists. The optional
per-category cap (diversity) is applied while cutting the top K: an item
whose category already has ``max_per_category`` items is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from recstream.contract.items import is_group
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ItemKind, ScoringConfig
from recstream.scoring.items import category_of
from recstream.scoring.models import RecommendationRequest

PURCHASE_TYPES = frozenset({"purchase_completed", "group_join_complete"})


@dataclass(frozen=True, slots=True)
class Filters:
    kind: ItemKind
    include_categories: frozenset[str] | None
    exclude_categories: frozenset[str]
    exclude_items: frozenset[str]
    current_items: frozenset[str]
    include_seen: bool
    exclude_purchased: bool
    exclude_in_cart: bool
    max_per_category: int | None


def resolve_filters(request: RecommendationRequest, config: ScoringConfig) -> Filters:
    return Filters(
        kind=request.kind or config.default_kind,
        include_categories=request.include_categories,
        exclude_categories=request.exclude_categories,
        exclude_items=request.exclude_items,
        current_items=request.current_items,
        include_seen=request.include_seen,
        exclude_purchased=(
            config.exclude_purchased
            if request.exclude_purchased is None
            else request.exclude_purchased
        ),
        exclude_in_cart=(
            config.exclude_in_cart if request.exclude_in_cart is None else request.exclude_in_cart
        ),
        max_per_category=(
            request.max_per_category
            if request.max_per_category is not None
            else config.max_per_category
        ),
    )


def purchased_items(ctx: RecommendationContext) -> frozenset[str]:
    """Products bought and groups joined, as far as the user's recent history reaches."""
    return frozenset(
        e.item for e in ctx.state.history if e.item is not None and e.event_type in PURCHASE_TYPES
    )


def session_items(ctx: RecommendationContext) -> frozenset[str]:
    """The items of the current session (none when there is no session now)."""
    return frozenset(ctx.session.items) if ctx.session is not None else frozenset()


def cart_items(ctx: RecommendationContext) -> frozenset[str]:
    """Products in the cart, as far as the user's recent history reaches: added and not
    removed, bought, or paid for since (a payment empties the cart)."""
    cart: set[str] = set()
    for entry in ctx.state.history:
        if entry.event_type == "add_to_cart" and entry.item is not None:
            cart.add(entry.item)
        elif entry.event_type in ("cart_remove", "purchase_completed") and entry.item is not None:
            cart.discard(entry.item)
        elif entry.event_type == "payment_success":
            cart.clear()
    return frozenset(cart)


@dataclass(frozen=True, slots=True)
class UserItems:
    """The user's own item sets that the filters check, computed once per request."""

    purchased: frozenset[str]
    in_cart: frozenset[str]
    seen: frozenset[str]


def user_items(ctx: RecommendationContext) -> UserItems:
    return UserItems(purchased_items(ctx), cart_items(ctx), session_items(ctx))


def _group_reason(ctx: RecommendationContext, item: str) -> str | None:
    entry = ctx.catalog.get(item)
    if entry is None or entry.kind != "group" or entry.group_open(ctx.now):
        return None
    if entry.status != "open":
        return f"group_{entry.status}"
    if entry.target_size is not None and entry.current_size >= entry.target_size:
        return "group_full"
    return "group_expired"


def filter_reason(
    ctx: RecommendationContext, item: str, filters: Filters, mine: UserItems
) -> str | None:
    """Why ``item`` may not be recommended (``None``: it may)."""
    if item in filters.current_items:
        return "on_screen"
    if item in filters.exclude_items:
        return "excluded_item"
    group = is_group(item)
    if (filters.kind == "products" and group) or (filters.kind == "groups" and not group):
        return "kind"
    if filters.exclude_purchased and item in mine.purchased:
        return "already_joined" if group else "already_purchased"
    if filters.exclude_in_cart and item in mine.in_cart:
        return "in_cart"
    if not filters.include_seen and item in mine.seen:
        return "seen_in_session"
    entry = ctx.catalog.get(item)
    if entry is not None and not entry.in_stock:
        return "out_of_stock"
    group_reason = _group_reason(ctx, item)
    if group_reason is not None:
        return group_reason
    if filters.include_categories is not None or filters.exclude_categories:
        category = category_of(ctx, item)
        if category is not None and category in filters.exclude_categories:
            return "category_excluded"
        if filters.include_categories is not None and category not in filters.include_categories:
            return "category_not_included"
    return None


def cut(
    ctx: RecommendationContext, ranked: Iterable[str], filters: Filters, limit: int
) -> tuple[list[str], dict[str, str]]:
    """The first ``limit`` items that pass; also the reason for each item skipped on the way."""
    mine = user_items(ctx)
    per_category: dict[str, int] = {}
    kept: list[str] = []
    skipped: dict[str, str] = {}
    for item in ranked:
        if len(kept) >= limit:
            break
        reason = filter_reason(ctx, item, filters, mine)
        if reason is None and filters.max_per_category is not None:
            category = category_of(ctx, item)
            if category is not None:
                if per_category.get(category, 0) >= filters.max_per_category:
                    reason = "category_cap"
                else:
                    per_category[category] = per_category.get(category, 0) + 1
        if reason is None:
            kept.append(item)
        else:
            skipped[item] = reason
    return kept, skipped
