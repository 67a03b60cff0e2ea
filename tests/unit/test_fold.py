from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recstream.contract.events import EventType, decode_event
from recstream.contract.keyspace import Stat
from recstream.model.config import CoreConfig
from recstream.model.features import compute_features
from recstream.model.fold import PositionedEvent, fold_history, fold_user
from recstream.model.ratings import implicit_rating
from recstream.model.state import UserState, Watermark
from recstream.model.statistics import StatDelta

from .eventgen import ATTRIBUTION_TYPES, BASE, event_logs, make_event

CONFIG = CoreConfig()
NOW = datetime(2026, 12, 15, tzinfo=UTC).timestamp()
RECEIVED = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def positioned(events: list[dict[str, Any]], partition: int = 0) -> list[PositionedEvent]:
    return [
        PositionedEvent(decode_event(json.dumps(e).encode()), partition, offset, RECEIVED)
        for offset, e in enumerate(events)
    ]


def by_user(log: list[PositionedEvent]) -> dict[str, list[PositionedEvent]]:
    users: dict[str, list[PositionedEvent]] = {}
    for p in log:
        users.setdefault(p.event.user_id, []).append(p)
    return users


@given(event_logs())
@settings(max_examples=60, deadline=None)
def test_applying_a_batch_twice_equals_applying_it_once(events: list[dict[str, Any]]) -> None:
    for user_id, log in by_user(positioned(events)).items():
        once = fold_user(UserState(user_id), log, CONFIG)
        twice = fold_user(once.state, log, CONFIG)
        assert twice.state == once.state
        assert twice.applied == 0
        assert twice.skipped == len(log)


