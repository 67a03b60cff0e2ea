"""``train_ranker`` on a small real log (the OTTO sample): deterministic given the seed, a
report with the figures it promises, and a refusal when the data is too thin."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from recstream.contract.events import Event
from recstream.model.config import CoreConfig
from recstream.offline.datasets import read_events
from recstream.offline.evaluation.training import landmark_for
from recstream.offline.ranking.train import (
    NotEnoughDataError,
    TrainSetup,
    promotion_check,
    train_ranker,
)
from recstream.scoring.candidates import DEFAULT_SOURCES, SOURCES
from recstream.scoring.learned import LearnedRanker, RankerArtifact
from recstream.scoring.ranker_features import features_for

DEFAULT_FEATURE_NAMES = features_for(DEFAULT_SOURCES)


def otto(datasets: Path) -> list[Event]:
    with (datasets / "otto-sample" / "train.jsonl").open() as lines:
        return list(read_events(lines, "otto"))


async def test_training_is_deterministic_and_reports_what_it_learned(datasets: Path) -> None:
    events = otto(datasets)
    setup = TrainSetup(CoreConfig(decay_landmark=landmark_for(events)), min_groups=10)
    first = await train_ranker(events, setup)
    again = await train_ranker(events, setup)
    assert first.artifact.model == again.artifact.model
    assert first.artifact.version.split("-")[-1] == again.artifact.version.split("-")[-1]

    report = first.artifact.report
    assert [row["feature"] for row in report["feature importance"]] != []
    assert sorted(row["feature"] for row in report["feature importance"]) == sorted(
        DEFAULT_FEATURE_NAMES
    )
    assert sum(row["share"] for row in report["feature importance"]) == pytest.approx(100, abs=0.1)
    assert set(report["recall"]) == set(SOURCES)  # every source's, to compare them
    assert first.artifact.sources == DEFAULT_SOURCES
    assert set(report["validation"]) == {"ranker", "blend"}
    assert report["cases"]["fit groups"] >= 10
    served = LearnedRanker(RankerArtifact.from_bytes(first.artifact.to_bytes()))
    assert served.version == first.artifact.version

    other = await train_ranker(events, TrainSetup(setup.core, min_groups=10, seed=8))
    assert other.artifact.model != first.artifact.model  # the seed picks negatives and splits


async def test_the_active_model_is_played_on_the_same_validation_sessions(
    datasets: Path,
) -> None:
    events = otto(datasets)
    setup = TrainSetup(CoreConfig(decay_landmark=landmark_for(events)), min_groups=10)
    served = await train_ranker(events, setup)
    # the same model as the incumbent: the same figures on the same sessions
    same = await train_ranker(events, dataclasses.replace(setup, incumbent=served.ranker))
    ranker, active = (
        dict(v) for v in map(same.artifact.report["validation"].get, ("ranker", "active"))
    )
    del ranker["ms/case"], active["ms/case"]  # timing, not ranking
    assert active == {"version": served.ranker.version, **ranker}
    assert promotion_check(same.artifact.report) is None


async def test_too_little_data_is_refused_with_the_counts(datasets: Path) -> None:
    events = otto(datasets)
    setup = TrainSetup(CoreConfig(decay_landmark=landmark_for(events)))
    with pytest.raises(NotEnoughDataError, match=r"a model needs at least 200"):
        await train_ranker(events, setup)


def figures(hr: float, mrr: float, cases: int = 100) -> dict[str, float]:
    return {"widget cases": cases, "widget HR@20": hr, "widget MRR@20": mrr}


def test_a_model_replaces_the_blend_only_when_it_does_at_least_as_well() -> None:
    blend = figures(40.0, 20.0)
    assert promotion_check({"validation": {"ranker": figures(40.0, 21.0), "blend": blend}}) is None
    worse_order = promotion_check({"validation": {"ranker": figures(41.0, 19.5), "blend": blend}})
    assert worse_order == "validation widget MRR@20 19.5 is below the blend's 20.0"
    fewer_hits = promotion_check({"validation": {"ranker": figures(39.0, 22.0), "blend": blend}})
    assert fewer_hits == "validation widget HR@20 39.0 is below the blend's 40.0"
    assert promotion_check({"validation": {}}) == "no validation figures to compare with the blend"
    empty = {"validation": {"ranker": figures(0.0, 0.0, cases=0), "blend": blend}}
    assert promotion_check(empty) == "no validation figures to compare with the blend"


def test_a_model_replaces_the_active_model_only_when_it_does_at_least_as_well() -> None:
    blend, active = figures(40.0, 20.0), {"version": "v1", **figures(42.0, 23.0)}
    level = {"ranker": figures(42.0, 23.0), "blend": blend, "active": active}
    assert promotion_check({"validation": level}) is None
    above_blend_only = {"ranker": figures(41.0, 22.0), "blend": blend, "active": active}
    assert promotion_check({"validation": above_blend_only}) == (
        "validation widget MRR@20 22.0 is below the active model's (v1) 23.0"
    )
    fewer_hits = {"ranker": figures(41.5, 24.0), "blend": blend, "active": active}
    assert promotion_check({"validation": fewer_hits}) == (
        "validation widget HR@20 41.5 is below the active model's (v1) 42.0"
    )


def test_a_training_setup_takes_the_features_of_its_sources() -> None:
    core = CoreConfig()
    assert TrainSetup(core).model_features() == DEFAULT_FEATURE_NAMES
    every = TrainSetup(core, sources=SOURCES).model_features()
    assert {"stan_score", "stan_rank"} <= set(every)
    chosen = TrainSetup(core, sources=SOURCES, features=DEFAULT_FEATURE_NAMES[:3])
    assert chosen.model_features() == DEFAULT_FEATURE_NAMES[:3]


async def test_a_fractional_later_label_trains_with_its_own_gain(datasets: Path) -> None:
    events = otto(datasets)
    setup = TrainSetup(CoreConfig(decay_landmark=landmark_for(events)), min_groups=10)
    half = await train_ranker(events, dataclasses.replace(setup, later_label=0.5))
    assert half.artifact.report["params"]["label_gain"] == [0.0, 2**0.5 - 1, 3.0]
    full = await train_ranker(events, setup)
    assert full.artifact.report["params"]["label_gain"] == [0.0, 1.0, 3.0]
    assert half.artifact.model != full.artifact.model
