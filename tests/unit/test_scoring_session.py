from __future__ import annotations

import pytest

from recstream.offline.evaluation.baselines import VSTAN
from recstream.readmodel.context import NeighbourSession
from recstream.scoring import ScoringConfig
from recstream.scoring.session import (
    neighbour_support,
    query_items,
    session_for,
    session_scores,
    stan_scores,
)

from .test_evaluation_baselines import TRAIN, keys
from .test_scoring_support import DAY, NOW, context, neighbour, session_of, user

CONFIG = ScoringConfig()


def test_vsknn_scores_by_position_weighted_overlap_and_step_discount() -> None:
    # current session a, b: weights a = 1/2, b = 2/2, over 2 distinct items
    neighbours = [neighbour("n1", ["p:b", "p:c"]), neighbour("n2", ["p:a", "p:d"])]
    scores = session_scores(["p:a", "p:b"], neighbours, NOW, CONFIG)
    # n1: similarity 1/2, newest shared item b is 1 step back -> 1/2
    # n2: similarity (1/2)/2 = 1/4, newest shared item a is 2 steps back -> 1/8
    assert scores == pytest.approx({"p:b": 0.5, "p:c": 0.5, "p:a": 0.125, "p:d": 0.125})


def test_repeated_items_count_once_at_their_last_position() -> None:
    neighbours = [neighbour("n1", ["p:a", "p:x"])]
    once = session_scores(["p:b", "p:a"], neighbours, NOW, CONFIG)
    again = session_scores(["p:a", "p:b", "p:a"], neighbours, NOW, CONFIG)
    assert once["p:x"] == pytest.approx(0.5)  # a weighs 2/2 over 2 distinct items
    assert again["p:x"] == pytest.approx(0.5)  # a weighs 3/3 over 2 distinct items


def test_neighbours_sharing_nothing_do_not_count() -> None:
    assert session_scores(["p:a"], [neighbour("n1", ["p:x", "p:y"])], NOW, CONFIG) == {}


def test_only_the_k_most_similar_neighbours_vote() -> None:
    neighbours = [neighbour("close", ["p:a", "p:b", "p:x"]), neighbour("far", ["p:a", "p:y"])]
    scores = session_scores(["p:a", "p:b"], neighbours, NOW, ScoringConfig(knn_k=1))
    assert "p:x" in scores
    assert "p:y" not in scores


def test_only_the_most_recent_sample_is_compared() -> None:
    neighbours = [
        neighbour("old", ["p:a", "p:old"], last_at=NOW - 9 * DAY),
        neighbour("new", ["p:a", "p:new"], last_at=NOW - DAY),
    ]
    scores = session_scores(["p:a"], neighbours, NOW, ScoringConfig(knn_sample=1))
    assert set(scores) == {"p:a", "p:new"}


def test_neighbour_time_decay_is_optional() -> None:
    neighbours = [
        neighbour("old", ["p:a", "p:old"], last_at=NOW - 2 * DAY),
        neighbour("new", ["p:a", "p:new"], last_at=NOW),
    ]
    flat = session_scores(["p:a"], neighbours, NOW, CONFIG)
    assert flat["p:old"] == pytest.approx(flat["p:new"])
    decayed = session_scores(
        ["p:a"], neighbours, NOW, ScoringConfig(knn_neighbour_half_life_days=1.0)
    )
    assert decayed["p:old"] == pytest.approx(decayed["p:new"] / 4)


def test_equal_scores_are_deterministic() -> None:
    neighbours = [neighbour(f"n{i:02d}", ["p:a", f"p:{i:02d}"]) for i in range(20)]
    first = session_scores(["p:a"], neighbours, NOW, ScoringConfig(knn_k=5))
    second = session_scores(["p:a"], list(reversed(neighbours)), NOW, ScoringConfig(knn_k=5))
    assert first == second
    assert sorted(first) == ["p:00", "p:01", "p:02", "p:03", "p:04", "p:a"]


def test_no_session_or_no_neighbours_give_nothing() -> None:
    assert session_scores([], [neighbour("n", ["p:a"])], NOW, CONFIG) == {}
    assert session_scores(["p:a"], [], NOW, CONFIG) == {}
    assert session_for(context(), CONFIG) == {}


def test_the_query_is_the_session_unless_the_request_names_other_items() -> None:
    state = user(session=session_of(["p:a", "p:b", "p:c"]))
    assert query_items(context(state)) == ["p:a", "p:b", "p:c"]
    assert query_items(context(state, anchors=["p:b", "p:c"])) == ["p:a", "p:b", "p:c"]
    assert query_items(context(state, anchors=["p:x"])) == ["p:x"]
    assert query_items(context(user(), anchors=["p:x"])) == ["p:x"]


def test_neighbour_support_names_the_shared_session_items() -> None:
    state = user(session=session_of(["p:a", "p:b"]))
    ctx = context(state, neighbours=[neighbour("n1", ["p:b", "p:c"]), neighbour("n2", ["p:d"])])
    assert set(neighbour_support(ctx, "p:c", CONFIG)) == {"p:b"}
    assert neighbour_support(ctx, "p:d", CONFIG) == {}


@pytest.mark.parametrize("session", [["A", "B"], ["B", "A", "B"], ["C"], ["D", "A", "E"]])
def test_stan_source_scores_as_the_vstan_baseline_without_idf(session: list[str]) -> None:
    # every lambda 1, the recency one 100 minutes; the baseline's idf factor off (0)
    baseline = VSTAN(
        TRAIN,
        similarity="cosine",
        lambda_spw=1,
        lambda_snh=100 / 1440,
        lambda_inh=1,
        lambda_ipw=1,
        lambda_idf=0,
    )
    neighbours = [NeighbourSession(s.session_id, tuple(s.items), s.end) for s in TRAIN]
    config = ScoringConfig(
        stan_position_lambda=1,
        stan_recency_lambda_days=100 / 1440,
        stan_neighbour_lambda=1,
        stan_match_lambda=1,
    )
    at = baseline.index.latest
    expected = baseline.scores(keys(*session))
    assert expected  # every session shares an item with a neighbour
    assert stan_scores(keys(*session), neighbours, at, config) == pytest.approx(expected)


def test_stan_source_prefers_the_items_next_to_the_match_and_recent_neighbours() -> None:
    neighbours = [
        neighbour("n1", ["p:a", "p:near", "p:x", "p:far"], last_at=NOW - DAY),
        neighbour("n2", ["p:a", "p:old"], last_at=NOW - 20 * DAY),
        neighbour("n3", ["p:a", "p:new"], last_at=NOW - DAY),
    ]
    scores = stan_scores(["p:a"], neighbours, NOW, CONFIG)
    assert scores["p:near"] > scores["p:x"] > scores["p:far"]
    assert scores["p:new"] > scores["p:old"]
    assert stan_scores([], neighbours, NOW, CONFIG) == {}
    assert stan_scores(["p:zzz"], neighbours, NOW, CONFIG) == {}
