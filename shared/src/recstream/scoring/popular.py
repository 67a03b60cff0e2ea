"""Popularity and trending: the fallback for cold start and the back-fill of short lists.

Global decayed popularity is mixed with the popularity inside the categories
this user (or their current session) prefers, in proportion to those
preferences, so even a user with a single view gets a list leaning to what
they looked at. Each source is normalised by its best item first.
"""

from __future__ import annotations

from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.model.decay import value_at
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ScoringConfig
from recstream.scoring.items import normalise, top


def preferred_categories(ctx: RecommendationContext, core: CoreConfig) -> dict[str, float]:
    """Category -> share of the user's preference (decayed prefs, else session, else counts)."""
    half_life = core.rating_half_life_days * DAY  # as the fold decays them
    prefs = {
        c: value_at(s, ref, ctx.now, half_life) for c, (s, ref) in ctx.state.category_prefs.items()
    }
    prefs = {c: v for c, v in prefs.items() if v > 0}
    if not prefs and ctx.session is not None:
        prefs = {c: float(n) for c, n in ctx.session.categories.items() if n > 0}
    if not prefs:
        prefs = {c: float(n) for c, n in ctx.state.categories.items() if n > 0}
    total = sum(prefs.values())
    return {c: v / total for c, v in prefs.items()} if total > 0 else {}


def popular_scores(
    ctx: RecommendationContext, config: ScoringConfig, core: CoreConfig | None = None
) -> dict[str, float]:
    """Popularity in [0, 1]: half global, half the user's categories (all global without any).

    ``core`` gives the half-life the fold decays category preferences with (its
    default when not given).
    """
    scores = dict(normalise(ctx.popular))
    shares = preferred_categories(ctx, core or CoreConfig())
    local: dict[str, float] = {}
    for category, share in shares.items():
        for item, value in normalise(ctx.popular_in_category.get(category, {})).items():
            local[item] = local.get(item, 0.0) + share * value
    if local:
        mixed = {item: 0.5 * value for item, value in scores.items()}
        for item, value in local.items():
            mixed[item] = mixed.get(item, 0.0) + 0.5 * value
        scores = mixed
    return top(scores, config.popular_pool)
