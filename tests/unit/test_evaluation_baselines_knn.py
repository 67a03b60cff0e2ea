"""Session kNN, STAN and V-STAN on the toy sessions, computed by hand."""

from __future__ import annotations

import math

import pytest

from recstream.offline.evaluation.baselines import SKNN, STAN, VSTAN

from .test_evaluation_baselines import TRAIN, keys

# TRAIN: s1 A B (ends minute 100), s2 B C (200), s3 A C D (300), s4 E (400)
MINUTE_DAYS = 1 / 1440  # the STAN lambda of the neighbour's recency is in days
E = math.exp


def test_sknn_sums_the_binary_cosine_of_the_neighbours_that_hold_an_item() -> None:
    model = SKNN(TRAIN)
    # {A, B} with s1 {A, B}: 2 / sqrt(2 * 2); s2 {B, C}: 1 / 2; s3 {A, C, D}: 1 / sqrt(6)
    s1, s2, s3 = 1.0, 0.5, 1 / math.sqrt(6)
    assert model.scores(keys("A", "B")) == pytest.approx(
        {"p:A": s1 + s3, "p:B": s1 + s2, "p:C": s2 + s3, "p:D": s3}
    )
    assert model.recommend(keys("A", "B"), 3) == keys("B", "A", "C")
    # a repeat changes nothing: the session is a set
    assert model.scores(keys("A", "B", "A")) == model.scores(keys("A", "B"))
    assert model.scores([]) == {}
    assert model.scores(keys("Z")) == {}


def test_sknn_jaccard_k_and_the_recent_sample() -> None:
    jaccard = SKNN(TRAIN, similarity="jaccard")  # s1 2/2, s2 1/3, s3 1/4
    assert jaccard.scores(keys("A", "B")) == pytest.approx(
        {"p:A": 1.25, "p:B": 4 / 3, "p:C": 1 / 3 + 1 / 4, "p:D": 0.25}
    )
    nearest = SKNN(TRAIN, k=1)  # s1 alone: A and B tie, by item id
    assert nearest.recommend(keys("A", "B"), 5) == keys("A", "B")
    recent = SKNN(TRAIN, sample_size=2)  # s3 and s2, the most recent with A or B
    s2, s3 = 0.5, 1 / math.sqrt(6)
    assert recent.scores(keys("A", "B")) == pytest.approx(
        {"p:A": s3, "p:B": s2, "p:C": s2 + s3, "p:D": s3}
    )
    with pytest.raises(ValueError, match="similarity"):
        SKNN(TRAIN, similarity="tanimoto")  # type: ignore[arg-type]  # refused at run time


def stan_by_hand(at_minute: float) -> dict[str, float]:
    """STAN's scores after A B with every lambda 1 (the recency one: 100 minutes)."""
    w_a, w_b = E(-1), 1.0  # position weights exp((p - n) / 1)
    norm = math.sqrt(w_a**2 + w_b**2)
    decay = {n: E(-(at_minute - end) / 100) for n, end in (("s1", 100), ("s2", 200), ("s3", 300))}
    s1 = (w_a + w_b) / (norm * math.sqrt(2)) * decay["s1"]
    s2 = w_b / (norm * math.sqrt(2)) * decay["s2"]
    s3 = w_a / (norm * math.sqrt(3)) * decay["s3"]
    # i*: the shared item that comes last in the neighbour: B (2nd) in s1, B (1st) in s2,
    # A (1st) in s3; an item at distance d from it gets exp(-d / 1)
    return {
        "p:A": s1 * E(-1) + s3,
        "p:B": s1 + s2,
        "p:C": s2 * E(-1) + s3 * E(-1),
        "p:D": s3 * E(-2),
    }


def test_stan_weights_positions_recency_and_the_distance_to_the_match() -> None:
    model = STAN(TRAIN, lambda_spw=1, lambda_snh=100 * MINUTE_DAYS, lambda_inh=1)
    # by default the session is at the end of the latest training session (s4, minute 400)
    assert model.scores(keys("A", "B")) == pytest.approx(stan_by_hand(400))
    later = model.scores(keys("A", "B"), at=model.index.latest + 3600)  # an hour later
    assert later == pytest.approx(stan_by_hand(460))
    assert model.recommend(keys("A", "B"), 4) == keys("B", "A", "C", "D")
    assert model.scores([]) == {}


