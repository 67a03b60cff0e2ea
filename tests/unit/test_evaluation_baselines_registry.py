"""Every baseline by name: the registry, the common interface, exclude and back-fill."""

from __future__ import annotations

import pytest

from recstream.offline.evaluation.baselines import (
    BASELINE_NAMES,
    PARAMS,
    SKNN,
    STAN,
    VSTAN,
    Baseline,
    SequentialRules,
    UnknownBaselineError,
    build_baseline,
)

from .test_evaluation_baselines import TRAIN, keys, session

# TRAIN plus sessions that give every method a few items to rank after A B
WIDER = [
    *TRAIN,
    session("s5", ["A", "B", "F", "G"], 500),
    session("s6", ["B", "H", "A", "C"], 600),
    session("s7", ["F", "D"], 700),
]


def test_the_names_and_the_session_or_user_level() -> None:
    assert BASELINE_NAMES == ("pop-baseline", "sknn", "vsknn", "stan", "vstan", "sr", "ease", "als")
    models: dict[str, Baseline] = {name: build_baseline(name, WIDER) for name in BASELINE_NAMES}
    assert {name: model.name for name, model in models.items()} == {n: n for n in BASELINE_NAMES}
    levels = {name: model.level for name, model in models.items()}
    assert levels == {n: "user" if n in ("ease", "als") else "session" for n in BASELINE_NAMES}
    assert build_baseline("ease", WIDER, level="session").level == "session"


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_exclude_leaves_its_places_to_the_next_ones_down(name: str) -> None:
    model = build_baseline(name, WIDER)
    full = model.recommend(keys("A", "B"), 5)
    assert len(full) == 5
    assert len(set(full)) == 5
    assert model.recommend(keys("A", "B"), 3, exclude=full[:2]) == full[2:5]
    assert model.recommend(keys("A", "B"), 3, exclude={full[1], "p:Z"}) == [full[0], *full[2:4]]
    assert model.recommend(keys("A", "B"), 0) == []


def test_the_parameter_sets_are_session_recs_tuned_values() -> None:
    sknn = build_baseline("sknn", WIDER, params="rsc15")
    assert isinstance(sknn, SKNN)
    assert (sknn.k, sknn.index.sample_size, sknn.similarity) == (500, 10_000, "jaccard")
    stan = build_baseline("stan", WIDER, params="diginetica")
    assert isinstance(stan, STAN)
    assert (stan.k, stan.lambda_spw, stan.lambda_snh, stan.lambda_inh) == (500, 1.225, 20, 4.9)
    vstan = build_baseline("vstan", WIDER, params="retailrocket")
    assert isinstance(vstan, VSTAN)
    assert (vstan.similarity, vstan.lambda_idf) == ("vec", 1.0)
    sr = build_baseline("sr", WIDER, params="rsc15")
    assert isinstance(sr, SequentialRules)
    assert (sr.steps, sr.weighting, sr.pruning) == (8, "div", 20)
    default = build_baseline("sr", WIDER)
    assert isinstance(default, SequentialRules)
    assert (default.steps, default.weighting) == (10, "div")
    # no tuned values for EASE: its defaults
    assert build_baseline("ease", WIDER, params="rsc15").recommend(keys("A"), 3) == build_baseline(
        "ease", WIDER
    ).recommend(keys("A"), 3)


def test_unknown_names_parameter_sets_and_levels_are_refused() -> None:
    with pytest.raises(UnknownBaselineError, match="unknown baseline 'gru4rec'"):
        build_baseline("gru4rec", WIDER)
    with pytest.raises(UnknownBaselineError, match="unknown parameter set"):
        build_baseline("sknn", WIDER, params="movielens")
    with pytest.raises(UnknownBaselineError, match="level='session'"):
        build_baseline("vsknn", WIDER, level="user")
    with pytest.raises(UnknownBaselineError, match="unknown level"):
        build_baseline("ease", WIDER, level="day")  # type: ignore[arg-type]  # at run time
    assert set(PARAMS) == {"default", "rsc15", "diginetica", "retailrocket"}
