"""Sequential component: what usually comes next after the user's last items.

Each anchor's first-order row (anchor -> next item -> weight) is turned into a
distribution (divided by its sum), weighted ``anchor_decay ** k`` for the
anchor ``k`` steps before the last one, and summed; the second-order
distribution after the last two anchors (A, B -> C) is added with
``second_order_weight``. Each anchor item itself scores ``reminder_weight``
(with the same decay): revisiting a just-seen item is one of the most likely
next steps, and the learned rows may not record item -> same item. Rows hold
relative (forward-decayed) weights, so only their proportions matter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ScoringConfig
from recstream.scoring.items import top


def _add_distribution(scores: dict[str, float], row: Mapping[str, float], weight: float) -> None:
    total = sum(v for v in row.values() if v > 0)
    if total <= 0 or weight <= 0:
        return
    for item, value in row.items():
        if value > 0:
            scores[item] = scores.get(item, 0.0) + weight * value / total


def sequential_scores(
    anchors: Sequence[str],
    transitions: Mapping[str, Mapping[str, float]],
    transitions2: Mapping[str, float],
    config: ScoringConfig,
) -> dict[str, float]:
    """Raw next-item scores from the anchors (oldest first); empty without transitions."""
    scores: dict[str, float] = {}
    recent = list(anchors)[-config.sequential_anchors :]
    for back, anchor in enumerate(reversed(recent)):
        row = transitions.get(anchor)
        if row:
            _add_distribution(scores, row, config.anchor_decay**back)
        if config.reminder_weight > 0:
            reminder = config.reminder_weight * config.anchor_decay**back
            scores[anchor] = scores.get(anchor, 0.0) + reminder
    if len(recent) >= 2:
        _add_distribution(scores, transitions2, config.second_order_weight)
    return top(scores, config.sequential_pool)


def sequential_for(ctx: RecommendationContext, config: ScoringConfig) -> dict[str, float]:
    return sequential_scores(ctx.anchors, ctx.transitions, ctx.transitions2, config)


def anchor_support(
    ctx: RecommendationContext, item: str, config: ScoringConfig
) -> dict[str, float]:
    """How much each anchor contributes to ``item`` (for explanations)."""
    support: dict[str, float] = {}
    recent = list(ctx.anchors)[-config.sequential_anchors :]
    for back, anchor in enumerate(reversed(recent)):
        row = ctx.transitions.get(anchor, {})
        total = sum(v for v in row.values() if v > 0)
        value = row.get(item, 0.0)
        share = config.anchor_decay**back * value / total if total > 0 and value > 0 else 0.0
        if anchor == item:
            share += config.reminder_weight * config.anchor_decay**back
        if share > 0:
            support[anchor] = support.get(anchor, 0.0) + share
    if len(recent) >= 2:
        total2 = sum(v for v in ctx.transitions2.values() if v > 0)
        value2 = ctx.transitions2.get(item, 0.0)
        if total2 > 0 and value2 > 0:
            share2 = config.second_order_weight * value2 / total2 / 2
            for anchor in recent[-2:]:
                support[anchor] = support.get(anchor, 0.0) + share2
    return support
