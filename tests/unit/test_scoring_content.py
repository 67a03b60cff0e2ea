from __future__ import annotations

import pytest

from recstream.scoring import ContentFactors, ScoringConfig
from recstream.scoring.content import content_details, content_scorer, content_scores, factors_of
from recstream.scoring.items import category_of

from .test_scoring_support import CORE, DAY, NOW, context, entry, group, prices_of, product, user

CONFIG = ScoringConfig()


def only(**weights: float) -> ScoringConfig:
    factors = {"category": 0.0, "price": 0.0, "engagement": 0.0, "recency": 0.0, **weights}
    return ScoringConfig(content_factors=ContentFactors(**factors))


def test_the_preferred_category_scores_higher() -> None:
    state = user(category_prefs={"shoes": (10.0, NOW), "books": (2.0, NOW)})
    catalog = [product("p:s", category="shoes"), product("p:b", category="books")]
    scores = content_scores(context(state, catalog=catalog), [], only(category=1), CORE)
    assert scores == pytest.approx({"p:s": 1.0, "p:b": 0.2})


def test_category_preferences_decay_in_time() -> None:
    config = only(category=1)
    state = user(category_prefs={"old": (10.0, NOW - 28 * DAY), "new": (5.0, NOW)})
    catalog = [product("p:o", category="old"), product("p:n", category="new")]
    scores = content_scores(context(state, catalog=catalog), [], config, CORE)
    # two half-lives of 14 days: 10 -> 2.5, relative to the best (5)
    assert scores == pytest.approx({"p:n": 1.0, "p:o": 0.5})


def test_event_categories_stand_in_for_a_missing_catalog() -> None:
    state = user(category_prefs={"shoes": (1.0, NOW)})
    ctx = context(state, item_categories={"p:s": "shoes", "p:b": "books"})
    assert content_scores(ctx, ["p:s", "p:b"], only(category=1), CORE) == {"p:s": 1.0}


def test_without_a_catalog_only_the_candidates_event_categories_count() -> None:
    state = user(category_prefs={"shoes": (1.0, NOW)})
    ctx = context(state, item_categories={"p:other": "shoes"})
    # no candidate has a known category: the factor does not count, the component abstains
    assert content_scorer(ctx, ["p:s", "p:b"], only(category=1), CORE).total == 0
    assert content_scorer(ctx, ["p:s", "p:other"], only(category=1), CORE).total == 1


def test_prices_near_what_the_user_pays_score_higher() -> None:
    state = user(prices=prices_of([20.0, 25.0, 30.0]))
    catalog = [product(f"p:{p}", price=p) for p in (25.0, 50.0, 400.0)]
    scores = content_scores(context(state, catalog=catalog), [], only(price=1), CORE)
    assert scores["p:25.0"] > scores["p:50.0"] > scores.get("p:400.0", 0.0)
    assert scores["p:25.0"] == pytest.approx(1.0, abs=0.01)


def test_purchases_pull_the_price_centre() -> None:
    viewer = user(prices=prices_of([10.0, 100.0]))
    buyer = user(prices=prices_of([10.0, 100.0], bought=[10.0]))
    catalog = [product("p:cheap", price=10.0)]
    config = only(price=1)
    cheap_viewer = content_scores(context(viewer, catalog=catalog), [], config, CORE)
    cheap_buyer = content_scores(context(buyer, catalog=catalog), [], config, CORE)
    assert cheap_buyer["p:cheap"] > cheap_viewer["p:cheap"]


def test_newer_items_score_higher() -> None:
    catalog = [
        product("p:new", created_at=NOW),
        product("p:old", created_at=NOW - 30 * DAY),
    ]
    scores = content_scores(context(user(), catalog=catalog), [], only(recency=1), CORE)
    assert scores == pytest.approx({"p:new": 1.0, "p:old": 0.5})


def test_engagement_counts_the_users_own_rating_and_a_groups_product() -> None:
    state = user([entry("e1", "purchase_completed", NOW, "p:a")])
    catalog = [
        product("p:a", created_at=NOW),
        product("p:b", created_at=NOW),
        group("g:1", "a", created_at=NOW),
    ]
    scores, details = content_details(context(state, catalog=catalog), [], CONFIG, CORE)
    assert details["p:a"]["engagement"] > 0
    assert details["p:b"]["engagement"] == 0
    assert details["g:1"]["engagement"] == pytest.approx(details["p:a"]["engagement"] / 2)
    assert scores["p:a"] > scores["g:1"] > scores["p:b"]


def test_a_group_takes_its_products_category() -> None:
    state = user(category_prefs={"shoes": (1.0, NOW)})
    catalog = [product("p:a", category="shoes"), group("g:1", "a")]
    scores = content_scores(context(state, catalog=catalog), [], only(category=1), CORE)
    assert scores == {"p:a": 1.0, "g:1": 1.0}


def test_without_item_attributes_content_abstains() -> None:
    state = user([entry("e1", "product_view", NOW, "p:a"), entry("e2", "product_view", NOW, "p:b")])
    assert content_scores(context(state), ["p:a", "p:b", "p:c"], CONFIG, CORE) == {}


def test_an_empty_user_against_an_empty_catalog_has_no_content() -> None:
    assert content_scores(context(), ["p:a"], CONFIG, CORE) == {}


def test_factors_are_a_weighted_mean_over_those_that_count() -> None:
    state = user(category_prefs={"shoes": (1.0, NOW)})  # no price history: price does not count
    catalog = [product("p:a", category="shoes", price=10.0, created_at=NOW - 30 * DAY)]
    config = only(category=3, price=5, recency=1)
    scores = content_scores(context(state, catalog=catalog), [], config, CORE)
    assert scores["p:a"] == pytest.approx((3 * 1.0 + 1 * 0.5) / 4)


@pytest.mark.parametrize(
    "config", [CONFIG, only(category=1), only(price=1), only(recency=1), only(engagement=1)]
)
def test_the_scorer_gives_the_candidates_the_values_of_the_whole_pool(
    config: ScoringConfig,
) -> None:
    # the candidates lack the attributes that only the rest of the catalog has: the factors
    # that count must still be decided over the whole pool
    state = user(
        [entry("e1", "add_to_cart", NOW, "p:a")],
        category_prefs={"shoes": (1.0, NOW)},
        prices=prices_of([20.0, 30.0]),
    )
    catalog = [
        product("p:a"),
        product("p:b", category="shoes"),
        product("p:c", price=25.0),
        product("p:d", created_at=NOW - 10 * DAY),
        group("g:1", "b"),
    ]
    ctx = context(state, catalog=catalog)
    everything = content_scores(ctx, [], config, CORE)
    for items in (["p:a"], ["p:a", "g:1"], ["p:z", "p:c"], ["p:b", "p:c", "p:d", "p:a"]):
        scorer = content_scorer(ctx, items, config, CORE)
        scores = [
            scorer.score(
                factors_of(ctx, scorer.profile, i, ctx.catalog.get(i), category_of(ctx, i), config)
            )
            for i in items
        ]
        assert scores == [everything.get(i, 0.0) for i in items]
