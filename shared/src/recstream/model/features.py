"""The 22 behavioural features of a user, computed from the state at any ``now``.

Conversion funnel (products and groups together):

- *view*: ``product_view`` or ``group_view``;
- *click* (intent to buy): ``add_to_cart`` or ``group_join_click``;
- *join* (commitment): ``cart_checkout`` or ``group_join_complete``;
- *purchase*: ``purchase_completed``.

Each rate is ``min(1, next stage / this stage)``, 0 when the stage is empty;
``overall_conversion_rate`` is purchases / views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from recstream.contract.events import EventType
from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.model.decay import value_at
from recstream.model.state import UserState

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

VIEW_TYPES = (EventType.PRODUCT_VIEW, EventType.GROUP_VIEW)
CLICK_TYPES = (EventType.ADD_TO_CART, EventType.GROUP_JOIN_CLICK)
JOIN_TYPES = (EventType.CART_CHECKOUT, EventType.GROUP_JOIN_COMPLETE)
PURCHASE_TYPES = (EventType.PURCHASE_COMPLETED,)


@dataclass(frozen=True, slots=True)
class UserFeatures:
    # activity
    total_events: int
    unique_products: int
    unique_groups: int
    events_per_day: float
    # engagement
    purchases: int
    cart_adds: int
    product_views: int
    group_views: int
    group_joins: int
    searches: int
    # conversion funnel
    view_to_click_rate: float
    click_to_join_rate: float
    join_to_purchase_rate: float
    overall_conversion_rate: float
    # temporal
    peak_activity_hour: int | None
    peak_activity_day: str | None
    is_weekend_shopper: bool
    # category
    category_diversity: float
    categories_explored: int
    # recency
    days_since_last_event: float | None
    recency_score: float
    # summary
    engagement_score: float


def _rate(numerator: int, denominator: int) -> float:
    return min(1.0, numerator / denominator) if denominator else 0.0


def _argmax(values: list[int]) -> int | None:
    best = max(values, default=0)
    return values.index(best) if best > 0 else None


def category_diversity(categories: dict[str, int]) -> float:
    """Normalised Shannon entropy of the category counts, in [0, 1]."""
    total = sum(categories.values())
    if total == 0 or len(categories) < 2:
        return 0.0
    entropy = -sum((n / total) * math.log(n / total) for n in categories.values() if n)
    return entropy / math.log(len(categories))


def compute_features(state: UserState, now: float, config: CoreConfig) -> UserFeatures:
    counts = state.counts

    def count(*types: EventType) -> int:
        return sum(counts.get(t, 0) for t in types)

    views, clicks = count(*VIEW_TYPES), count(*CLICK_TYPES)
    joins, purchases = count(*JOIN_TYPES), count(*PURCHASE_TYPES)
    if state.last_at is None or state.first_at is None:
        days_since = None
        recency = 0.0
        per_day = 0.0
    else:
        days_since = max(0.0, (now - state.last_at) / DAY)
        recency = math.pow(2.0, -days_since / config.recency_half_life_days)
        per_day = state.total_events / max(1.0, (max(now, state.last_at) - state.first_at) / DAY)
    weekend = state.weekdays[5] + state.weekdays[6]
    total_days = sum(state.weekdays)
    peak_day = _argmax(state.weekdays)
    activity = value_at(*state.activity, now, config.activity_half_life_days * DAY)
    # Saturating in recent weighted activity: one purchase a week ~ 0.4, daily buying ~ 1.
    engagement = 1.0 - math.exp(-activity / 25.0)
    return UserFeatures(
        total_events=state.total_events,
        unique_products=state.unique_products,
        unique_groups=state.unique_groups,
        events_per_day=per_day,
        purchases=purchases,
        cart_adds=count(EventType.ADD_TO_CART),
        product_views=count(EventType.PRODUCT_VIEW),
        group_views=count(EventType.GROUP_VIEW),
        group_joins=count(EventType.GROUP_JOIN_COMPLETE),
        searches=count(EventType.PRODUCT_SEARCH),
        view_to_click_rate=_rate(clicks, views),
        click_to_join_rate=_rate(joins, clicks),
        join_to_purchase_rate=_rate(purchases, joins),
        overall_conversion_rate=_rate(purchases, views),
        peak_activity_hour=_argmax(state.hours),
        peak_activity_day=None if peak_day is None else WEEKDAYS[peak_day],
        is_weekend_shopper=bool(total_days)
        and weekend / total_days > config.weekend_share_threshold,
        category_diversity=category_diversity(state.categories),
        categories_explored=len(state.categories),
        days_since_last_event=days_since,
        recency_score=recency,
        engagement_score=min(1.0, max(0.0, engagement)),
    )


def timestamp(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)
