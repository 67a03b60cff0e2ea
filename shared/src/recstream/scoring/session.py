"""Session component: vector session-kNN (V-SKNN) over neighbour sessions.

Following session-rec's ``VMContextKNN``: each distinct item of the current
session gets a position weight (``div``: position / length, so the last item
weighs 1); a neighbour's similarity is the sum of the weights of the items it
shares with the current session, divided by the number of distinct current
items. Of the ``knn_sample`` most recent neighbours the ``knn_k`` most similar
are kept, and every item of a neighbour scores the neighbour's similarity,
discounted by how far back (in the current session) the newest item it
shares is (``div``: 1 / steps). Two optional refinements are off by default
(neither helped next-item accuracy on ``yoochoose-100k``): neighbour time
decay, and a boost for the items that follow the match in the neighbour's
own order.

Intent inference from the same session lives in :mod:`recstream.scoring.intent`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import compress
from operator import attrgetter, itemgetter

from recstream.contract.units import DAY
from recstream.readmodel.context import NeighbourSession, RecommendationContext
from recstream.scoring.config import PositionWeighting, ScoringConfig
from recstream.scoring.intent import infer_intent
from recstream.scoring.items import top

__all__ = [
    "infer_intent",
    "neighbour_support",
    "query_items",
    "session_for",
    "session_scores",
    "stan_for",
    "stan_scores",
]


def _position_weight(kind: PositionWeighting, position: int, length: int) -> float:
    """Weight of the item at 1-based ``position`` of ``length`` (the last one is ``length``)."""
    if kind == "same":
        return 1.0
    if kind == "linear":
        return max(0.0, 1.0 - 0.1 * (length - position))
    if kind == "log":
        return 1.0 / math.log10(length - position + 1.7)
    if kind == "quadratic":
        return (position / length) ** 2
    return position / length


def _step_weight(kind: PositionWeighting, step: int) -> float:
    """Discount of a neighbour whose newest shared item is ``step`` items back (1 = last)."""
    if kind == "same":
        return 1.0
    if kind == "linear":
        return max(0.0, 1.0 - 0.1 * step)
    if kind == "log":
        return 1.0 / math.log10(step + 1.7)
    if kind == "quadratic":
        return 1.0 / (step * step)
    return 1.0 / step


def query_items(ctx: RecommendationContext) -> list[str]:
    """The current session's items, or the anchors when the request names other items."""
    session_items = list(ctx.session.items) if ctx.session is not None else []
    anchors = list(ctx.anchors)
    if anchors and session_items[-len(anchors) :] != anchors:
        return anchors
    return session_items or anchors


def _recent(neighbours: Sequence[NeighbourSession], sample: int) -> list[NeighbourSession]:
    """The ``sample`` most recent neighbours, newest first, ties by key (two stable sorts,
    so no key tuple is built per neighbour)."""
    recent = sorted(neighbours, key=attrgetter("key"))
    recent.sort(key=attrgetter("last_at"), reverse=True)
    return recent[:sample]


def _neighbours(
    items: Sequence[str], neighbours: Sequence[NeighbourSession], now: float, config: ScoringConfig
) -> list[tuple[NeighbourSession, set[str], float]]:
    """The ``knn_k`` most similar of the recent neighbours, with their item sets, most
    similar first (ties: the newest, then by key)."""
    weights: dict[str, float] = {}
    length = len(items)
    for position, item in enumerate(items, start=1):
        weights[item] = _position_weight(config.knn_position_weighting, position, length)
    current, current_weights = list(weights), list(weights.values())
    scored: list[tuple[NeighbourSession, set[str], float]] = []
    for neighbour in _recent(neighbours, config.knn_sample):
        members = set(neighbour.items)
        # the weights of the shared items, summed in session order (so the float result does
        # not depend on set iteration order), without a Python-level loop
        shared = compress(current_weights, map(members.__contains__, current))
        similarity = sum(shared) / len(weights)
        if similarity <= 0:
            continue
        if config.knn_neighbour_half_life_days is not None:
            age = max(0.0, now - neighbour.last_at)
            similarity *= math.pow(2.0, -age / (config.knn_neighbour_half_life_days * DAY))
        scored.append((neighbour, members, similarity))
    scored.sort(key=itemgetter(2), reverse=True)  # stable: ties keep the recency order
    return scored[: config.knn_k]


def _newest_shared_step(items: Sequence[str], neighbour_items: set[str]) -> int:
    for step, item in enumerate(reversed(items), start=1):
        if item in neighbour_items:
            return step
    return len(items) + 1