@given(event_logs(), st.data())
@settings(max_examples=60, deadline=None)
def test_applying_in_chunks_equals_applying_whole(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    for user_id, log in by_user(positioned(events)).items():
        whole = fold_user(UserState(user_id), log, CONFIG).state
        cuts = sorted(data.draw(st.lists(st.integers(0, len(log)), max_size=4)))
        state = UserState(user_id)
        start = 0
        for cut in [*cuts, len(log)]:
            state = fold_user(state, log[start:cut], CONFIG).state
            start = max(start, cut)
        assert state == whole


def outcome_totals(deltas: list[StatDelta]) -> Counter[tuple[str, str]]:
    """The attribution counters' increments, by (variant subject, counter)."""
    totals: Counter[tuple[str, str]] = Counter()
    for d in deltas:
        if d.kind == Stat.OUTCOMES:
            totals[(d.key, d.member)] += int(d.value)
    return totals


@given(event_logs(span_minutes=120, types=ATTRIBUTION_TYPES), st.data())
@settings(max_examples=80, deadline=None)
def test_the_outcome_counts_do_not_depend_on_batch_boundaries(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Two hours of lists shown and events that follow (some naming a list, some before
    their list arrives): cut into any batches, the counters get the same increments."""
    for user_id, log in by_user(positioned(events)).items():
        whole = fold_user(UserState(user_id), log, CONFIG)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(log)), max_size=4)))
        state, deltas, start = UserState(user_id), [], 0
        for cut in [*cuts, len(log)]:
            outcome = fold_user(state, log[start:cut], CONFIG)
            state, deltas = outcome.state, deltas + outcome.deltas
            start = max(start, cut)
        assert outcome_totals(deltas) == outcome_totals(whole.deltas)
        assert state == whole.state


@given(event_logs())
@settings(max_examples=60, deadline=None)
def test_incremental_features_equal_features_recomputed_from_history(
    events: list[dict[str, Any]],
) -> None:
    for user_id, log in by_user(positioned(events)).items():
        incremental = UserState(user_id)
        for one in log:
            incremental = fold_user(incremental, [one], CONFIG).state
        recomputed = fold_history(user_id, log, CONFIG)
        assert compute_features(incremental, NOW, CONFIG) == compute_features(
            recomputed, NOW, CONFIG
        )


def test_redelivery_from_an_older_offset_applies_only_the_new_events() -> None:
    log = positioned([make_event(f"e{i}", EventType.PRODUCT_VIEW, minutes=i) for i in range(10)])
    first = fold_user(UserState("u1"), log[:6], CONFIG)
    again = fold_user(first.state, log[3:], CONFIG)
    assert (again.applied, again.skipped) == (4, 3)
    assert again.state.total_events == 10
    assert again.state.watermark == Watermark(0, 9)


def test_a_producer_duplicate_counts_once_inside_the_window() -> None:
    event = make_event("e1", EventType.ADD_TO_CART)
    outcome = fold_user(UserState("u1"), positioned([event, event]), CONFIG)
    assert (outcome.applied, outcome.duplicates) == (1, 1)
    assert outcome.state.counts == {"add_to_cart": 1}
    assert outcome.state.watermark == Watermark(0, 1)


def test_a_duplicate_outside_the_window_counts_again() -> None:
    event = decode_event(json.dumps(make_event("e1", EventType.ADD_TO_CART)).encode())
    config = CoreConfig(dedupe_window_seconds=60)
    early = PositionedEvent(event, 0, 0, RECEIVED)
    late = PositionedEvent(event, 0, 1, RECEIVED + 61)
    state = fold_user(UserState("u1"), [early], config).state
    outcome = fold_user(state, [late], config)
    assert outcome.applied == 1
    assert outcome.state.counts == {"add_to_cart": 2}


def test_folding_does_not_change_the_input_state() -> None:
    log = positioned([make_event("e1", EventType.PURCHASE_COMPLETED, category="shoes")])
    before = UserState("u1")
    snapshot = before.copy()
    fold_user(before, log, CONFIG)
    assert before == snapshot


def test_history_is_kept_in_event_time_order_and_capped() -> None:
    config = CoreConfig(history_cap=3)
    minutes = [5, 1, 9, 3, 7]
    log = positioned(
        [make_event(f"e{i}", EventType.PAGE_VIEW, minutes=m) for i, m in enumerate(minutes)]
    )
    state = fold_user(UserState("u1"), log, config).state
    assert [e.event_id for e in state.history] == ["e0", "e4", "e2"]
    assert state.total_events == 5


def test_items_are_capped_keeping_the_strongest() -> None:
    config = CoreConfig(items_cap=2)
    log = positioned(
        [
            make_event("e1", EventType.PRODUCT_VIEW, product_id="weak"),
            make_event("e2", EventType.PURCHASE_COMPLETED, product_id="strong"),
            make_event("e3", EventType.ADD_TO_CART, product_id="middle"),
        ]
    )
    state = fold_user(UserState("u1"), log, config).state
    assert set(state.items) == {"p:strong", "p:middle"}


def test_implicit_rating_decays_with_the_half_life_and_blends_explicit_ratings() -> None:
    log = positioned(
        [
            make_event("e1", EventType.PURCHASE_COMPLETED),
            make_event("e2", EventType.RATING_SUBMITTED, rating=2),
        ]
    )
    state = fold_user(UserState("u1"), log, CONFIG).state
    at = BASE.timestamp()
    fresh = implicit_rating("p:p1", state.items["p:p1"], at, CONFIG)
    later = implicit_rating("p:p1", state.items["p:p1"], at + 14 * 86_400, CONFIG)
    assert fresh.decayed_score == pytest.approx(14.0)
    assert later.decayed_score == pytest.approx(7.0)
    assert fresh.explicit_rating == 2
    assert fresh.rating == pytest.approx(0.7 * 2 + 0.3 * fresh.implicit_rating)
    assert 0 < later.implicit_rating < fresh.implicit_rating < 5


def test_negative_events_lower_the_rating_to_no_less_than_zero() -> None:
    log = positioned(
        [
            make_event("e1", EventType.WISHLIST_ADD),
            make_event("e2", EventType.CART_REMOVE),
            make_event("e3", EventType.WISHLIST_REMOVE),
        ]
    )
    state = fold_user(UserState("u1"), log, CONFIG).state
    rating = implicit_rating("p:p1", state.items["p:p1"], BASE.timestamp(), CONFIG)
    assert rating.decayed_score == pytest.approx(0.0)
    assert rating.rating == 0.0


def test_state_survives_its_stored_form() -> None:
    log = positioned(
        [
            make_event("e1", EventType.GROUP_JOIN_COMPLETE, category="toys"),
            make_event("e2", EventType.RATING_SUBMITTED, minutes=3, rating=5),
        ]
    )
    state = fold_user(UserState("u1"), log, CONFIG).state
    assert UserState.from_json("u1", state.to_json(), state.watermark) == state


def test_the_stored_form_is_compressed_json_and_plain_json_is_still_read() -> None:
    log = positioned(
        [
            make_event(f"e{i}", EventType.PRODUCT_VIEW, minutes=i, product_id=f"p{i % 3}")
            for i in range(20)
        ]
    )
    state = fold_user(UserState("u1"), log, CONFIG).state
    stored = state.to_stored()
    assert len(stored) < len(state.to_json()) / 2
    assert UserState.from_stored("u1", stored, state.watermark) == state
    assert UserState.from_stored("u1", state.to_json(), state.watermark) == state
