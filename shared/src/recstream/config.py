"""Tunable parameters of the core model, shared by every service.

A plain frozen pydantic model: each service embeds it in its own settings
(``RECSTREAM_CORE__RATING_HALF_LIFE_DAYS=...``) and passes it down explicitly.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from recstream.events import DEFAULT_WEIGHTS, EventType


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

    def weight(self, event_type: EventType) -> float:
        return self.weights.get(event_type, DEFAULT_WEIGHTS[event_type])
