from __future__ import annotations

from recstream.readmodel.context import RecommendationContext
from recstream.scoring import RecommendationRequest, ScoringConfig, explain, recommend
from recstream.scoring.learned import LearnedRanker

from .ranker_models import one_feature_artifact
from .test_scoring_support import (
    CORE,
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
REQUEST = RecommendationRequest(limit=3)


def _ctx() -> RecommendationContext:
    history = [
        entry("buy-1", "purchase_completed", NOW - 500, "p:bought", "shoes"),
        entry("view-1", "product_view", NOW - 200, "p:a", "shoes"),
        entry("view-2", "product_view", NOW - 100, "p:b", "shoes"),
        entry("view-3", "product_view", NOW - 50, "p:a", "shoes"),
    ]
    state = user(
        history,
        session=session_of(["p:a", "p:b", "p:a"], last_at=NOW - 50),
        category_prefs={"shoes": (6.0, NOW)},
    )
    return context(
        state,
        transitions={"p:a": {"p:next": 5.0, "p:bought": 5.0}, "p:b": {"p:other": 1.0}},
        neighbours=[neighbour("n1", ["p:b", "p:knn"])],
        catalog=[
            product("p:next", category="hats"),
            product("p:hat2", category="hats"),
            product("p:knn", category="shoes"),
            product("p:bought", category="shoes"),
            group("g:1", "next", target_size=5, current_size=4),
        ],
        popular={"p:pop": 1.0},
        item_categories={"p:a": "shoes", "p:b": "shoes"},
    )


def test_a_recommended_item_is_explained_with_the_events_behind_it() -> None:
    ctx = _ctx()
    recs = recommend(ctx, REQUEST, CONFIG, CORE)
    top = recs.items[0]
    why = explain(ctx, top.item, REQUEST, CONFIG, CORE)
    assert why.recommended
    assert why.rank == 1
    assert why.score == top.score
    assert why.components == top.components
    assert why.filtered_by is None
    assert why.intent == recs.intent
    assert why.triggers, "a recommendation cites the user's own events"
    assert {t.event_id for t in why.triggers} <= {e.event_id for e in ctx.state.history}
    assert all(t.at <= NOW for t in why.triggers)
    assert "rank 1" in why.reason


def test_a_sequential_recommendation_cites_the_anchor_events() -> None:
    why = explain(_ctx(), "p:next", REQUEST, CONFIG, CORE)
    assert why.components.get("sequential", 0) > 0
    cited = [(t.event_id, t.item) for t in why.triggers if "sequential" in t.components]
    assert ("view-3", "p:a") in cited
    assert "p:a" in why.reason


def test_a_session_neighbour_recommendation_cites_the_shared_items() -> None:
    why = explain(_ctx(), "p:knn", REQUEST, CONFIG, CORE)
    assert why.components.get("session", 0) > 0
    assert {t.item for t in why.triggers if "session" in t.components} == {"p:b"}


def test_a_group_deal_cites_its_products_evidence_and_its_fill() -> None:
    why = explain(_ctx(), "g:1", RecommendationRequest(limit=20), CONFIG, CORE)
    assert why.rank is not None
    assert any("sequential" in t.components and t.item == "p:a" for t in why.triggers)
    assert "4/5" in why.reason


def test_an_event_feeding_several_components_is_cited_once_with_each() -> None:
    why = explain(_ctx(), "p:b", RecommendationRequest(limit=20), CONFIG, CORE)
    cited = {t.event_id: t for t in why.triggers}
    assert len(cited) == len(why.triggers)
    view = cited["view-2"]
    assert {"session", "content"} <= set(view.components)
    assert view.component == view.components[0]


def test_a_filtered_item_says_which_filter() -> None:
    why = explain(_ctx(), "p:bought", REQUEST, CONFIG, CORE)
    assert not why.recommended
    assert why.rank is None
    assert why.filtered_by == "already_purchased"
    assert "already bought" in why.reason


def test_an_item_below_the_cut_has_a_rank_but_is_not_recommended() -> None:
    ctx = _ctx()
    full = recommend(ctx, RecommendationRequest(limit=20), CONFIG, CORE)
    last = full.items[-1].item
    why = explain(ctx, last, REQUEST, CONFIG, CORE)
    assert why.rank == len(full.items)
    assert not why.recommended
    assert "below the top 3" in why.reason


def test_an_unrelated_item_is_not_recommended_and_says_so() -> None:
    why = explain(_ctx(), "p:nowhere", REQUEST, CONFIG, CORE)
    assert (why.recommended, why.rank, why.score, why.triggers) == (False, None, 0.0, ())
    assert why.source is None
    assert why.reason.startswith("Not recommended")


def test_items_seen_in_the_session_and_the_item_on_screen_say_why_they_are_left_out() -> None:
    ctx = _ctx()
    assert explain(ctx, "p:a", REQUEST, CONFIG, CORE).filtered_by == "seen_in_session"
    seen_ok = RecommendationRequest(limit=3, include_seen=True)
    assert explain(ctx, "p:a", seen_ok, CONFIG, CORE).filtered_by is None
    on_screen = RecommendationRequest(limit=3, include_seen=True, current_items=frozenset({"p:a"}))
    why = explain(ctx, "p:a", on_screen, CONFIG, CORE)
    assert (why.filtered_by, why.recommended) == ("on_screen", False)
    assert why.reason == "Not recommended: it is the item on screen."


def test_the_diversity_cap_is_reported_as_a_filter() -> None:
    request = RecommendationRequest(limit=20, max_per_category=1, include_seen=True)
    ctx = _ctx()
    kept = [s.item for s in recommend(ctx, request, CONFIG, CORE).items]
    shoes = [i for i in ("p:a", "p:b", "p:knn") if i not in kept]
    assert shoes
    assert explain(ctx, shoes[0], request, CONFIG, CORE).filtered_by == "category_cap"


def test_a_cold_start_explanation_names_popularity() -> None:
    ctx = context(popular={"p:pop": 1.0})
    why = explain(ctx, "p:pop", REQUEST, CONFIG, CORE)
    assert why.recommended
    assert why.source == "cold_start"
    assert why.triggers == ()
    assert "Popular" in why.reason


# --- with a learned ranker ---------------------------------------------------------------


def test_a_learned_ranking_is_explained_by_the_features_that_placed_the_item() -> None:
    ctx = _ctx()
    ranker = LearnedRanker(one_feature_artifact("m1", "popular_score", prefer="low"))
    request = RecommendationRequest(limit=20)
    recs = recommend(ctx, request, CONFIG, CORE, ranker, reasons=True)
    assert recs.ranker == "m1"
    top = recs.items[0]
    why = explain(ctx, top.item, request, CONFIG, CORE, ranker)
    assert (why.ranker, why.rank, why.recommended) == ("m1", 1, True)
    assert why.score == top.score
    assert why.features == top.reasons, "the same contributions as the list's reasons"
    [(feature, contribution)] = why.features
    assert feature == "popular_score"
    assert contribution > 0
    assert f"model m1 ranks it for popular_score ({contribution:+.3g})" in why.reason
    assert "rank 1" in why.reason
    for scored in recs.items[1:]:
        lower = explain(ctx, scored.item, request, CONFIG, CORE, ranker)
        assert lower.rank == recs.items.index(scored) + 1, "the explanation agrees with the list"


def test_without_a_ranker_an_explanation_names_no_model_features() -> None:
    ctx = _ctx()
    top = recommend(ctx, REQUEST, CONFIG, CORE).items[0]
    why = explain(ctx, top.item, REQUEST, CONFIG, CORE)
    assert (why.ranker, why.features) == ("blend", ())
    assert "model" not in why.reason
