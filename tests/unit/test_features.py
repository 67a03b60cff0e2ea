from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recstream.contract.events import EventType
from recstream.model.config import CoreConfig
from recstream.model.features import category_diversity, compute_features
from recstream.model.fold import fold_user
from recstream.model.state import UserState

from .eventgen import make_event
from .test_fold import positioned

CONFIG = CoreConfig()


def features_of(events: list[dict[str, object]], now: datetime) -> object:
    state = fold_user(UserState("u1"), positioned(events), CONFIG).state  # type: ignore[arg-type]
    return compute_features(state, now.timestamp(), CONFIG)


def test_an_empty_user_has_zero_features() -> None:
    features = compute_features(UserState("u1"), 0.0, CONFIG)
    assert features.total_events == 0
    assert features.peak_activity_hour is None
    assert features.days_since_last_event is None
    assert features.engagement_score == 0.0


def test_funnel_rates_follow_the_documented_stages() -> None:
    events = [
        make_event("v1", EventType.PRODUCT_VIEW),
        make_event("v2", EventType.PRODUCT_VIEW, product_id="p2"),
        make_event("v3", EventType.GROUP_VIEW),
        make_event("v4", EventType.GROUP_VIEW, group_id="g2"),
        make_event("c1", EventType.ADD_TO_CART),
        make_event("c2", EventType.GROUP_JOIN_CLICK),
        make_event("j1", EventType.GROUP_JOIN_COMPLETE),
        make_event("p1", EventType.PURCHASE_COMPLETED),
    ]
    f = features_of(events, datetime(2026, 11, 1, 12, tzinfo=UTC))
    assert f.view_to_click_rate == pytest.approx(2 / 4)  # type: ignore[attr-defined]
    assert f.click_to_join_rate == pytest.approx(1 / 2)  # type: ignore[attr-defined]
    assert f.join_to_purchase_rate == pytest.approx(1.0)  # type: ignore[attr-defined]
    assert f.overall_conversion_rate == pytest.approx(1 / 4)  # type: ignore[attr-defined]
    assert (f.unique_products, f.unique_groups) == (2, 2)  # type: ignore[attr-defined]
    assert f.group_joins == 1  # type: ignore[attr-defined]


def test_temporal_features_use_event_time() -> None:
    # 2026-11-07 is a Saturday; events at 20:00 UTC
    events = [
        make_event(f"e{i}", EventType.PAGE_VIEW, occurred_at=f"2026-11-07T20:0{i}:00Z")
        for i in range(3)
    ] + [make_event("e9", EventType.PAGE_VIEW, occurred_at="2026-11-03T08:00:00Z")]
    f = features_of(events, datetime(2026, 11, 10, tzinfo=UTC))
    assert f.peak_activity_hour == 20  # type: ignore[attr-defined]
    assert f.peak_activity_day == "saturday"  # type: ignore[attr-defined]
    assert f.is_weekend_shopper is True  # type: ignore[attr-defined]


def test_recency_halves_every_half_life() -> None:
    events = [make_event("e1", EventType.PAGE_VIEW, occurred_at="2026-11-01T00:00:00Z")]
    f = features_of(events, datetime(2026, 11, 8, tzinfo=UTC))
    assert f.days_since_last_event == pytest.approx(7.0)  # type: ignore[attr-defined]
    assert f.recency_score == pytest.approx(0.5)  # type: ignore[attr-defined]


def test_category_diversity_is_normalised_entropy() -> None:
    assert category_diversity({}) == 0.0
    assert category_diversity({"a": 5}) == 0.0
    assert category_diversity({"a": 3, "b": 3}) == pytest.approx(1.0)
    assert 0 < category_diversity({"a": 9, "b": 1}) < 1


def test_engagement_grows_with_activity_and_stays_in_range() -> None:
    light = features_of([make_event("e1", EventType.PAGE_VIEW)], datetime(2026, 11, 1, tzinfo=UTC))
    heavy = features_of(
        [make_event(f"e{i}", EventType.PURCHASE_COMPLETED) for i in range(30)],
        datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert 0 < light.engagement_score < heavy.engagement_score <= 1  # type: ignore[attr-defined]
