"""Similar items and trending, on hand-made read models (the pure core)."""

from __future__ import annotations

import pytest

from recstream.contract.catalog import CatalogItem
from recstream.model.state import UserState
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ScoringConfig
from recstream.scoring.similar import similar_items, trending_items

CONFIG = ScoringConfig()


def context(**fields: object) -> RecommendationContext:
    return RecommendationContext(
        user_id="",
        now=1e9,
        state=UserState(""),
        session=None,
        anchors=(),
        **fields,  # type: ignore[arg-type]
    )


def test_the_score_is_the_mean_of_the_normalised_statistics() -> None:
    ctx = context(
        covisited={"p:a": {"p:b": 4.0, "p:c": 2.0, "p:a": 9.0}},
        co_engaged={"p:a": {"p:c": 10.0}},
        transitions={"p:a": {"p:b": 1.0, "g:d": 0.5}},
        item_categories={"p:b": "k"},
    )
    listed = similar_items(ctx, "p:a", 10, None, CONFIG)
    scores = {entry.item: entry.score for entry in listed}
    expected = {"p:b": (4 / 9 + 1.0) / 3, "p:c": (2 / 9 + 1.0) / 3, "g:d": 0.5 / 3}
    assert scores == pytest.approx(expected)
    assert [entry.item for entry in listed] == ["p:b", "p:c", "g:d"]
    first = listed[0]
    assert first.components == pytest.approx({"viewed_together": 4 / 9, "viewed_next": 1.0})
    assert first.category == "k"
    assert [e.item for e in similar_items(ctx, "p:a", 10, "groups", CONFIG)] == ["g:d"]
    assert [e.item for e in similar_items(ctx, "p:a", 1, None, CONFIG)] == ["p:b"]


def test_an_item_out_of_stock_is_not_listed_and_nothing_comes_from_nothing() -> None:
    out = CatalogItem(item="p:b", kind="product", in_stock=False)
    ctx = context(covisited={"p:a": {"p:b": 3.0, "p:c": 1.0}}, catalog={"p:b": out})
    assert [e.item for e in similar_items(ctx, "p:a", 5, None, CONFIG)] == ["p:c"]
    assert similar_items(context(), "p:a", 5, None, CONFIG) == []


def test_trending_is_popularity_overall_or_in_a_category() -> None:
    ctx = context(
        popular={"p:a": 8.0, "p:b": 2.0},
        popular_in_category={"k": {"p:b": 5.0, "p:c": 5.0}},
    )
    overall = trending_items(ctx, None, 5, None, CONFIG)
    assert [(e.item, e.score) for e in overall] == [("p:a", 1.0), ("p:b", 0.25)]
    kitchen = trending_items(ctx, "k", 5, None, CONFIG, on_screen=frozenset({"p:c"}))
    assert [e.item for e in kitchen] == ["p:b"]
    assert trending_items(ctx, "unknown", 5, None, CONFIG) == []
