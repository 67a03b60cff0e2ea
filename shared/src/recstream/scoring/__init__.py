"""Recommendation scoring: pure functions over a
:class:`recstream.readmodel.context.RecommendationContext`.

Components (each in its own module): ``content`` (category, price, engagement,
recency), ``sequential`` (first- and second-order transitions from the last
items), ``session`` (vector session-kNN over neighbour sessions; intent in
``intent``) and ``popular`` (back-fill and cold start). ``blend`` combines the
normalised components with weights that mean what they say; ``filters``
applies the business rules before the top-K cut; ``groups`` lets group deals
inherit their product's appeal; ``explain`` says why.
"""

from recstream.scoring.blend import ScoringError
from recstream.scoring.config import BlendWeights, ContentFactors, ItemKind, ScoringConfig
from recstream.scoring.explain import explain
from recstream.scoring.intent import infer_intent
from recstream.scoring.models import (
    COMPONENTS,
    Component,
    Explanation,
    Intent,
    IntentKind,
    RecommendationRequest,
    Recommendations,
    ScoredItem,
    Source,
    TriggerEvent,
)
from recstream.scoring.recommender import next_items, rank, recommend

__all__ = [
    "COMPONENTS",
    "BlendWeights",
    "Component",
    "ContentFactors",
    "Explanation",
    "Intent",
    "IntentKind",
    "ItemKind",
    "RecommendationRequest",
    "Recommendations",
    "ScoredItem",
    "ScoringConfig",
    "ScoringError",
    "Source",
    "TriggerEvent",
    "explain",
    "infer_intent",
    "next_items",
    "rank",
    "recommend",
]
