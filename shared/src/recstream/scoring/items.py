"""Small helpers about items and score maps shared by the scoring components.

Items are ``p:<product_id>`` or ``g:<group_id>``. Rankings are deterministic:
higher score first, then the item id.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from operator import neg

from recstream.contract.catalog import CatalogItem
from recstream.contract.items import product_key
from recstream.readmodel.context import RecommendationContext


def product_of(ctx: RecommendationContext, item: str) -> str | None:
    """The product item a group deal is for (``p:<id>``), if the catalog says."""
    return deal_product(ctx.catalog.get(item))


def deal_product(entry: CatalogItem | None) -> str | None:
    """:func:`product_of`, given the item's catalog entry (looked up by the caller)."""
    if entry is not None and entry.kind == "group" and entry.product_id is not None:
        return product_key(entry.product_id)
    return None


def category_of(ctx: RecommendationContext, item: str) -> str | None:
    """The item's category: the catalog's, else its group product's, else the events'."""
    return category_in(ctx, item, ctx.catalog.get(item))


def category_in(ctx: RecommendationContext, item: str, entry: CatalogItem | None) -> str | None:
    """:func:`category_of`, given the item's catalog entry (looked up by the caller)."""
    if entry is not None and entry.category is not None:
        return entry.category
    product = deal_product(entry)
    if product is not None:
        product_entry = ctx.catalog.get(product)
        if product_entry is not None and product_entry.category is not None:
            return product_entry.category
        if product in ctx.item_categories:
            return ctx.item_categories[product]
    return ctx.item_categories.get(item)


def normalise(scores: Mapping[str, float]) -> dict[str, float]:
    """Scale positive scores so the best is 1; non-positive scores are dropped."""
    best = max(scores.values(), default=0.0)  # the best positive score, if there is one
    if best <= 0:
        return {}
    return {item: s / best for item, s in scores.items() if s > 0}


def ranked(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """All positive scores, best first, ties by item id."""
    return [(item, scores[item]) for item in _order(_comparable(scores))]


def top(scores: Mapping[str, float], n: int) -> dict[str, float]:
    """The ``n`` best positive scores, best first (ties by item id)."""
    scores = _comparable(scores)
    if len(scores) > 4 * n:  # cut to the items that can be among the n best before ordering
        cut = sorted(scores.values(), reverse=True)[n - 1]
        scores = {item: s for item, s in scores.items() if s >= cut}
    best = _order(scores)
    del best[n:]
    return {item: scores[item] for item in best}


def _order(scores: Mapping[str, float]) -> list[str]:
    """The items of positive score, best first, ties by item id.

    The pairs (-score, item) are built and compared in C (``zip``, ``map``), and the sort
    is linear when the mapping is already in that order, as :func:`top`'s results are;
    the positive scores are the pairs before ``(0.0,)``. The scores hold no NaN (the
    callers pass them through :func:`_comparable`)."""
    pairs = sorted(zip(map(neg, scores.values()), scores, strict=True))
    del pairs[bisect_left(pairs, (0.0,)) :]
    return [item for _, item in pairs]


def _comparable(scores: Mapping[str, float]) -> Mapping[str, float]:
    """The scores, or only the positive ones when one is NaN, which no order can place
    (a NaN anywhere makes the sum NaN, the one check that costs no Python loop)."""
    total = sum(scores.values())
    if total == total:
        return scores
    return {item: s for item, s in scores.items() if s > 0}


def dedupe(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats."""
    return list(dict.fromkeys(items))
