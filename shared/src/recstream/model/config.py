"""Tunable parameters of the core model, shared by every service.

A plain frozen pydantic model: each service embeds it in its own settings
(``RECSTREAM_CORE__RATING_HALF_LIFE_DAYS=...``) and passes it down explicitly.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from recstream.contract.events import DEFAULT_WEIGHTS, EventType


class CoreConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: dict[EventType, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    rating_half_life_days: float = Field(14.0, gt=0)
    rating_scale: float = Field(10.0, gt=0, description="decayed score that maps to 5*(1-1/e)")
    explicit_rating_share: float = Field(0.7, ge=0, le=1)
    activity_half_life_days: float = Field(7.0, gt=0)
    recency_half_life_days: float = Field(7.0, gt=0)
    history_cap: int = Field(100, ge=1, le=10_000)
    items_cap: int = Field(500, ge=1, le=100_000)
    categories_cap: int = Field(100, ge=1, le=10_000)
    dedupe_window_seconds: float = Field(3600.0, ge=0)
    dedupe_cap: int = Field(1000, ge=0, le=100_000)
    future_tolerance_seconds: float = Field(300.0, ge=0)
    weekend_share_threshold: float = Field(0.4, ge=0, le=1)
    # sessions
    session_gap_minutes: float = Field(30.0, gt=0)
    session_items_cap: int = Field(50, ge=2, le=1_000)
    # learned statistics (shared by all users)
    sequence_window: int = Field(
        5, ge=1, le=50, description="earlier session items a new one follows"
    )
    transitions_top_k: int = Field(50, ge=1, le=10_000)
    covisit_window: int = Field(
        3, ge=0, le=50, description="earlier session items a new one is co-visited with"
    )
    covisit_top_k: int = Field(50, ge=1, le=10_000)
    cross_session_items: int = Field(
        5, ge=0, le=100, description="items of the user's earlier sessions a new one is paired with"
    )
    co_engagement_top_k: int = Field(50, ge=1, le=10_000)
    sessions_per_item: int = Field(100, ge=1, le=10_000)
    session_ttl_days: float = Field(30.0, gt=0)
    statistic_ttl_days: float = Field(90.0, gt=0, description="an item's statistics expire unused")
    transition_half_life_days: float = Field(30.0, gt=0)
    popularity_half_life_days: float = Field(3.0, gt=0)
    popularity_top_k: int = Field(1_000, ge=10, le=100_000)
    # attribution of what users do to the recommendations they were shown
    attribution_window_minutes: float = Field(
        60.0,
        gt=0,
        le=7 * 24 * 60,
        description="an event is attributed to a list shown at most this long before it",
    )
    attribution_fallback: bool = Field(
        True,
        description="attribute an event without a recommendation_id to the latest list that "
        "showed its item within the window (false: only events that name their list)",
    )
    shown_cap: int = Field(
        20, ge=0, le=1_000, description="lists of recommendations kept per user for attribution"
    )
    decay_landmark: float = Field(
        1_767_225_600.0,
        description="epoch seconds (2026-01-01) that forward-decayed scores are relative to; "
        "scores are kept in log space, so any event time is represented",
    )

    def weight(self, event_type: EventType) -> float:
        return self.weights.get(event_type, DEFAULT_WEIGHTS[event_type])
