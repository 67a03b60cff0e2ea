"""Builders of hand-made user states and recommendation contexts for the scoring tests."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from recstream.contract.catalog import CatalogItem
from recstream.contract.events import EventType
from recstream.model.config import CoreConfig
from recstream.model.state import HistoryEntry, ItemStats, PriceStats, SessionState, UserState
from recstream.readmodel.context import NeighbourSession, RecommendationContext

CORE = CoreConfig()
NOW = 1_800_000_000.0
DAY = 86_400.0


def entry(
    event_id: str,
    event_type: str,
    at: float,
    item: str | None,
    category: str | None = None,
) -> HistoryEntry:
    return HistoryEntry(event_id, event_type, at, item, category, "s1", 0)


def user(
    history: Sequence[HistoryEntry] = (),
    *,
    category_prefs: Mapping[str, tuple[float, float]] | None = None,
    prices: PriceStats | None = None,
    session: SessionState | None = None,
) -> UserState:
    """A user state whose item scores, counts and categories follow ``history``."""
    state = UserState("u1")
    for e in history:
        weight = CORE.weight(EventType(e.event_type))
        state.total_events += 1
        state.first_at = e.at if state.first_at is None else min(state.first_at, e.at)
        state.last_at = e.at if state.last_at is None else max(state.last_at, e.at)
        state.counts[e.event_type] = state.counts.get(e.event_type, 0) + 1
        if e.category is not None:
            state.categories[e.category] = state.categories.get(e.category, 0) + 1
        if e.item is not None:
            stats = state.items.setdefault(e.item, ItemStats(0.0, e.at, 0, e.at))
            stats.score += weight
            stats.events += 1
            stats.last_at = max(stats.last_at, e.at)
    state.history = sorted(history, key=lambda e: e.at)
    state.category_prefs = dict(category_prefs or {})
    state.prices = prices or PriceStats()
    state.session = session
    return state


def session_of(
    items: Sequence[str],
    *,
    counts: Mapping[str, int] | None = None,
    categories: Mapping[str, int] | None = None,
    started_at: float = NOW - 300,
    last_at: float = NOW - 10,
) -> SessionState:
    counts = dict(counts) if counts is not None else {"product_view": len(items)}
    return SessionState(
        "s1",
        started_at,
        last_at,
        list(items),
        dict(categories or {}),
        counts,
        sum(counts.values()),
    )


def prices_of(values: Sequence[float], bought: Sequence[float] = ()) -> PriceStats:
    logs = [math.log(v) for v in values]
    mean = sum(logs) / len(logs) if logs else 0.0
    m2 = sum((x - mean) ** 2 for x in logs)
    bought_logs = [math.log(v) for v in bought]
    bought_mean = sum(bought_logs) / len(bought_logs) if bought_logs else 0.0
    return PriceStats(len(logs), mean, m2, len(bought_logs), bought_mean)


def product(item: str, **kwargs: Any) -> CatalogItem:
    return CatalogItem(item=item, kind="product", **kwargs)


def group(item: str, product_id: str, **kwargs: Any) -> CatalogItem:
    return CatalogItem(item=item, kind="group", product_id=product_id, **kwargs)


def neighbour(key: str, items: Sequence[str], last_at: float = NOW - DAY) -> NeighbourSession:
    return NeighbourSession(key, tuple(items), last_at)


def context(
    state: UserState | None = None,
    *,
    anchors: Sequence[str] | None = None,
    transitions: Mapping[str, Mapping[str, float]] | None = None,
    transitions2: Mapping[str, float] | None = None,
    neighbours: Sequence[NeighbourSession] = (),
    popular: Mapping[str, float] | None = None,
    popular_in_category: Mapping[str, Mapping[str, float]] | None = None,
    catalog: Sequence[CatalogItem] = (),
    item_categories: Mapping[str, str] | None = None,
    now: float = NOW,
) -> RecommendationContext:
    state = state if state is not None else UserState("u1")
    session = state.session
    if anchors is None:
        anchors = session.items[-5:] if session is not None else ()
    return RecommendationContext(
        user_id=state.user_id,
        now=now,
        state=state,
        session=session,
        anchors=tuple(anchors),
        transitions=dict(transitions or {}),
        transitions2=dict(transitions2 or {}),
        neighbours=tuple(neighbours),
        popular=dict(popular or {}),
        popular_in_category=dict(popular_in_category or {}),
        catalog={c.item: c for c in catalog},
        item_categories=dict(item_categories or {}),
    )
