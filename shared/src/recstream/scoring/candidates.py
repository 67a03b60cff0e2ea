"""Candidate generation for the learned ranker: bounded lists from the streaming statistics.

Each source turns what the read model holds into ``item -> score`` (normalised so
its best item is 1) and keeps its ``per_source`` best items:

- ``sequential``: first- and second-order transitions from the session's last items
  (the blend's sequential component);
- ``session``: items of the neighbour sessions (the blend's session-kNN component);
- ``stan``: items of the same neighbour sessions, weighted as STAN / V-STAN weigh them
  (position in the session, the neighbour's recency, distance in the neighbour); not
  among :data:`DEFAULT_SOURCES`;
- ``covisitation``: items co-visited with the anchors in any session, weighted by event
  type and distance, the latest anchor counting most;
- ``co_engagement``: items that users who engaged with this user's items of earlier
  sessions also engaged with (user-level item-to-item collaborative filtering);
- ``category_popular``: the most popular items of the user's preferred categories;
- ``popular``: the global popularity head;
- ``recent``: the items of the current session, the latest first (re-visits);
- ``history``: the items of the user's whole history, by their decayed implicit score
  (what a returning user comes back to).

The union is bounded by construction: at most ``len(sources) * per_source`` items,
plus the open group deals of those products.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.model.decay import value_at
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ScoringConfig
from recstream.scoring.groups import open_groups
from recstream.scoring.items import normalise, ranked, top
from recstream.scoring.popular import preferred_categories
from recstream.scoring.sequential import sequential_for
from recstream.scoring.session import session_for, stan_for

SOURCES: tuple[str, ...] = (
    "sequential",
    "session",
    "stan",
    "covisitation",
    "co_engagement",
    "category_popular",
    "popular",
    "recent",
    "history",
)
# what `recstream train` uses unless told otherwise: ``stan`` did not win on every visible
# dataset's validation sessions (docs/ranker.md), so it is there to be chosen
DEFAULT_SOURCES: tuple[str, ...] = tuple(s for s in SOURCES if s != "stan")
Scores = dict[str, float]


@dataclass(frozen=True, slots=True)
class Candidates:
    """The candidate items of one request, with every source's normalised score."""

    items: tuple[str, ...]  # products and group deals, in first-found order
    scores: Mapping[str, Mapping[str, float]]  # source -> item -> score in (0, 1]
    ranks: Mapping[str, Mapping[str, int]]  # source -> item -> 1-based rank in that source
    groups: Mapping[str, str]  # group deal -> its product, for the deals among ``items``


def _weighted_rows(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Rows of related items, each normalised, the first counting most (1, 1/2, 1/3 ...)."""
    summed: dict[str, float] = {}
    for position, row in enumerate(rows, start=1):
        for item, value in normalise(row).items():
            summed[item] = summed.get(item, 0.0) + value / position
    return summed


def _covisitation(ctx: RecommendationContext, config: ScoringConfig, core: CoreConfig) -> Scores:
    return _weighted_rows([ctx.covisited.get(a, {}) for a in reversed(ctx.anchors)])


def _co_engagement(ctx: RecommendationContext, config: ScoringConfig, core: CoreConfig) -> Scores:
    return _weighted_rows(list(ctx.co_engaged.values()))


def _category_popular(
    ctx: RecommendationContext, config: ScoringConfig, core: CoreConfig
) -> Scores:
    scores: dict[str, float] = {}
    for category, share in preferred_categories(ctx, core).items():
        for item, value in normalise(ctx.popular_in_category.get(category, {})).items():
            scores[item] = scores.get(item, 0.0) + share * value
    return scores


def _recent(ctx: RecommendationContext, config: ScoringConfig, core: CoreConfig) -> Scores:
    scores: dict[str, float] = {}
    if ctx.session is not None:
        for steps, item in enumerate(reversed(ctx.session.items), start=1):
            scores.setdefault(item, 1.0 / steps)
    return scores


def _history(ctx: RecommendationContext, config: ScoringConfig, core: CoreConfig) -> Scores:
    half_life = core.rating_half_life_days * DAY  # as the fold decays them
    return {
        item: value_at(stats.score, stats.ref, ctx.now, half_life)
        for item, stats in ctx.state.items.items()
    }


SourceFunction = Callable[[RecommendationContext, ScoringConfig, CoreConfig], Scores]
_SOURCE_FUNCTIONS: Mapping[str, SourceFunction] = {
    "sequential": lambda ctx, config, core: sequential_for(ctx, config),
    "session": lambda ctx, config, core: session_for(ctx, config),
    "stan": lambda ctx, config, core: stan_for(ctx, config),
    "covisitation": _covisitation,
    "co_engagement": _co_engagement,
    "category_popular": _category_popular,
    "popular": lambda ctx, config, core: dict(ctx.popular),
    "recent": _recent,
    "history": _history,
}


def source_scores(
    ctx: RecommendationContext,
    config: ScoringConfig,
    core: CoreConfig,
    sources: Sequence[str] = SOURCES,
) -> dict[str, Scores]:
    """The named sources' raw ``item -> score`` for this request (unbounded, not normalised)."""
    return {source: _SOURCE_FUNCTIONS[source](ctx, config, core) for source in sources}


def bound(
    ctx: RecommendationContext,
    raw: Mapping[str, Mapping[str, float]],
    per_source: int,
    sources: Sequence[str] = DEFAULT_SOURCES,
) -> Candidates:
    """The union of every source's ``per_source`` best items, and their open group deals."""
    scores: dict[str, dict[str, float]] = {}
    ranks: dict[str, dict[str, int]] = {}
    found: dict[str, None] = {}
    for source in sources:
        kept = top(raw[source], per_source)  # best first, ties by id
        best = normalise(kept)
        ordered = list(best)
        if len(set(best.values())) < len(set(kept.values())):
            # two raw scores normalise to one: those two are ordered by id
            ordered = [item for item, _ in ranked(best)]
        scores[source] = best
        ranks[source] = dict(zip(ordered, range(1, len(ordered) + 1), strict=True))
        found.update(dict.fromkeys(ordered))
    groups: dict[str, str] = {}
    for group, (product, _) in open_groups(ctx).items():
        if product in found:
            groups[group] = product
            found[group] = None
    return Candidates(tuple(found), scores, ranks, groups)


def generate(
    ctx: RecommendationContext,
    config: ScoringConfig,
    core: CoreConfig,
    per_source: int,
    sources: Sequence[str] = DEFAULT_SOURCES,
) -> Candidates:
    """The bounded candidates of this request, from the named sources only."""
    return bound(ctx, source_scores(ctx, config, core, sources), per_source, sources)
