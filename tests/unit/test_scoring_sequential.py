from __future__ import annotations

import pytest

from recstream.scoring import ScoringConfig, next_items
from recstream.scoring.sequential import anchor_support, sequential_scores

from .test_scoring_support import NOW, context, product, session_of, user

PLAIN = ScoringConfig(reminder_weight=0.0)


def test_the_last_anchor_row_becomes_a_distribution() -> None:
    scores = sequential_scores(["p:a"], {"p:a": {"p:b": 3.0, "p:c": 1.0}}, {}, PLAIN)
    assert scores == pytest.approx({"p:b": 0.75, "p:c": 0.25})


def test_only_the_proportions_of_a_row_matter() -> None:
    small = sequential_scores(["p:a"], {"p:a": {"p:b": 3.0, "p:c": 1.0}}, {}, PLAIN)
    large = sequential_scores(["p:a"], {"p:a": {"p:b": 3e9, "p:c": 1e9}}, {}, PLAIN)
    assert small == pytest.approx(large)


def test_older_anchors_weigh_less() -> None:
    transitions = {"p:old": {"p:x": 1.0}, "p:new": {"p:y": 1.0}}
    scores = sequential_scores(["p:old", "p:new"], transitions, {}, PLAIN)
    assert scores["p:y"] == pytest.approx(1.0)
    assert scores["p:x"] == pytest.approx(PLAIN.anchor_decay)


def test_anchors_beyond_the_configured_number_are_ignored() -> None:
    config = ScoringConfig(reminder_weight=0.0, sequential_anchors=1)
    transitions = {"p:old": {"p:x": 1.0}, "p:new": {"p:y": 1.0}}
    assert sequential_scores(["p:old", "p:new"], transitions, {}, config) == {"p:y": 1.0}


def test_second_order_adds_only_after_two_anchors() -> None:
    transitions = {"p:b": {"p:c": 1.0}}
    second = {"p:d": 2.0, "p:c": 2.0}
    one = sequential_scores(["p:b"], transitions, second, PLAIN)
    two = sequential_scores(["p:a", "p:b"], transitions, second, PLAIN)
    assert one == {"p:c": 1.0}
    assert two == pytest.approx({"p:c": 1.5, "p:d": 0.5})


def test_the_reminder_scores_the_anchors_themselves() -> None:
    config = ScoringConfig(reminder_weight=0.4)
    scores = sequential_scores(["p:a", "p:b"], {"p:b": {"p:c": 1.0}}, {}, config)
    assert scores == pytest.approx({"p:c": 1.0, "p:b": 0.4, "p:a": 0.4 * config.anchor_decay})


def test_no_anchors_or_no_transitions_give_nothing() -> None:
    assert sequential_scores([], {"p:a": {"p:b": 1.0}}, {}, PLAIN) == {}
    assert sequential_scores(["p:z"], {"p:a": {"p:b": 1.0}}, {}, PLAIN) == {}


def test_the_pool_keeps_the_best_with_ties_by_item_id() -> None:
    config = ScoringConfig(reminder_weight=0.0, sequential_pool=2)
    row = {"p:c": 1.0, "p:b": 1.0, "p:a": 1.0, "p:z": 2.0}
    assert list(sequential_scores(["p:x"], {"p:x": row}, {}, config)) == ["p:z", "p:a"]


def test_anchor_support_names_the_anchors_leading_to_an_item() -> None:
    ctx = context(anchors=["p:a", "p:b"], transitions={"p:a": {"p:c": 1.0}, "p:b": {"p:d": 1.0}})
    assert anchor_support(ctx, "p:c", PLAIN) == pytest.approx({"p:a": PLAIN.anchor_decay})
    assert anchor_support(ctx, "p:e", PLAIN) == {}


def test_next_items_ranks_products_and_back_fills_with_popular_ones() -> None:
    state = user(session=session_of(["p:a"]))
    ctx = context(
        state,
        transitions={"p:a": {"p:b": 2.0, "p:c": 1.0, "g:1": 5.0}},
        popular={"p:pop": 9.0, "p:b": 1.0},
        catalog=[product("p:c", in_stock=False)],
    )
    got = next_items(ctx, 3, PLAIN)
    assert [s.item for s in got] == ["p:b", "p:pop"]  # group and out-of-stock product dropped
    assert [s.source for s in got] == ["sequential", "popular"]
    assert got[0].score > got[1].score


def test_next_items_for_a_new_user_says_cold_start() -> None:
    got = next_items(context(popular={"p:a": 2.0, "p:b": 2.0}), 5, PLAIN)
    assert [(s.item, s.source) for s in got] == [("p:a", "cold_start"), ("p:b", "cold_start")]


def test_next_items_from_a_named_item_uses_that_item() -> None:
    state = user(session=session_of(["p:a", "p:b"]))
    ctx = context(state, anchors=["p:x"], transitions={"p:x": {"p:y": 1.0}, "p:b": {"p:z": 1.0}})
    assert [s.item for s in next_items(ctx, 2, PLAIN)] == ["p:y"]


def test_next_items_is_deterministic() -> None:
    state = user(session=session_of(["p:a"], last_at=NOW))
    ctx = context(state, transitions={"p:a": {f"p:{i}": 1.0 for i in range(30)}})
    first = next_items(ctx, 10, ScoringConfig())
    assert first == next_items(ctx, 10, ScoringConfig())
    ties = [s.item for s in first if s.item != "p:a"]
    assert ties == sorted(ties)
