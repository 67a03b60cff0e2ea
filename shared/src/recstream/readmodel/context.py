"""The read model of one recommendation request: everything scoring needs, already loaded.

Stores (Redis for the API, memory for the offline evaluation) fill it; the
scoring functions in :mod:`recstream.scoring` read only from it, so they stay
pure and every path ranks the same way. All statistic weights are
forward-decayed (relative): scoring normalises them per component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from recstream.contract.catalog import CatalogItem
from recstream.model.state import SessionState, UserState


@dataclass(frozen=True, slots=True)
class NeighbourSession:
    """A recent session of any user that shares items with the current session."""

    key: str
    items: tuple[str, ...]  # in event order, oldest first
    last_at: float


@dataclass(frozen=True, slots=True)
class RecommendationContext:
    user_id: str
    now: float
    state: UserState
    # the current session, when the user's last event is within the session gap of ``now``
    session: SessionState | None
    # items the sequential component starts from, oldest first (the session's last items,
    # or the item the request names)
    anchors: tuple[str, ...]
    # first order: anchor item -> next item -> weight
    transitions: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # second order: next item -> weight after the last two anchors
    transitions2: Mapping[str, float] = field(default_factory=dict)
    neighbours: tuple[NeighbourSession, ...] = ()
    # co-visitation: anchor item -> item of the same sessions -> weight
    covisited: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # co-engagement: item of the user's earlier sessions (newest first) -> item -> weight
    co_engaged: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # item -> decayed popularity, global top list and per category
    popular: Mapping[str, float] = field(default_factory=dict)
    popular_in_category: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # catalog entries of candidate and history items (may be empty: no catalog)
    catalog: Mapping[str, CatalogItem] = field(default_factory=dict)
    # categories seen on events, for items the catalog does not know
    item_categories: Mapping[str, str] = field(default_factory=dict)
