"""Request and response models of the HTTP API, with OpenAPI examples.

These are API models (their names say their role); they are built from the
core's state and feature values but are not those values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_EXAMPLE_TIME = "2025-03-14T09:26:53.589793Z"


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable error name")
    message: str = Field(description="what went wrong, for a human")
    details: Any = Field(None, description="structured detail, e.g. one entry per bad event")
    request_id: str | None = Field(
        None, description="the request's X-Request-ID (also in the response header)"
    )


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    model_config = _examples(
        {
            "error": {
                "code": "invalid_events",
                "message": "1 of 2 events is invalid",
                "details": [
                    {
                        "index": 1,
                        "event_id": "e-2",
                        "errors": [{"loc": "product_view", "msg": "requires product_id"}],
                    }
                ],
                "request_id": "9f2c4e8a1b7d4c3e8f6a5b4c3d2e1f0a",
            }
        }
    )

    error: ErrorDetail


class ComponentHealth(BaseModel):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class RankerHealth(BaseModel):
    """The ranker this process serves. A model that does not load leaves the blend serving
    and is reported here; it does not make the API unavailable."""

    enabled: bool = Field(description="false: the blend always (RECSTREAM_RANKER__ENABLED)")
    active: str = Field(
        description="the learned model's version this process ranks with, or 'blend'"
    )
    error: str | None = Field(
        description="the last failure while it holds: a model that did not load, an active "
        "version that is not published, a registry that could not be read"
    )
    failed_version: str | None = Field(
        description="the active version that did not load (not retried until another is activated)"
    )
    checked_at: datetime | None = Field(description="the last read of the registry")


class HealthResponse(BaseModel):
    model_config = _examples(
        {
            "status": "ok",
            "version": "0.1.0",
            "redis": {"ok": True, "latency_ms": 0.4, "error": None},
            "broker": {"ok": True, "latency_ms": 1.2, "error": None},
            "ranker": {
                "enabled": True,
                "active": "2026-03-01-a",
                "error": None,
                "failed_version": None,
                "checked_at": _EXAMPLE_TIME,
            },
        }
    )

    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="/health: 'unavailable' (503) when Redis or the broker is down. /ready: "
        "'unavailable' (503) only when Redis is down, 'degraded' (200) when the broker is: "
        "reads serve, tracking answers 503. The ranker does not count: the blend serves "
        "without a model"
    )
    version: str
    redis: ComponentHealth
    broker: ComponentHealth
    ranker: RankerHealth


class TrackedEvent(BaseModel):
    event_id: str
    partition: int
    offset: int


class EventProblem(BaseModel):
    loc: str
    msg: str
    type: str


class RejectedEvent(BaseModel):
    """A bad event of a batch: its position in the batch, its id if it had one, why."""

    index: int
    event_id: str | None = None
    errors: list[EventProblem]


class TrackAccepted(BaseModel):
    """Events acknowledged by the broker; the consumer applies them shortly after. The
    bad events of a batch are in ``rejected`` (nothing of theirs was published)."""

    model_config = _examples(
        {
            "accepted": 1,
            "event_ids": ["3f1c9a1e-6a53-4c41-9b7e-0c6f2f1d9b10"],
            "events": [
                {"event_id": "3f1c9a1e-6a53-4c41-9b7e-0c6f2f1d9b10", "partition": 7, "offset": 42}
            ],
            "rejected": [
                {
                    "index": 1,
                    "event_id": "9b2d0c4e-1f7a-4e2b-8c3d-5a6f7e8d9c0b",
                    "errors": [
                        {
                            "loc": "product_view.product_id",
                            "msg": "Field required",
                            "type": "missing",
                        }
                    ],
                }
            ],
        }
    )

    accepted: int
    event_ids: list[str]
    events: list[TrackedEvent]
    rejected: list[RejectedEvent] = Field(default_factory=list)


class WatermarkPosition(BaseModel):
    """The last log record (partition, offset) the user's state reflects."""

    partition: int
    offset: int


class BehavioralFeatures(BaseModel):
    total_events: int
    unique_products: int
    unique_groups: int
    events_per_day: float
    purchases: int
    cart_adds: int
    product_views: int
    group_views: int
    group_joins: int
    searches: int
    view_to_click_rate: float = Field(description="(add_to_cart + group_join_click) / views")
    click_to_join_rate: float = Field(description="(cart_checkout + group_join_complete) / clicks")
    join_to_purchase_rate: float = Field(description="purchases / joins")
    overall_conversion_rate: float = Field(description="purchases / views")
    peak_activity_hour: int | None = Field(description="UTC hour 0..23, null without events")
    peak_activity_day: str | None
    is_weekend_shopper: bool
    category_diversity: float = Field(description="normalised entropy of categories, 0..1")
    categories_explored: int
    days_since_last_event: float | None
    recency_score: float
    engagement_score: float = Field(ge=0, le=1)


