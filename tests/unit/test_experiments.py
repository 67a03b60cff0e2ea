"""Experiments (scoring/experiments.py): deterministic assignment by hash, configuration
checks, and the bandit's Thompson sampling over its arms' counters."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from recstream.readmodel.outcomes import ArmRecord
from recstream.scoring.config import BlendWeights, ScoringConfig
from recstream.scoring.experiments import (
    Experiment,
    Variant,
    VariantFilters,
    assign,
    bucket,
    check_experiments,
    choose,
    served_variants,
    thompson_arm,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def ab(experiment_id: str = "rank", share: float = 0.5, **fields: object) -> Experiment:
    return Experiment.model_validate(
        {
            "id": experiment_id,
            "variants": [
                {"name": "ranker", "share": share, "ranker": True},
                {"name": "blend", "share": 1 - share},
            ],
            **fields,
        }
    )


def test_users_are_split_by_the_shares_and_always_the_same_way() -> None:
    experiment = ab(share=0.2)
    users = [f"u{n}" for n in range(20_000)]
    split = Counter(assign(experiment, u).name for u in users)
    assert split["ranker"] / len(users) == pytest.approx(0.2, abs=0.01)
    assert [assign(experiment, u).name for u in users[:50]] == [
        assign(ab(share=0.2), u).name for u in users[:50]
    ], "a new process (a new Experiment object) assigns alike"
    other = ab("other", share=0.2)
    together = Counter((assign(experiment, u).name, assign(other, u).name) for u in users)
    assert together[("ranker", "ranker")] / len(users) == pytest.approx(0.04, abs=0.01), (
        "two experiments split users independently"
    )
    assert 0.0 <= bucket("rank", "u1") < 1.0


def test_configurations_that_cannot_run_are_refused() -> None:
    with pytest.raises(ValidationError, match="add up to 1"):
        Experiment.model_validate(
            {"id": "x", "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.4}]}
        )
    with pytest.raises(ValidationError, match="repeat"):
        Experiment.model_validate(
            {"id": "x", "variants": [{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}]}
        )
    with pytest.raises(ValidationError, match="arms exclude"):
        Variant(name="b", share=1, ranker=True, arms=(BlendWeights(), BlendWeights()))
    with pytest.raises(ValidationError, match="at least two arms"):
        Variant(name="b", share=1, arms=(BlendWeights(),))
    with pytest.raises(ValidationError, match="a bandit cannot be it"):
        Experiment(
            id="x",
            variants=(
                Variant(name="b", share=0.5, arms=(BlendWeights(), BlendWeights(content=1))),
                Variant(name="c", share=0.5),
            ),
        )
    with pytest.raises(ValidationError, match="end is not after start"):
        ab(start=T0, end=T0)
    first = ab("first", start=T0, end=T0 + timedelta(days=7))
    check_experiments([first, ab("second", start=T0 + timedelta(days=7))])
    with pytest.raises(ValueError, match="at the same time"):
        check_experiments([first, ab("second", start=T0 + timedelta(days=3))])
    with pytest.raises(ValueError, match="at the same time"):
        check_experiments([first, ab("forever")])
    with pytest.raises(ValueError, match="repeat"):
        check_experiments([first, first])


def test_an_experiment_runs_within_its_window() -> None:
    experiment = ab(start=T0, end=T0 + timedelta(days=1))
    assert not experiment.running(T0 - timedelta(seconds=1))
    assert experiment.running(T0)
    assert not experiment.running(T0 + timedelta(days=1))


def test_thompson_sampling_serves_the_better_arm_mostly_and_explores() -> None:
    rng = random.Random(7)
    records = [ArmRecord(1000, 50), ArmRecord(1000, 80), ArmRecord(30, 0)]
    picks = Counter(thompson_arm(records, 0.0, rng) for _ in range(2000))
    assert picks[1] > 0.8 * 2000, picks
    assert picks[2] > 0, "an arm with little evidence is still tried"
    uniform = Counter(thompson_arm(records, 1.0, rng) for _ in range(3000))
    assert all(900 < uniform[k] < 1100 for k in range(3)), uniform


def test_a_bandit_variant_names_the_arm_it_served() -> None:
    arms = (BlendWeights(content=1, sequential=0, session=0), BlendWeights())
    experiment = Experiment(
        id="tune",
        variants=(Variant(name="fixed", share=0.5), Variant(name="bandit", share=0.5, arms=arms)),
        exploration=0.0,
    )
    assert served_variants(experiment) == ["tune:fixed", "tune:bandit.0", "tune:bandit.1"]
    users = [u for u in (f"u{n}" for n in range(100)) if assign(experiment, u).name == "bandit"]
    counters = {"tune:bandit.0": ArmRecord(500, 5), "tune:bandit.1": ArmRecord(500, 100)}
    rng = random.Random(3)
    choices = [choose(experiment, u, counters, rng) for u in users]
    assert {c.name for c in choices} == {"tune:bandit.1"}
    assert all(c.weights == arms[1] and not c.ranker for c in choices)
    fixed = next(u for u in (f"u{n}" for n in range(100)) if u not in users)
    assert choose(experiment, fixed, counters, rng).name == "tune:fixed"
    # an arm that ranked an earlier list is served again without a draw (explanations)
    again = choose(experiment, users[0], counters, rng, served="tune:bandit.0")
    assert (again.name, again.weights) == ("tune:bandit.0", arms[0])
    assert choose(experiment, fixed, counters, rng, served="tune:bandit.0").name == "tune:fixed"


def test_a_variant_ranks_with_its_own_filters_and_the_rest_of_the_settings() -> None:
    weights = BlendWeights(content=0.2, sequential=0.6, session=0.2)
    diverse = VariantFilters(max_per_category=2, exclude_in_cart=False, intent_shift=False)
    experiment = Experiment(
        id="diverse",
        variants=(
            Variant(name="control", share=0.5),
            Variant(name="diverse", share=0.5, weights=weights, filters=diverse),
        ),
    )
    base = ScoringConfig(max_per_category=5, exclude_purchased=False)
    by_variant = {}
    for user in (f"u{n}" for n in range(40)):
        choice = choose(experiment, user, {}, random.Random(0))
        by_variant[choice.name] = choice.scoring(base)
    control, treated = by_variant["diverse:control"], by_variant["diverse:diverse"]
    assert control == base
    assert (treated.max_per_category, treated.exclude_in_cart, treated.intent_shift) == (
        2,
        False,
        False,
    )
    assert treated.weights == weights
    assert treated.exclude_purchased is False, "unset: the setting"
    assert treated.knn_k == base.knn_k
    with pytest.raises(ValidationError):
        VariantFilters.model_validate({"max_per_category": 0})
    with pytest.raises(ValidationError):
        VariantFilters.model_validate({"exclude_everything": True})
