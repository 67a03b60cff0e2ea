"""The public entry points: ``recommend``, ``next_items`` and the full ranking behind them.

``rank`` scores every candidate (sequential and session sources, the
catalog, group deals of those products), blends the normalised components,
and orders the blended items first and the popularity back-fill after them.
Given a learned ranker (:mod:`recstream.scoring.learned`), it ranks that
model's bounded candidates by the model's score instead, with the same
back-fill; the blend stays the fallback.
``recommend`` cuts that ranking to the request's limit through the business
filters; ``explain`` (in :mod:`recstream.scoring.explain`) reads the same
ranking, so an explanation always agrees with what would be recommended.

A user without any history, session or anchor is a cold start: they get
popular items (leaning to nothing personal), with ``source="cold_start"``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recstream.contract.items import is_group
from recstream.model.config import CoreConfig
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.blend import blend, blend_weights, normalise_components
from recstream.scoring.config import ScoringConfig
from recstream.scoring.content import content_scores
from recstream.scoring.filters import cut, resolve_filters, session_items
from recstream.scoring.groups import lift_to_groups, open_groups
from recstream.scoring.intent import infer_intent
from recstream.scoring.items import dedupe, normalise, ranked
from recstream.scoring.models import (
    COMPONENTS,
    Intent,
    RecommendationRequest,
    Recommendations,
    ScoredItem,
    Source,
)
from recstream.scoring.popular import popular_scores
from recstream.scoring.sequential import sequential_for
from recstream.scoring.session import session_for

if TYPE_CHECKING:  # the learned path imports numpy and LightGBM when it first runs
    from recstream.scoring.learned import LearnedRanker, LearnedScores


@dataclass(frozen=True, slots=True)
class Ranking:
    intent: Intent
    weights: dict[str, float]
    items: tuple[ScoredItem, ...]  # every candidate, best first, before the filters
    cold_start: bool
    learned: LearnedScores | None = None  # the model's scores, when a model ranked


def is_cold_start(ctx: RecommendationContext) -> bool:
    return ctx.state.total_events == 0 and ctx.session is None and not ctx.anchors


def _source(contributions: dict[str, float]) -> Source:
    best: Source = "content"
    value = -1.0
    for component in COMPONENTS:
        if contributions.get(component, 0.0) > value:
            best, value = component, contributions.get(component, 0.0)
    return best


def _backfill(
    scores: dict[str, float], seen: set[str], source: Source, scale: float
) -> list[ScoredItem]:
    return [
        ScoredItem(item, scale * score, {"popular": scale * score}, source)
        for item, score in ranked(scores)
        if item not in seen
    ]


def rank(
    ctx: RecommendationContext,
    request: RecommendationRequest,
    config: ScoringConfig,
    core: CoreConfig,
    ranker: LearnedRanker | None = None,
) -> Ranking:
    """All candidates in recommendation order, each with its components and source."""
    intent = infer_intent(ctx.session, config)
    if is_cold_start(ctx):
        return _cold_ranking(ctx, intent, config, core)
    if ranker is not None and request.weights is None:
        return _learned_ranking(ctx, intent, ranker, config, core)
    sequential = sequential_for(ctx, config)
    session = session_for(ctx, config)
    candidates = dedupe([*sorted(sequential), *sorted(session)])
    groups = open_groups(ctx)
    raw = {
        "content": content_scores(ctx, candidates, config, core),
        "sequential": lift_to_groups(sequential, groups, ctx.now, config),
        "session": lift_to_groups(session, groups, ctx.now, config),
    }
    components = normalise_components(raw)
    with_signal = {c for c, scores in components.items() if scores}
    weights = blend_weights(request.weights, intent, with_signal, config)
    contributions = blend(components, weights)
    if intent.kind == "group_seeking" and config.group_intent_boost > 0:
        boost = 1.0 + config.group_intent_boost * intent.confidence
        for item, parts in contributions.items():
            if is_group(item):
                contributions[item] = {c: v * boost for c, v in parts.items()}
    totals = {item: sum(parts.values()) for item, parts in contributions.items()}
    items = [
        ScoredItem(item, score, contributions[item], _source(contributions[item]))
        for item, score in ranked(totals)
    ]
    items += _backfill(
        popular_scores(ctx, config, core), set(totals), "popular", config.backfill_scale
    )
    return Ranking(intent, weights, tuple(items), cold_start=False)


# the feature that holds each component's evidence
_EVIDENCE: dict[str, str] = {c: f"{c}_score" for c in COMPONENTS}


def _learned_ranking(
    ctx: RecommendationContext,
    intent: Intent,
    ranker: LearnedRanker,
    config: ScoringConfig,
    core: CoreConfig,
) -> Ranking:
    """The model's candidates by its score, then the popular back-fill. An item's
    components are its normalised source scores (evidence, not shares of the score)."""
    from recstream.scoring.learned import learned_scores
    from recstream.scoring.ranker_features import FEATURES

    learned = learned_scores(ctx, ranker, config, core)
    items = learned.candidates.items
    columns = {c: FEATURES.index(name) for c, name in _EVIDENCE.items()}
    # A small model (little training data, early stopping after a few trees) gives many
    # candidates the same score: the blend's components order those, not their ids.
    configured = config.weights.as_dict()
    prior = [
        sum(configured.get(c, 0.0) * float(learned.matrix[i, col]) for c, col in columns.items())
        for i in range(len(items))
    ]
    order = sorted(range(len(items)), key=lambda i: (-learned.scores[i], -prior[i], items[i]))
    scored = []
    for i in order:
        evidence: dict[str, float] = {
            c: float(learned.matrix[i, column]) for c, column in columns.items()
        }
        score = _logistic(float(learned.scores[i]))  # in [0, 1], the same order
        source: Source = _source(evidence) if any(evidence.values()) else "popular"
        scored.append(ScoredItem(items[i], score, evidence, source))
    scored += _backfill(
        popular_scores(ctx, config, core), set(items), "popular", config.backfill_scale
    )
    weights: dict[str, float] = {c: 0.0 for c in COMPONENTS}
    return Ranking(intent, weights, tuple(scored), cold_start=False, learned=learned)


def _logistic(x: float) -> float:
    """1 / (1 + e^-x) without overflow, whatever scale a model's raw scores have."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _cold_ranking(
    ctx: RecommendationContext, intent: Intent, config: ScoringConfig, core: CoreConfig
) -> Ranking:
    popular = popular_scores(ctx, config, core)
    items = _backfill(popular, set(), "cold_start", 1.0)
    newest = normalise(content_scores(ctx, [], config, core))
    items += _backfill(newest, set(popular), "cold_start", config.backfill_scale)
    return Ranking(intent, {c: 0.0 for c in COMPONENTS}, tuple(items), cold_start=True)