_FEATURES_EXAMPLE: dict[str, Any] = {
    "total_events": 42,
    "unique_products": 17,
    "unique_groups": 3,
    "events_per_day": 6.0,
    "purchases": 2,
    "cart_adds": 4,
    "product_views": 25,
    "group_views": 5,
    "group_joins": 1,
    "searches": 3,
    "view_to_click_rate": 0.1667,
    "click_to_join_rate": 0.5,
    "join_to_purchase_rate": 0.6667,
    "overall_conversion_rate": 0.0667,
    "peak_activity_hour": 20,
    "peak_activity_day": "saturday",
    "is_weekend_shopper": True,
    "category_diversity": 0.81,
    "categories_explored": 5,
    "days_since_last_event": 0.02,
    "recency_score": 0.998,
    "engagement_score": 0.73,
}


class BehavioralProfileResponse(BaseModel):
    model_config = _examples(
        {
            "user_id": "u-123",
            "source": "stream",
            "computed_at": _EXAMPLE_TIME,
            "watermark": {"partition": 7, "offset": 1042},
            "features": _FEATURES_EXAMPLE,
        }
    )

    user_id: str
    source: Literal["stream", "cold_start"] = Field(
        description="'stream': from the user's applied events; 'cold_start': no events yet"
    )
    computed_at: datetime = Field(description="the time the time-dependent features are for")
    watermark: WatermarkPosition | None
    features: BehavioralFeatures


class RatingConfigUsed(BaseModel):
    half_life_days: float
    rating_scale: float
    explicit_rating_share: float


class ImplicitRatingResponse(BaseModel):
    model_config = _examples(
        {
            "user_id": "u-123",
            "product_id": "p-9",
            "group_id": None,
            "source": "stream",
            "rating": 3.12,
            "implicit_rating": 3.12,
            "explicit_rating": None,
            "decayed_score": 9.8,
            "events": 4,
            "last_event_at": _EXAMPLE_TIME,
            "computed_at": _EXAMPLE_TIME,
            "watermark": {"partition": 7, "offset": 1042},
            "config": {"half_life_days": 14.0, "rating_scale": 10.0, "explicit_rating_share": 0.7},
        }
    )

    user_id: str
    product_id: str | None
    group_id: str | None
    source: Literal["stream", "no_interactions", "cold_start"] = Field(
        description="'stream': from the user's events on the item; 'no_interactions': the "
        "user never touched the item (or it left the capped item list); 'cold_start': "
        "the user has no events"
    )
    rating: float = Field(ge=0, le=5, description="explicit and implicit blended, 0..5")
    implicit_rating: float = Field(ge=0, le=5)
    explicit_rating: int | None
    decayed_score: float
    events: int
    last_event_at: datetime | None
    computed_at: datetime
    watermark: WatermarkPosition | None
    config: RatingConfigUsed


_DESCRIPTIONS = {
    401: "Missing or invalid credentials",
    403: "The credentials do not allow this request",
    404: "The request names something that does not exist",
    409: "A concurrent writer kept changing the user's state; try again",
    413: "The request body is larger than the configured cap",
    422: "The request or an event is invalid",
    503: "A dependency (Redis or the broker) is unavailable",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses."""
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}


TRACK_EXAMPLES: dict[str, Any] = {
    "single": {
        "summary": "one event",
        "value": {
            "event_id": "3f1c9a1e-6a53-4c41-9b7e-0c6f2f1d9b10",
            "event_type": "product_view",
            "user_id": "u-123",
            "session_id": "s-77",
            "occurred_at": _EXAMPLE_TIME,
            "product_id": "p-9",
            "category": "kitchen",
            "price": 24.9,
        },
    },
    "batch": {
        "summary": "a batch of events",
        "value": {
            "events": [
                {
                    "event_id": "e-1",
                    "event_type": "group_join_click",
                    "user_id": "u-123",
                    "occurred_at": _EXAMPLE_TIME,
                    "group_id": "g-5",
                },
                {
                    "event_id": "e-2",
                    "event_type": "product_search",
                    "user_id": "u-123",
                    "occurred_at": _EXAMPLE_TIME,
                    "query": "rice cooker",
                },
            ]
        },
    },
}
