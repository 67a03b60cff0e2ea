from __future__ import annotations

from typing import Any

import pytest

from recstream.readmodel.context import RecommendationContext
from recstream.scoring import RecommendationRequest, ScoringConfig, recommend
from recstream.scoring.groups import deal_factor

from .test_scoring_support import (
    CORE,
    DAY,
    NOW,
    context,
    entry,
    group,
    neighbour,
    product,
    session_of,
    user,
)

CONFIG = ScoringConfig()
HOUR = 3_600.0


def items_of(ctx: RecommendationContext, **request: Any) -> list[str]:
    got = recommend(ctx, RecommendationRequest(**request), CONFIG, CORE)
    return [s.item for s in got.items]


def test_a_cold_start_user_gets_popular_items_saying_so() -> None:
    ctx = context(popular={"p:a": 5.0, "p:b": 9.0, "p:c": 5.0})
    got = recommend(ctx, RecommendationRequest(limit=10), CONFIG, CORE)
    assert got.cold_start
    assert got.source == "cold_start"
    assert [(s.item, s.source) for s in got.items] == [
        ("p:b", "cold_start"),
        ("p:a", "cold_start"),
        ("p:c", "cold_start"),
    ]
    assert got.intent.kind == "unknown"


def test_a_cold_start_user_without_popularity_gets_the_newest_catalog_items() -> None:
    catalog = [product("p:old", created_at=NOW - 60 * DAY), product("p:new", created_at=NOW)]
    got = recommend(context(catalog=catalog), RecommendationRequest(), CONFIG, CORE)
    assert [s.item for s in got.items] == ["p:new", "p:old"]
    assert got.source == "cold_start"


def test_an_empty_world_gives_an_empty_list() -> None:
    got = recommend(context(), RecommendationRequest(), CONFIG, CORE)
    assert got.items == ()


def test_a_known_user_without_signal_falls_back_to_popular_in_their_categories() -> None:
    state = user([entry("e1", "page_view", NOW - DAY, None, "shoes")])
    ctx = context(
        state,
        popular={"p:book": 10.0, "p:shoe": 1.0},
        popular_in_category={"shoes": {"p:shoe": 3.0}},
    )
    got = recommend(ctx, RecommendationRequest(), CONFIG, CORE)
    assert not got.cold_start
    assert got.source == "popular"
    assert [s.item for s in got.items] == ["p:shoe", "p:book"]
    assert {s.source for s in got.items} == {"popular"}


def _shop(**extra: Any) -> RecommendationContext:
    history = [
        entry("e1", "purchase_completed", NOW - 100, "p:bought", "shoes"),
        entry("e2", "product_view", NOW - 50, "p:a", "shoes"),
    ]
    state = user(history, session=session_of(["p:a"], last_at=NOW - 50))
    row = {i: 1.0 for i in ("p:bought", "p:gone", "p:b", "p:c", "p:d", "g:full")}
    catalog = [
        product("p:a", category="shoes"),
        product("p:b", category="shoes"),
        product("p:c", category="books"),
        product("p:d", category="hats"),
        product("p:gone", category="shoes", in_stock=False),
        group("g:open", "b", target_size=4, current_size=1, closes_at=NOW + DAY),
        group("g:full", "b", target_size=2, current_size=2),
        group("g:late", "c", closes_at=NOW - 1),
        group("g:shut", "d", status="closed"),
    ]
    return context(state, transitions={"p:a": row}, catalog=catalog, **extra)


def test_business_filters_apply_before_the_cut() -> None:
    got = items_of(_shop(), limit=20)
    assert "p:bought" not in got
    assert "p:gone" not in got
    assert not {"g:full", "g:late", "g:shut"} & set(got)
    assert "g:open" in got
    assert len(items_of(_shop(), limit=3)) == 3


def test_purchased_products_can_be_kept_on_request() -> None:
    assert "p:bought" in items_of(_shop(), limit=20, exclude_purchased=False)


def test_item_kind_selects_products_or_groups() -> None:
    assert items_of(_shop(), limit=20, kind="groups") == ["g:open"]
    assert all(i.startswith("p:") for i in items_of(_shop(), limit=20, kind="products"))


