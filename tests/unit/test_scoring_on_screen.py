"""What a list may contain: never the item on screen or the anchor; items seen in the
session only on request (and marked); products in the cart only when the filter allows."""

from __future__ import annotations

from typing import Any

from recstream.readmodel.context import RecommendationContext
from recstream.scoring import RecommendationRequest, ScoringConfig, next_items, recommend
from recstream.scoring.filters import cart_items, session_items

from .test_scoring_support import CORE, NOW, context, entry, neighbour, session_of, user

CONFIG = ScoringConfig()


def _viewed(*items: str) -> RecommendationContext:
    """A user who just viewed ``items`` in this session; transitions and neighbour sessions
    lead from each of them to the others and to ``p:next``."""
    history = [
        entry(f"v{i}", "product_view", NOW - 60 * (len(items) - i), item, "shoes")
        for i, item in enumerate(items)
    ]
    state = user(history, session=session_of(list(items), last_at=NOW - 60))
    everything = [*items, "p:next"]
    return context(
        state,
        transitions={a: {b: 1.0 for b in everything} for a in items},
        neighbours=[neighbour("n1", everything)],
        popular={item: 5.0 for item in everything} | {"p:pop": 1.0},
    )


def _items(ctx: RecommendationContext, **request: Any) -> list[str]:
    got = recommend(ctx, RecommendationRequest(limit=10, **request), CONFIG, CORE)
    return [s.item for s in got.items]


def test_after_one_view_the_viewed_product_is_not_recommended_back() -> None:
    ctx = _viewed("p:552")
    got = _items(ctx)
    assert "p:552" not in got
    assert got[0] == "p:next"
    assert next_items(ctx, 10, CONFIG)[0].item == "p:next"
    assert "p:552" not in [s.item for s in next_items(ctx, 10, CONFIG)]


def test_seen_items_come_back_only_on_request_and_the_item_on_screen_never() -> None:
    ctx = _viewed("p:a", "p:b")
    assert set(_items(ctx)) & {"p:a", "p:b"} == set()
    seen = recommend(ctx, RecommendationRequest(limit=10, include_seen=True), CONFIG, CORE)
    assert {"p:a", "p:b"} <= {s.item for s in seen.items}
    assert seen.session_items == {"p:a", "p:b"}
    on_screen = _items(ctx, include_seen=True, current_items=frozenset({"p:b"}))
    assert "p:b" not in on_screen
    assert "p:a" in on_screen


def test_a_short_list_is_back_filled_from_what_remains() -> None:
    ctx = _viewed("p:a", "p:b")
    got = _items(ctx)
    assert got == ["p:next", "p:pop"]  # the rest of the popular items were seen


def test_next_items_never_return_the_anchor_and_mark_nothing_seen_by_default() -> None:
    ctx = _viewed("p:a", "p:b")
    anchor = frozenset({"p:a"})
    default = [s.item for s in next_items(ctx, 10, CONFIG, exclude=anchor)]
    assert default == ["p:next", "p:pop"]
    seen = [s.item for s in next_items(ctx, 10, CONFIG, exclude=anchor, include_seen=True)]
    assert "p:a" not in seen
    assert "p:b" in seen


def test_products_in_the_cart_are_left_out_unless_the_filter_is_off() -> None:
    history = [
        entry("c1", "add_to_cart", NOW - 300, "p:cart", "shoes"),
        entry("c2", "add_to_cart", NOW - 200, "p:gone", "shoes"),
        entry("r2", "cart_remove", NOW - 100, "p:gone", "shoes"),
    ]
    state = user(history)
    ctx = context(state, popular={"p:cart": 9.0, "p:gone": 8.0, "p:x": 1.0})
    assert cart_items(ctx) == {"p:cart"}
    assert _items(ctx) == ["p:gone", "p:x"]
    assert _items(ctx, exclude_in_cart=False) == ["p:cart", "p:gone", "p:x"]


def test_a_payment_empties_the_cart() -> None:
    history = [
        entry("c1", "add_to_cart", NOW - 300, "p:cart", "shoes"),
        entry("pay", "payment_success", NOW - 100, None),
    ]
    assert cart_items(context(user(history))) == frozenset()


def test_without_a_session_nothing_counts_as_seen() -> None:
    state = user([entry("v1", "product_view", NOW - 7 * 86_400, "p:old", "shoes")])
    ctx = context(state, popular={"p:old": 2.0, "p:x": 1.0})
    assert session_items(ctx) == frozenset()
    assert _items(ctx) == ["p:old", "p:x"]
