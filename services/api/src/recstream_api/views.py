"""Read models: the core's values at ``now`` turned into API responses.

Pure functions: the stored state (or None for a user without events), the
time and the config in, a response model out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from recstream.contract.items import group_key, product_key
from recstream.model.config import CoreConfig
from recstream.model.features import compute_features, timestamp
from recstream.model.ratings import ImplicitRating, implicit_rating
from recstream.model.state import UserState, Watermark
from recstream_api.exceptions import InvalidRequestError
from recstream_api.identifiers import checked_id
from recstream_api.schemas import (
    BehavioralFeatures,
    BehavioralProfileResponse,
    ImplicitRatingResponse,
    RatingConfigUsed,
    WatermarkPosition,
)


def watermark_position(watermark: Watermark | None) -> WatermarkPosition | None:
    if watermark is None:
        return None
    return WatermarkPosition(partition=watermark.partition, offset=watermark.offset)


def profile_view(
    user_id: str, state: UserState | None, now: datetime, config: CoreConfig
) -> BehavioralProfileResponse:
    source = "cold_start" if state is None else "stream"
    current = state if state is not None else UserState(user_id=user_id)
    features = compute_features(current, now.timestamp(), config)
    return BehavioralProfileResponse(
        user_id=user_id,
        source=source,
        computed_at=now,
        watermark=watermark_position(current.watermark),
        features=BehavioralFeatures.model_validate(features, from_attributes=True),
    )


@dataclass(frozen=True, slots=True)
class ItemRef:
    """The item of a rating query and its key in the user state (``p:<id>`` or ``g:<id>``)."""

    product_id: str | None
    group_id: str | None
    key: str


def item_ref(product_id: str | None, group_id: str | None) -> ItemRef:
    """Exactly one of the two ids must be given."""
    product_id = checked_id(product_id, "product_id")
    group_id = checked_id(group_id, "group_id")
    if product_id is not None and group_id is None:
        return ItemRef(product_id, None, product_key(product_id))
    if group_id is not None and product_id is None:
        return ItemRef(None, group_id, group_key(group_id))
    raise InvalidRequestError("give exactly one of product_id or group_id")


def rating_view(
    user_id: str, state: UserState | None, item: ItemRef, now: datetime, config: CoreConfig
) -> ImplicitRatingResponse:
    key = item.key
    stats = state.items.get(key) if state is not None else None
    if stats is None:
        value = ImplicitRating(key, 0.0, 0.0, None, 0.0, 0, 0.0)
        source = "cold_start" if state is None else "no_interactions"
    else:
        value = implicit_rating(key, stats, now.timestamp(), config)
        source = "stream"
    return ImplicitRatingResponse(
        user_id=user_id,
        product_id=item.product_id,
        group_id=item.group_id,
        source=source,
        rating=value.rating,
        implicit_rating=value.implicit_rating,
        explicit_rating=value.explicit_rating,
        decayed_score=value.decayed_score,
        events=value.events,
        last_event_at=timestamp(value.last_event_at) if stats is not None else None,
        computed_at=now,
        watermark=watermark_position(state.watermark if state is not None else None),
        config=RatingConfigUsed(
            half_life_days=config.rating_half_life_days,
            rating_scale=config.rating_scale,
            explicit_rating_share=config.explicit_rating_share,
        ),
    )