def recommend(
    ctx: RecommendationContext,
    request: RecommendationRequest,
    config: ScoringConfig,
    core: CoreConfig,
    ranker: LearnedRanker | None = None,
    *,
    reasons: bool = False,
) -> Recommendations:
    """The top ``request.limit`` items for this user now, after the business filters;
    ranked by ``ranker`` when one is given (and the request overrides no weight).

    With ``reasons``, each item of a learned ranking carries the features that raised
    its score most (LightGBM's ``pred_contrib``: about 0.2 ms per item, so on request)."""
    ranking = rank(ctx, request, config, core, ranker)
    limit = max(0, min(request.limit, config.max_limit))
    by_item = {scored.item: scored for scored in ranking.items}
    kept, _ = cut(ctx, (s.item for s in ranking.items), resolve_filters(request, config), limit)
    chosen = tuple(by_item[item] for item in kept)
    if reasons and ranking.learned is not None:
        found = ranking.learned.reasons(kept)
        chosen = tuple(
            dataclasses.replace(s, reasons=found[s.item]) if s.item in found else s for s in chosen
        )
    return Recommendations(
        user_id=ctx.user_id,
        items=chosen,
        intent=ranking.intent,
        weights=ranking.weights,
        source=_overall_source(chosen, ranking.cold_start),
        cold_start=ranking.cold_start,
        session_items=session_items(ctx),
        ranker=ranking.learned.ranker.version if ranking.learned is not None else "blend",
    )


def _overall_source(items: tuple[ScoredItem, ...], cold_start: bool) -> Source:
    if cold_start:
        return "cold_start"
    personal = [s for s in items if s.source not in ("popular", "cold_start")]
    if not personal:
        return "popular"
    counts: dict[Source, int] = {}
    for scored in personal:
        counts[scored.source] = counts.get(scored.source, 0) + 1
    return max(counts, key=lambda s: (counts[s], -COMPONENTS.index(s)))


def next_items(
    ctx: RecommendationContext,
    limit: int,
    config: ScoringConfig,
    *,
    exclude: frozenset[str] = frozenset(),
    include_seen: bool = False,
) -> list[ScoredItem]:
    """Next-item predictions: sequential and session components only, products only.

    The two keep their configured relative weights (re-normalised over those with
    signal); intent does not shift them. Popular products back-fill a short list.
    Never returns an item of ``exclude`` (the anchor the request names, the items on
    screen), nor, unless ``include_seen``, an item already seen in the current session.
    """
    excluded = exclude if include_seen else exclude | session_items(ctx)
    raw = {"sequential": sequential_for(ctx, config), "session": session_for(ctx, config)}
    components = normalise_components(raw)
    weights = config.weights.as_dict()
    weights["content"] = 0.0
    with_signal = {c for c, scores in components.items() if scores}
    contributions = blend(
        components, blend_weights(weights, Intent("unknown", 0.0), with_signal, config)
    )
    totals = {
        i: sum(p.values())
        for i, p in contributions.items()
        if i not in excluded and _sellable(ctx, i)
    }
    items = [
        ScoredItem(i, s, contributions[i], _source(contributions[i])) for i, s in ranked(totals)
    ]
    if len(items) < limit:
        popular = {
            i: s
            for i, s in popular_scores(ctx, config).items()
            if i not in excluded and _sellable(ctx, i)
        }
        source: Source = "cold_start" if is_cold_start(ctx) else "popular"
        items += _backfill(popular, set(totals), source, config.backfill_scale)
    return items[: max(0, min(limit, config.max_limit))]


def _sellable(ctx: RecommendationContext, item: str) -> bool:
    """A product that is not known to be out of stock."""
    if is_group(item):
        return False
    entry = ctx.catalog.get(item)
    return entry is None or entry.in_stock
