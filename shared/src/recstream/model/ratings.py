"""Implicit ratings: a user's time-decayed weighted events on an item, on 0..5.

``decayed_score`` is the sum of the event weights on the item, each halved
every ``rating_half_life_days`` since it happened (negative events lower it).
It maps to ``implicit = 5 * (1 - exp(-max(0, decayed_score) / rating_scale))``.
An explicit ``rating_submitted`` (the latest one) is blended in:
``rating = share * explicit + (1 - share) * implicit`` with
``share = explicit_rating_share``; without one, ``rating = implicit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.model.decay import value_at
from recstream.model.state import ItemStats


@dataclass(frozen=True, slots=True)
class ImplicitRating:
    item: str
    rating: float
    implicit_rating: float
    explicit_rating: int | None
    decayed_score: float
    events: int
    last_event_at: float


def implicit_rating(item: str, stats: ItemStats, now: float, config: CoreConfig) -> ImplicitRating:
    decayed = value_at(stats.score, stats.ref, now, config.rating_half_life_days * DAY)
    implicit = 5.0 * (1.0 - math.exp(-max(0.0, decayed) / config.rating_scale))
    if stats.explicit is None:
        rating = implicit
    else:
        share = config.explicit_rating_share
        rating = share * stats.explicit + (1.0 - share) * implicit
    return ImplicitRating(
        item=item,
        rating=rating,
        implicit_rating=implicit,
        explicit_rating=stats.explicit,
        decayed_score=decayed,
        events=stats.events,
        last_event_at=stats.last_at,
    )