def session_scores(
    items: Sequence[str],
    neighbours: Sequence[NeighbourSession],
    now: float,
    config: ScoringConfig,
) -> dict[str, float]:
    """Raw V-SKNN scores of the items of the neighbour sessions; empty without a session."""
    if config.knn_last_items is not None:
        items = list(items)[-config.knn_last_items :]
    if not items or not neighbours:
        return {}
    scores: dict[str, float] = {}
    last = items[-1]
    for neighbour, members, similarity in _neighbours(items, neighbours, now, config):
        step = _newest_shared_step(items, members)
        weight = similarity * _step_weight(config.knn_score_weighting, step)
        for item in members:
            scores[item] = scores.get(item, 0.0) + weight
        if config.knn_follow_boost > 0 and last in members:
            _add_follow_boost(scores, neighbour.items, last, weight * config.knn_follow_boost)
    return top(scores, config.session_pool)


def _add_follow_boost(
    scores: dict[str, float], sequence: Sequence[str], anchor: str, weight: float
) -> None:
    """Items after the anchor's last occurrence in the neighbour, 1/distance."""
    position = max(i for i, item in enumerate(sequence) if item == anchor)
    seen: set[str] = set()
    for distance, item in enumerate(sequence[position + 1 :], start=1):
        if item not in seen:
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / distance


def session_for(ctx: RecommendationContext, config: ScoringConfig) -> dict[str, float]:
    return session_scores(query_items(ctx), ctx.neighbours, ctx.now, config)


def stan_scores(
    items: Sequence[str],
    neighbours: Sequence[NeighbourSession],
    now: float,
    config: ScoringConfig,
) -> dict[str, float]:
    """Raw STAN / V-STAN scores of the items of the same neighbour sessions.

    As :mod:`recstream.offline.evaluation.baselines.stan` computes them (Garg et al.,
    SIGIR 2019; Ludewig et al., 2021), without the idf factor: the current session's
    items weigh ``exp((p - n) / stan_position_lambda)``; a neighbour's similarity is the
    cosine of the shared weights, times ``exp(-age / stan_recency_lambda_days)``; of the
    ``knn_sample`` most recent the ``knn_k`` most similar vote, each vote times
    ``exp((p - n) / stan_match_lambda)`` for the newest current position it shares, and
    each of the neighbour's items gets ``exp(-k / stan_neighbour_lambda)`` of it, ``k``
    its distance in the neighbour from the last item it shares with the session.
    """
    if config.knn_last_items is not None:
        items = list(items)[-config.knn_last_items :]
    if not items or not neighbours:
        return {}
    length = len(items)
    weights: dict[str, float] = {}
    position_of: dict[str, int] = {}  # an item's last position in the current session
    for position, item in enumerate(items, start=1):
        weights[item] = math.exp((position - length) / config.stan_position_lambda)
        position_of[item] = position
    norm = math.sqrt(sum(w * w for w in weights.values()))
    recency = config.stan_recency_lambda_days * DAY
    scored: list[tuple[NeighbourSession, float]] = []
    for neighbour in _recent(neighbours, config.knn_sample):
        members = set(neighbour.items)
        # sum in session order, so the float result does not depend on set iteration order
        shared = sum(w for i, w in weights.items() if i in members)
        if shared <= 0:
            continue
        age = max(0.0, now - neighbour.last_at)
        similarity = shared / (norm * math.sqrt(len(members))) * math.exp(-age / recency)
        scored.append((neighbour, similarity))
    scored.sort(key=itemgetter(1), reverse=True)  # stable: ties keep the recency order
    scores: dict[str, float] = {}
    for neighbour, similarity in scored[: config.knn_k]:
        last: dict[str, int] = {}  # item -> its last position in the neighbour
        star = match = 0
        for position, item in enumerate(neighbour.items, start=1):
            last[item] = position
            if item in position_of:
                star = position
                match = max(match, position_of[item])
        weight = similarity * math.exp((match - length) / config.stan_match_lambda)
        for item, position in last.items():
            vote = weight * math.exp(-abs(position - star) / config.stan_neighbour_lambda)
            scores[item] = scores.get(item, 0.0) + vote
    return top(scores, config.session_pool)


def stan_for(ctx: RecommendationContext, config: ScoringConfig) -> dict[str, float]:
    return stan_scores(query_items(ctx), ctx.neighbours, ctx.now, config)


def neighbour_support(
    ctx: RecommendationContext, item: str, config: ScoringConfig
) -> dict[str, float]:
    """Current-session items shared with the neighbours that contain ``item`` (explanations)."""
    items = query_items(ctx)
    if config.knn_last_items is not None:
        items = items[-config.knn_last_items :]
    support: dict[str, float] = {}
    for _, members, similarity in _neighbours(items, ctx.neighbours, ctx.now, config):
        if item not in members:
            continue
        for shared in members & set(items):
            support[shared] = support.get(shared, 0.0) + similarity
    return support
