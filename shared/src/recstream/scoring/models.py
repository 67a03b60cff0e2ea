"""Values that go into and come out of scoring: plain frozen dataclasses.

API request/response models live in the API service and map to these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from recstream.scoring.config import ItemKind

Component = Literal["content", "sequential", "session"]
COMPONENTS: tuple[Component, ...] = ("content", "sequential", "session")
Source = Literal["content", "sequential", "session", "popular", "cold_start"]
IntentKind = Literal[
    "transactional", "research", "browsing", "deal_seeking", "group_seeking", "unknown"
]


@dataclass(frozen=True, slots=True)
class Intent:
    """What the current session seems to be about, how sure we are, and from what."""

    kind: IntentKind
    confidence: float  # 0..1
    scores: Mapping[str, float] = field(default_factory=dict)  # each intent's share
    signals: Mapping[str, float] = field(default_factory=dict)  # the inputs used


@dataclass(frozen=True, slots=True)
class RecommendationRequest:
    limit: int = 10
    kind: ItemKind | None = None  # None: the configured default
    include_categories: frozenset[str] | None = None
    exclude_categories: frozenset[str] = frozenset()
    exclude_items: frozenset[str] = frozenset()
    # the items on screen (the page's product or group, others it shows): never returned
    current_items: frozenset[str] = frozenset()
    # items already seen in the current session may come back ("continue browsing"), marked
    include_seen: bool = False
    exclude_purchased: bool | None = None  # None: the configured default
    exclude_in_cart: bool | None = None  # None: the configured default
    max_per_category: int | None = None  # None: the configured default
    weights: Mapping[str, float] | None = None  # component -> weight; replaces the config's


@dataclass(frozen=True, slots=True)
class ScoredItem:
    item: str
    score: float
    # component -> weighted contribution to ``score`` (they add up to it), or
    # ``popular`` -> the back-fill score
    components: Mapping[str, float]
    source: Source
    # learned ranking: the features that raised the item's score most, with their
    # contributions (LightGBM's pred_contrib); empty for the blend
    reasons: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Recommendations:
    user_id: str
    items: tuple[ScoredItem, ...]
    intent: Intent
    weights: Mapping[str, float]  # the effective weights after re-normalisation and shift
    source: Source  # the dominant source; ``cold_start`` for a user without any history
    cold_start: bool
    # the items of the current session (those in ``items`` come back only on request)
    session_items: frozenset[str] = frozenset()
    ranker: str = "blend"  # the learned model's version that ranked, or "blend"


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """One of the user's own events that led to a recommendation."""

    event_id: str
    event_type: str
    at: float
    item: str | None
    components: tuple[str, ...]  # the components it fed, the largest contribution first

    @property
    def component(self) -> str:
        """The component it fed most."""
        return self.components[0] if self.components else ""


@dataclass(frozen=True, slots=True)
class Explanation:
    item: str
    recommended: bool  # would be in the top ``request.limit`` now
    rank: int | None  # 1-based rank among all ranked items after the filters, if ranked
    score: float
    components: Mapping[str, float]
    source: Source | None
    intent: Intent
    filtered_by: str | None  # the business filter that removes the item, if any
    triggers: tuple[TriggerEvent, ...]
    reason: str
    ranker: str = "blend"  # the learned model's version that ranked, or "blend"
    # learned ranking: the features that raised the item's score most, with their
    # contributions (LightGBM's pred_contrib); empty for the blend or an unscored item
    features: tuple[tuple[str, float], ...] = ()