def test_stan_ranking_does_not_depend_on_the_time_of_the_session() -> None:
    model = STAN(TRAIN, lambda_spw=1, lambda_snh=100 * MINUTE_DAYS, lambda_inh=1)
    month = model.index.latest + 30 * 86_400.0
    now, later = model.scores(keys("A", "C")), model.scores(keys("A", "C"), at=month)
    ratios = {later[item] / now[item] for item in now}
    assert max(ratios) == pytest.approx(min(ratios))  # one factor: the same ranking


def test_stan_a_later_repeat_takes_the_weight_of_its_last_position() -> None:
    model = STAN(TRAIN, lambda_spw=1, lambda_snh=100 * MINUTE_DAYS, lambda_inh=1)
    # B A B: B is last (weight 1), A second of three (exp(-1)): the weights of A B
    assert model.scores(keys("B", "A", "B")) == pytest.approx(model.scores(keys("A", "B")))


def test_stan_drops_neighbours_whose_position_weights_vanish() -> None:
    # session-rec's rsc15 lambda_spw (0.00001): only the last item weighs; s3 has no B
    model = STAN(TRAIN, lambda_spw=0.00001, lambda_snh=100 * MINUTE_DAYS, lambda_inh=1)
    assert set(model.scores(keys("A", "B"))) == set(keys("A", "B", "C"))


def vstan_by_hand(similarity: str) -> dict[str, float]:
    """V-STAN's scores after A B, every lambda 1 (the recency one: 100 minutes)."""
    w_a, w_b = E(-1), 1.0
    if similarity == "cosine":
        norm = math.sqrt(w_a**2 + w_b**2)
        base = {
            "s1": (w_a + w_b) / (norm * math.sqrt(2)),
            "s2": w_b / (norm * math.sqrt(2)),
            "s3": w_a / (norm * math.sqrt(3)),
        }
    else:  # vec: the shared weights over the two distinct current items
        base = {"s1": (w_a + w_b) / 2, "s2": w_b / 2, "s3": w_a / 2}
    sim = {n: base[n] * E(-(400 - end) / 100) for n, end in (("s1", 100), ("s2", 200), ("s3", 300))}
    # the last current position the neighbour holds: B (2 of 2) for s1, s2; A (1) for s3
    sim["s3"] *= E(-1)
    # idf over 4 sessions: A, B, C 2 events each, D 1: log(4 / events)
    idf = {"p:A": 1 + math.log(2), "p:B": 1 + math.log(2), "p:C": 1 + math.log(2)}
    idf["p:D"] = 1 + math.log(4)
    votes = {
        "p:A": sim["s1"] * E(-1) + sim["s3"],
        "p:B": sim["s1"] + sim["s2"],
        "p:C": sim["s2"] * E(-1) + sim["s3"] * E(-1),
        "p:D": sim["s3"] * E(-2),
    }
    return {item: vote * idf[item] for item, vote in votes.items()}


@pytest.mark.parametrize("similarity", ["cosine", "vec"])
def test_vstan_adds_idf_and_the_position_of_the_match_to_stan(similarity: str) -> None:
    model = VSTAN(
        TRAIN,
        similarity=similarity,  # type: ignore[arg-type]  # a Literal, parametrized
        lambda_spw=1,
        lambda_snh=100 * MINUTE_DAYS,
        lambda_inh=1,
        lambda_ipw=1,
        lambda_idf=1,
    )
    assert model.scores(keys("A", "B")) == pytest.approx(vstan_by_hand(similarity))


def test_the_time_aware_knns_refuse_non_positive_lambdas() -> None:
    with pytest.raises(ValueError, match="positive"):
        STAN(TRAIN, lambda_inh=0)
    with pytest.raises(ValueError, match="positive"):
        VSTAN(TRAIN, lambda_ipw=-1)
