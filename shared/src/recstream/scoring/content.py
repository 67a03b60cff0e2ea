"""Content component: how well a candidate's attributes fit this user.

Four factors, each in [0, 1]:

- *category match*: the user's decayed, event-type-weighted preference for
  the candidate's category, relative to their favourite category;
- *price sensitivity*: a Gaussian of the candidate's log price around the
  log prices the user engages with (and buys at), spread = the user's
  standard deviation (at least ``price_min_std``);
- *engagement match*: the user's implicit rating of the item (0..5 -> 0..1),
  or half of the rating of its group's product / of the product's groups;
- *recency*: the catalog's ``created_at``, halved every ``item_recency_half_life_days``.

A factor counts only when this user and the candidates have the data for it
(a user without price history has no price factor); the score is the
weighted mean over the factors that count, an unknown value counting 0.
Without any item attribute (no category, price or creation time known for
the candidates) the component abstains: re-engagement alone is left to the
sequential and session components, so the blend gets no duplicate signal.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from recstream.contract.catalog import CatalogItem
from recstream.contract.items import is_group
from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.model.decay import value_at
from recstream.model.ratings import implicit_rating
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ScoringConfig
from recstream.scoring.items import category_of, deal_product, top

FACTORS = ("category", "price", "engagement", "recency")


def log_price(price: float) -> float:
    return math.log(max(price, 0.01))


@dataclass(frozen=True, slots=True)
class UserProfile:
    """What content scoring needs from the user, computed once per request."""

    category_prefs: dict[str, float]  # category -> preference relative to the best, 0..1
    price_center: float | None
    price_std: float
    ratings: dict[str, float]  # item -> implicit rating / 5
    item_ratings: dict[str, float]  # item -> implicit rating (0..5), the positive ones


def user_profile(
    ctx: RecommendationContext, config: ScoringConfig, core: CoreConfig
) -> UserProfile:
    state = ctx.state
    half_life = core.rating_half_life_days * DAY  # as the fold decays them
    prefs = {
        c: value_at(s, ref, ctx.now, half_life) for c, (s, ref) in state.category_prefs.items()
    }
    best = max((v for v in prefs.values() if v > 0), default=0.0)
    relative = {c: v / best for c, v in prefs.items() if v > 0} if best > 0 else {}
    prices = state.prices
    center: float | None = None
    std = config.price_min_std
    if prices.engaged > 0:
        center = prices.engaged_mean
        if prices.bought > 0:
            center = (prices.engaged_mean + prices.bought_mean) / 2.0
        if prices.engaged > 1:
            std = max(std, math.sqrt(max(0.0, prices.engaged_m2) / (prices.engaged - 1)))
    item_ratings = {}
    for item, stats in state.items.items():
        rating = implicit_rating(item, stats, ctx.now, core).rating
        if rating > 0:
            item_ratings[item] = rating
    ratings = {item: rating / 5.0 for item, rating in item_ratings.items()}
    return UserProfile(relative, center, std, ratings, item_ratings)


# each factor's value in FACTORS order, None where the item lacks the attribute
Factors = tuple[float | None, float | None, float, float | None]


def _factors(
    ctx: RecommendationContext, profile: UserProfile, item: str, config: ScoringConfig
) -> Factors:
    return factors_of(ctx, profile, item, ctx.catalog.get(item), category_of(ctx, item), config)


def factors_of(
    ctx: RecommendationContext,
    profile: UserProfile,
    item: str,
    entry: CatalogItem | None,
    category: str | None,
    config: ScoringConfig,
) -> Factors:
    """The item's factors, given its catalog entry and category (looked up by the caller)."""
    category_match = profile.category_prefs.get(category, 0.0) if category is not None else None
    if entry is None:
        return category_match, None, profile.ratings.get(item, 0.0), None
    price_match: float | None = None
    if entry.price is not None and profile.price_center is not None:
        z = (log_price(entry.price) - profile.price_center) / profile.price_std
        price_match = math.exp(-0.5 * z * z)
    recency: float | None = None
    if entry.created_at is not None:
        age = max(0.0, ctx.now - entry.created_at)
        recency = math.pow(2.0, -age / (config.item_recency_half_life_days * DAY))
    return category_match, price_match, engagement_of(profile, item, entry), recency