def test_category_include_and_exclude() -> None:
    included = items_of(_shop(), limit=20, include_categories=frozenset({"books"}))
    assert set(included) == {"p:c"}
    excluded = items_of(_shop(), limit=20, exclude_categories=frozenset({"shoes"}))
    assert {"p:c", "p:d"} <= set(excluded)
    assert not {"p:b", "g:open"} & set(excluded)  # the group's product is a shoe


def test_the_diversity_cap_limits_items_per_category() -> None:
    got = items_of(_shop(), limit=20, max_per_category=1)
    assert got.count("p:b") + got.count("p:a") + got.count("g:open") == 1
    assert {"p:c", "p:d"} <= set(got)


def test_open_groups_inherit_their_products_appeal() -> None:
    got = recommend(_shop(), RecommendationRequest(limit=20), CONFIG, CORE)
    by_item = {s.item: s for s in got.items}
    entry_ = group("g:open", "b", target_size=4, current_size=1, closes_at=NOW + DAY)
    factor = deal_factor(entry_, NOW, CONFIG)
    assert CONFIG.group_deal_floor < factor < 1.0
    assert by_item["g:open"].score == pytest.approx(by_item["p:b"].score * factor)


def test_fuller_groups_closing_soon_make_better_deals() -> None:
    empty = group("g:1", "p", target_size=10, current_size=0)
    almost = group("g:2", "p", target_size=10, current_size=9, closes_at=NOW + HOUR)
    assert deal_factor(empty, NOW, CONFIG) == pytest.approx(CONFIG.group_deal_floor)
    assert deal_factor(almost, NOW, CONFIG) > deal_factor(empty, NOW, CONFIG)


def test_a_group_seeking_session_lifts_groups() -> None:
    state = user(
        session=session_of(
            ["g:x", "g:x", "p:a"],
            counts={"group_view": 2, "group_join_click": 2, "product_view": 1},
        )
    )
    catalog = [product("p:b"), group("g:b", "b", target_size=2, current_size=1)]
    ctx = context(state, transitions={"p:a": {"p:b": 1.0}}, catalog=catalog)
    seeking = recommend(ctx, RecommendationRequest(limit=5), CONFIG, CORE)
    assert seeking.intent.kind == "group_seeking"
    assert [s.item for s in seeking.items][:2] == ["g:b", "p:b"]
    plain = recommend(
        ctx, RecommendationRequest(limit=5), ScoringConfig(group_intent_boost=0.0), CORE
    )
    assert [s.item for s in plain.items][:2] == ["p:b", "g:b"]


def test_recommendations_are_deterministic_with_ties_by_item_id() -> None:
    state = user(session=session_of(["p:a"]))
    ctx = context(
        state,
        transitions={"p:a": {f"p:{i:02d}": 1.0 for i in range(12)}},
        neighbours=[neighbour("n1", ["p:a", "p:05"])],
    )
    first = recommend(ctx, RecommendationRequest(limit=8), CONFIG, CORE)
    again = recommend(ctx, RecommendationRequest(limit=8), CONFIG, CORE)
    assert first == again
    scores = [s.score for s in first.items]
    assert scores == sorted(scores, reverse=True)
    tied = [s.item for s in first.items if s.score == first.items[-1].score]
    assert tied == sorted(tied)


def test_the_limit_is_honoured_and_short_lists_are_back_filled() -> None:
    state = user(session=session_of(["p:a"]))
    ctx = context(
        state,
        transitions={"p:a": {"p:b": 1.0}},
        popular={"p:x": 3.0, "p:y": 2.0, "p:b": 9.0},
    )
    got = recommend(ctx, RecommendationRequest(limit=4, include_seen=True), CONFIG, CORE)
    assert [s.item for s in got.items] == ["p:b", "p:a", "p:x", "p:y"]
    assert [s.source for s in got.items][2:] == ["popular", "popular"]
    assert got.items[1].score > got.items[2].score
    # without the session's own item, the back-fill closes the gap as far as it reaches
    default = recommend(ctx, RecommendationRequest(limit=4), CONFIG, CORE)
    assert [s.item for s in default.items] == ["p:b", "p:x", "p:y"]
    assert recommend(ctx, RecommendationRequest(limit=0), CONFIG, CORE).items == ()
