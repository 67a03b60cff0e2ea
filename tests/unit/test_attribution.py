"""Attribution of events to the recommendations shown (model/attribution.py), through the
fold and a batch into the memory store: per-variant counters, exactly once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from recstream.apply.batch import RawRecord, apply_batch
from recstream.apply.operations import recompute_state
from recstream.contract.events import EventType, validate_event
from recstream.contract.keyspace import Stat
from recstream.model.attribution import daily
from recstream.model.config import CoreConfig
from recstream.model.fold import PositionedEvent, fold_history, fold_user
from recstream.model.state import UserState
from recstream.store.memory import MemoryStore

from .eventgen import BASE, make_event, shown_items

CONFIG = CoreConfig()
DAY = BASE.date().isoformat()
RECEIVED_MS = int((BASE + timedelta(days=1)).timestamp() * 1000)


def shown(
    event_id: str, items: list[str], *, variant: str = "blend", minutes: float = 0, **fields: Any
) -> dict[str, Any]:
    return make_event(
        event_id,
        EventType.RECOMMENDATION_SHOWN,
        minutes=minutes,
        recommendation_id=f"r-{event_id}",
        variant=variant,
        items=shown_items(*items),
        **fields,
    )


def counters(store: MemoryStore, subject: str) -> dict[str, int]:
    key = store.keyspace.stat(Stat.OUTCOMES, subject)
    return {name: int(n) for name, n in store.hashes.get(key, {}).items()}


async def apply(store: MemoryStore, events: list[dict[str, Any]], first: int = 0) -> None:
    records = [
        RawRecord("interactions", 0, first + i, RECEIVED_MS, b"u1", json.dumps(e).encode())
        for i, e in enumerate(events)
    ]
    report = await apply_batch(store, records, CONFIG)
    assert not report.dead_letters, report.dead_letters


async def test_a_click_on_a_shown_item_counts_for_its_variant_by_position_and_day() -> None:
    store = MemoryStore()
    await apply(
        store,
        [
            shown("s1", ["p1", "p2", "g:7"], variant="ranker"),
            make_event("v1", "group_view", minutes=1, group_id="7", recommendation_id="r-s1"),
        ],
    )
    expected = {"impressions": 1, "items": 3, "click": 1, "click@3": 1}
    assert counters(store, "ranker") == expected
    assert counters(store, daily("ranker", DAY)) == expected
    variants = store.hashes[store.keyspace.stat(Stat.OUTCOME_VARIANTS, "variants")]
    assert variants == {"ranker": "1"}
    assert counters(store, "blend") == {}


async def test_each_outcome_counts_once_per_list_and_revenue_every_purchase() -> None:
    store = MemoryStore()
    await apply(
        store,
        [
            shown("s1", ["p1", "p2"]),
            make_event("v1", "product_view", minutes=1, product_id="p2", recommendation_id="r-s1"),
            make_event("v2", "product_view", minutes=2, product_id="p1", recommendation_id="r-s1"),
            make_event("c1", "add_to_cart", minutes=3, product_id="p2", recommendation_id="r-s1"),
            make_event("b1", "purchase_completed", minutes=4, product_id="p2", price=19.99),
            make_event(
                "b2", "purchase_completed", minutes=5, product_id="p1", price=5.0, quantity=2
            ),
        ],
    )
    assert counters(store, "blend") == {
        "impressions": 1,
        "items": 2,
        "click": 1,
        "click@2": 1,  # the first click decides the position
        "cart": 1,
        "cart@2": 1,
        "purchase": 1,
        "purchase@2": 1,
        "revenue_cents": 1999 + 1000,
        "revenue_squares": 899,  # the list's 29.99, squared, floored
        "revenue_capped_cents": 2999,
    }


async def test_without_an_id_the_latest_list_showing_the_item_within_the_window_wins() -> None:
    window = CONFIG.attribution_window_minutes
    store = MemoryStore()
    await apply(
        store,
        [
            shown("s1", ["p1"], variant="a"),
            shown("s2", ["p1", "p2"], variant="b", minutes=10),
            make_event("v1", "product_view", minutes=11, product_id="p1"),  # s2, the latest
            make_event("v2", "product_view", minutes=12, product_id="p9"),  # shown nowhere
            make_event("v3", "add_to_cart", minutes=10 + window + 1, product_id="p2"),  # too late
        ],
    )
    assert counters(store, "a") == {"impressions": 1, "items": 1}
    assert counters(store, "b") == {"impressions": 1, "items": 2, "click": 1, "click@1": 1}


async def test_an_id_is_followed_only_to_its_own_list() -> None:
    """An id the user was not shown (or whose list left the window) attributes nothing,
    not even to another list that showed the item; an item not on the named list neither."""
    store = MemoryStore()
    await apply(
        store,
        [
            shown("s1", ["p1"]),
            make_event("v1", "product_view", minutes=1, product_id="p1", recommendation_id="r-x"),
            make_event("v2", "product_view", minutes=2, product_id="p5", recommendation_id="r-s1"),
        ],
    )
    assert counters(store, "blend") == {"impressions": 1, "items": 1}


async def test_a_redelivered_batch_counts_nothing_twice() -> None:
    store = MemoryStore()
    events = [
        shown("s1", ["p1", "p2"]),
        make_event("v1", "product_view", minutes=1, product_id="p1", recommendation_id="r-s1"),
    ]
    await apply(store, events)
    before = counters(store, "blend")
    await apply(store, events)  # the same offsets again: under every watermark
    await apply(store, events, first=2)  # the same events at new offsets: duplicates
    assert (
        counters(store, "blend")
        == before
        == {
            "impressions": 1,
            "items": 2,
            "click": 1,
            "click@1": 1,
        }
    )


def test_an_impression_is_not_behaviour() -> None:
    """A shown list changes no feature, rating, history or session of the user."""
    view = make_event("v1", "product_view", product_id="p1")
    plain = fold_history("u1", [PositionedEvent(validate_event(view), 0, 0, 0.0)], CONFIG)
    log = [
        PositionedEvent(validate_event(shown("s1", ["p1", "p2"])), 0, 0, 0.0),
        PositionedEvent(validate_event(view), 0, 1, 0.0),
    ]
    with_list = fold_user(UserState("u1"), log, CONFIG).state
    assert len(with_list.shown) == 1
    assert (with_list.total_events, with_list.counts, with_list.items) == (
        plain.total_events,
        plain.counts,
        plain.items,
    )
    assert [e.event_id for e in with_list.history] == ["v1"]
    assert with_list.session is not None
    assert plain.session is not None
    assert with_list.session.items == plain.session.items


def test_the_lists_kept_are_bounded_by_the_window_and_the_cap() -> None:
    config = CoreConfig(shown_cap=3, attribution_window_minutes=30)
    log = [
        PositionedEvent(validate_event(shown(f"s{i}", ["p1"], minutes=10 * i)), 0, i, 0.0)
        for i in range(8)
    ]
    state = fold_history("u1", log, config)
    assert [s.recommendation_id for s in state.shown] == ["r-s5", "r-s6", "r-s7"]
    far = [*log, PositionedEvent(validate_event(shown("s9", ["p1"], minutes=500)), 0, 9, 0.0)]
    assert [s.recommendation_id for s in fold_history("u1", far, config).shown] == ["r-s9"]
    stored = UserState.from_stored("u1", state.to_stored(), state.watermark)
    assert stored.shown == state.shown


async def test_without_the_fallback_only_events_that_name_their_list_count() -> None:
    store = MemoryStore()
    records = [
        RawRecord("interactions", 0, i, RECEIVED_MS, b"u1", json.dumps(e).encode())
        for i, e in enumerate(
            [
                shown("s1", ["p1", "p2"]),
                make_event("v1", "product_view", minutes=1, product_id="p1"),
                make_event(
                    "v2", "product_view", minutes=2, product_id="p2", recommendation_id="r-s1"
                ),
            ]
        )
    ]
    await apply_batch(store, records, CoreConfig(attribution_fallback=False))
    assert counters(store, "blend") == {"impressions": 1, "items": 2, "click": 1, "click@2": 1}


async def test_a_click_that_reaches_the_log_before_its_list_is_credited_when_the_list_comes() -> (
    None
):
    """The API writes the list from a background queue; the app's click, tracked at once,
    may be first in the partition. It waits in the state and counts when the list arrives."""
    store = MemoryStore()
    await apply(
        store,
        [
            make_event("v1", "product_view", minutes=1, product_id="p2", recommendation_id="r-s1"),
            make_event(
                "b1",
                "purchase_completed",
                minutes=2,
                product_id="p2",
                price=3.0,
                recommendation_id="r-s1",
            ),
        ],
    )
    waiting = await store.get_user("u1")
    assert waiting is not None
    assert [(p.recommendation_id, p.outcome) for p in waiting.pending] == [
        ("r-s1", "click"),
        ("r-s1", "purchase"),
    ]
    assert counters(store, "blend") == {}
    await apply(store, [shown("s1", ["p1", "p2"])], first=2)
    assert counters(store, "blend") == {
        "impressions": 1,
        "items": 2,
        "click": 1,
        "click@2": 1,
        "purchase": 1,
        "purchase@2": 1,
        "revenue_cents": 300,
        "revenue_squares": 9,
        "revenue_capped_cents": 300,
    }
    credited = await store.get_user("u1")
    assert credited is not None
    assert credited.pending == []


def test_a_state_stored_before_attribution_still_loads() -> None:
    state = fold_history(
        "u1", [PositionedEvent(validate_event(shown("s1", ["p1"])), 0, 0, 0.0)], CONFIG
    )
    stored = json.loads(state.to_json())
    old = {k: v for k, v in stored.items() if k not in ("sh", "pd")}
    loaded = UserState.from_json("u1", json.dumps(old).encode(), None)
    assert (loaded.shown, loaded.pending) == ([], [])
    assert "sh" in stored


def test_recomputing_a_user_keeps_the_lists_shown() -> None:
    log = [
        PositionedEvent(validate_event(shown("s1", ["p1", "p2"])), 0, 0, 0.0),
        PositionedEvent(validate_event(make_event("v1", "product_view", minutes=1)), 0, 1, 0.0),
    ]
    state = fold_history("u1", log, CONFIG)
    recomputed = recompute_state(state, CONFIG)
    assert recomputed.shown == state.shown
    assert recomputed == state


async def test_a_lists_revenue_squares_add_up_across_batches_and_old_states() -> None:
    """Two purchases on one list, folded in two batches: the squares counter holds the
    square of the list's whole revenue (the state remembers what the list earned), and a
    list stored before lists kept their revenue loads with none."""
    store = MemoryStore()
    await apply(
        store,
        [
            shown("s1", ["p1", "p2"]),
            make_event("b1", "purchase_completed", minutes=1, product_id="p1", price=12.0),
        ],
    )
    await apply(
        store,
        [make_event("b2", "purchase_completed", minutes=2, product_id="p2", price=8.5)],
        first=2,
    )
    assert counters(store, "blend")["revenue_cents"] == 2050
    assert counters(store, "blend")["revenue_squares"] == 2050 * 2050 // 10_000
    state = await store.get_user("u1")
    assert state is not None
    assert [s.revenue_cents for s in state.shown] == [2050]
    stored = json.loads(state.to_json())
    stored["sh"] = [entry[:6] for entry in stored["sh"]]
    old = UserState.from_json("u1", json.dumps(stored).encode(), None)
    assert [s.revenue_cents for s in old.shown] == [0]


async def test_item_page_lists_never_push_a_personalised_list_out() -> None:
    """Twenty similar-items lists after one experiment list: the state keeps the
    experiment's list (and five shared ones), so a click naming it still counts."""
    store = MemoryStore()
    events = [shown("exp", ["p1", "p2"], variant="ab:treated")]
    events += [shown(f"sim{n}", ["p3", f"p{10 + n}"], variant="similar-items") for n in range(20)]
    events.append(
        make_event("v1", "product_view", minutes=2, product_id="p2", recommendation_id="r-exp")
    )
    await apply(store, events)
    state = await store.get_user("u1")
    assert state is not None
    assert [s.variant for s in state.shown] == ["ab:treated"] + ["similar-items"] * 5
    assert counters(store, "ab:treated")["click"] == 1
    assert counters(store, "similar-items")["impressions"] == 20