def engagement_of(profile: UserProfile, item: str, entry: CatalogItem | None) -> float:
    """The engagement factor: the user's rating of the item, or half of the rating of the
    product a group deal is for, whichever is higher."""
    engagement = profile.ratings.get(item, 0.0)
    product = deal_product(entry)
    if product is None or not is_group(item):
        return engagement
    return max(engagement, 0.5 * profile.ratings.get(product, 0.0))


def _known(
    ctx: RecommendationContext, profile: UserProfile, items: Iterable[str]
) -> dict[str, bool]:
    """Whether any of the items, or any entry of the loaded catalog, has each attribute."""
    entries = ctx.catalog.values()
    if ctx.catalog:
        category = any(
            category_of(ctx, item) is not None for item in itertools.chain(items, ctx.catalog)
        )
    else:  # without catalog entries an item's category can only be its events'
        category = any(map(ctx.item_categories.__contains__, items))
    return {
        "category": category,
        "price": profile.price_center is not None
        and any(entry.price is not None for entry in entries),
        "recency": any(entry.created_at is not None for entry in entries),
    }


def _active_weights(
    known: dict[str, bool], profile: UserProfile, config: ScoringConfig
) -> dict[str, float]:
    """The factors that count for this user and these candidates, with their weights."""
    weights = config.content_factors
    active: dict[str, float] = {}
    if known["category"] and profile.category_prefs:
        active["category"] = weights.category
    if known["price"]:
        active["price"] = weights.price
    if known["recency"]:
        active["recency"] = weights.recency
    if active and profile.ratings:
        active["engagement"] = weights.engagement
    return {f: w for f, w in active.items() if w > 0}


@dataclass(frozen=True, slots=True)
class ContentScorer:
    """One request's content scoring: the user's profile and the factors that count."""

    profile: UserProfile
    # (index in Factors, weight) of the factors that count, in the order the sum adds them
    terms: tuple[tuple[int, float], ...]
    total: float

    def score(self, factors: Factors) -> float:
        if self.total <= 0:
            return 0.0
        value = 0.0  # left to right, in ``terms`` order
        for i, w in self.terms:
            value += w * (factors[i] or 0.0)
        return value / self.total


def _scorer(
    ctx: RecommendationContext, profile: UserProfile, items: Iterable[str], config: ScoringConfig
) -> ContentScorer:
    active = _active_weights(_known(ctx, profile, items), profile, config)
    terms = tuple((FACTORS.index(f), w) for f, w in active.items())
    return ContentScorer(profile, terms, sum(active.values()))


def content_scorer(
    ctx: RecommendationContext, items: Iterable[str], config: ScoringConfig, core: CoreConfig
) -> ContentScorer:
    """The scorer :func:`content_details` uses for these items and the loaded catalog: an
    item's score is ``scorer.score(factors_of(...))``, without scoring the rest."""
    return _scorer(ctx, user_profile(ctx, config, core), items, config)


def content_details(
    ctx: RecommendationContext,
    candidates: Iterable[str],
    config: ScoringConfig,
    core: CoreConfig,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Content scores of the candidates and of the catalog's items, with each factor's value."""
    profile = user_profile(ctx, config, core)
    pool = dict.fromkeys(candidates)
    pool.update(dict.fromkeys(sorted(ctx.catalog)))
    scorer = _scorer(ctx, profile, pool, config)
    scores: dict[str, float] = {}
    details: dict[str, dict[str, float]] = {}
    if scorer.total <= 0:
        return scores, details
    for item in pool:
        factors = _factors(ctx, profile, item, config)
        score = scorer.score(factors)
        if score > 0:
            scores[item] = score
            details[item] = {FACTORS[i]: (factors[i] or 0.0) for i, _ in scorer.terms}
    return scores, details


def content_scores(
    ctx: RecommendationContext,
    candidates: Iterable[str],
    config: ScoringConfig,
    core: CoreConfig,
) -> dict[str, float]:
    """Content scores of the candidates (all kept) plus the best ``content_pool`` catalog items."""
    wanted = list(candidates)
    scores, _ = content_details(ctx, wanted, config, core)
    kept = top(scores, config.content_pool)
    for item in wanted:
        if item in scores:
            kept[item] = scores[item]
    return kept
