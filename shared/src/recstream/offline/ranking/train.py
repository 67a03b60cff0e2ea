"""Training the learned ranker: LightGBM LambdaMART on the training log's own cases.

1. The training events are split by session end: the last ``label_share`` of the
   sessions are label sessions; the rest is folded into a memory store through the
   batch-apply core (as the consumer would have).
2. :func:`recstream.offline.ranking.dataset.collect` turns every label case into a
   ranking group: candidates, features, the target labelled 1.
3. LightGBM's ``lambdarank`` objective learns from the fit groups (negatives sampled),
   with early stopping on NDCG@k of the validation groups (every candidate kept).
4. The validation sessions are played again through the evaluation's frozen protocol,
   the trained ranker beside the blend (and beside the model being served, when one is
   given: the incumbent), so the report's figures are those of ``recstream eval``
   (widget, new-item, published), on data the new model never saw.
   :func:`promotion_check` then says whether the new model may replace what serves.

Training is deterministic given the data and the seed (one thread, LightGBM's
deterministic mode): the same inputs give the same model text and version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import lightgbm
import numpy as np

from recstream.contract.events import Event
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.next_item import NextItemSetup, score_frozen
from recstream.offline.evaluation.protocol import (
    EventSession,
    count_cases,
    group_sessions,
    split_by_session_end,
)
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.training import Progress, build_state
from recstream.offline.ranking.dataset import DatasetSetup, TrainingData, collect, is_validation
from recstream.scoring.candidates import DEFAULT_SOURCES
from recstream.scoring.config import ScoringConfig
from recstream.scoring.learned import DEFAULT_PER_SOURCE, LearnedRanker, RankerArtifact
from recstream.scoring.ranker_features import FEATURE_GROUPS, FEATURES, features_for
from recstream.store.memory import MemoryStore


class NotEnoughDataError(ValueError):
    """Too few training cases for a model worth serving."""


# A stage of the training: its name and how many steps it has -> the advance callback.
Stages = Callable[[str, int], Progress]


@dataclass(frozen=True, slots=True)
class TrainSetup:
    core: CoreConfig
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    label_share: float = 0.3  # the training sessions (the last to end) whose cases teach
    validation_share: float = 0.25  # of the label sessions, held out
    per_source: int = DEFAULT_PER_SOURCE
    sources: tuple[str, ...] = DEFAULT_SOURCES
    features: tuple[str, ...] | None = None  # None: the features of ``sources``
    negatives: int = 50
    later_label: float = 1.0  # the label of the session's later items (the target's is 2)
    rounds: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_data_in_leaf: int = 50
    early_stopping_rounds: int = 30
    k: int = 20
    seed: int = 7
    # fewer fit cases than this give a model that ranks noise (a 15-leaf tree with 50 rows
    # per leaf has little to stand on): training refuses, and the blend keeps serving
    min_groups: int = 200
    # play the validation sessions again with the model and the blend for the report
    # (``recstream eval``, which scores its own test split, skips it)
    validate: bool = True
    # the model being served, played on the same validation sessions (as ``active``), so
    # that a new model replaces it only when it does at least as well
    incumbent: LearnedRanker | None = None

    def model_features(self) -> tuple[str, ...]:
        """The model's inputs: as given, else every feature of its sources."""
        return self.features if self.features is not None else features_for(self.sources)

    def lightgbm_params(self) -> dict[str, Any]:
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            # the gain of grades 0, 1 (a later item), 2 (the target): LightGBM's 2^grade - 1,
            # with the later items' worth set by later_label (1: LightGBM's default gains)
            "label_gain": [0.0, 2.0**self.later_label - 1.0, 3.0],
            "eval_at": [self.k],
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": 0.9,
            "lambda_l2": 1.0,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "verbose": -1,
        }


@dataclass(frozen=True, slots=True)
class Trained:
    artifact: RankerArtifact
    ranker: LearnedRanker
    data: TrainingData


async def train_ranker(
    events: Sequence[Event], setup: TrainSetup, stages: Stages | None = None
) -> Trained:
    """A ranker trained on ``events`` (training data only), with its report."""
    started = time.perf_counter()
    gap = setup.core.session_gap_minutes * 60.0
    history, labelled = split_by_session_end(events, setup.label_share, gap)
    store = MemoryStore()
    log = RecordLog("train", 4)
    await build_state(
        store, history, log, setup.core, progress=_stage(stages, "apply history", len(history))
    )
    sessions = group_sessions(labelled, gap)
    dataset = DatasetSetup(
        setup.core,
        setup.scoring,
        setup.per_source,
        setup.sources,
        setup.negatives,
        later_label=setup.later_label,
        validation_share=setup.validation_share,
        seed=setup.seed,
    )
    data = await collect(
        store, sessions, log, dataset, _stage(stages, "build cases", count_cases(sessions))
    )
    if len(data.fit.rows) < setup.min_groups:
        raise NotEnoughDataError(
            f"{len(data.fit.rows)} training cases have a labelled item among their candidates "
            f"({data.cases} cases in {len(sessions)} label sessions); a model needs at least "
            f"{setup.min_groups}: the blend serves until there is more data"
        )
    booster = _fit(data, setup)
    model = booster.model_to_string()
    version = _version(model)
    importance = _importance(booster, setup.model_features())
    report: dict[str, Any] = {
        "events": {"history": len(history), "label": len(labelled)},
        "cases": {
            "all": data.cases,
            "fit": data.fit_cases,
            "validation": data.validation_cases,
            "fit groups": len(data.fit.rows),
            "fit rows": int(sum(data.fit.sizes)),
            "target among candidates": round(data.covered / max(1, data.cases), 4),
            "mean candidates": round(data.candidates / max(1, data.cases), 1),
        },
        "recall": {
            s: {str(k): round(n / max(1, data.cases), 4) for k, n in by_k.items()}
            for s, by_k in data.recall.items()
        },
        "trees": booster.num_trees(),
        "best iteration": booster.best_iteration,
        "params": {**setup.lightgbm_params(), "rounds": setup.rounds},
        "feature importance": importance,
    }
    artifact = RankerArtifact(
        version=version,
        model=model,
        features=setup.model_features(),
        sources=setup.sources,
        per_source=setup.per_source,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        report=report,
    )
    validation = [s for s in sessions if is_validation(s, dataset)]
    figures: dict[str, Any] = {}
    if setup.validate:
        ranker = LearnedRanker(artifact)
        figures = await _validate(store, validation, log, setup, ranker, stages)
    seconds = round(time.perf_counter() - started, 1)
    artifact = dataclasses.replace(
        artifact, report={**report, "validation": figures, "seconds": seconds}
    )
    return Trained(artifact, LearnedRanker(artifact), data)


def promotion_check(report: Mapping[str, Any], k: int = 20) -> str | None:
    """Why the model should not replace what serves, or None: on the validation sessions
    its served (widget) list must order at least as well as the blend's (MRR@k not lower)
    and find at least as much (HR@k not lower), and so against the incumbent model when
    the report has one (``active``)."""
    validation = report.get("validation") or {}
    ranker, blend = validation.get("ranker"), validation.get("blend")
    if not ranker or not blend or not ranker.get("widget cases"):
        return "no validation figures to compare with the blend"
    rivals = [("the blend's", blend)]
    active = validation.get("active")
    if active:
        rivals.append((f"the active model's ({active['version']})", active))
    for name, rival in rivals:
        for metric in (f"widget MRR@{k}", f"widget HR@{k}"):
            if ranker[metric] < rival[metric]:
                return f"validation {metric} {ranker[metric]} is below {name} {rival[metric]}"
    return None


def _stage(stages: Stages | None, name: str, total: int) -> Progress | None:
    return stages(name, total) if stages is not None else None


def _fit(data: TrainingData, setup: TrainSetup) -> lightgbm.Booster:
    features = setup.model_features()
    columns = [FEATURES.index(f) for f in features]
    x, y = data.fit.stacked()
    train = lightgbm.Dataset(x[:, columns], y, group=data.fit.sizes, feature_name=list(features))
    # early stopping on the validation groups that can score: the target is a candidate
    scoring = [i for i, labels in enumerate(data.validation.labels) if labels.any()]
    valid_sets: list[lightgbm.Dataset] = []
    callbacks: list[Callable[..., Any]] = []
    if scoring:
        vx = np.vstack([data.validation.rows[i] for i in scoring])
        vy = np.concatenate([data.validation.labels[i] for i in scoring])
        sizes = [len(data.validation.labels[i]) for i in scoring]
        valid_sets.append(lightgbm.Dataset(vx[:, columns], vy, group=sizes, reference=train))
        callbacks.append(lightgbm.early_stopping(setup.early_stopping_rounds, verbose=False))
    return lightgbm.train(
        setup.lightgbm_params(),
        train,
        num_boost_round=setup.rounds,
        valid_sets=valid_sets,
        callbacks=callbacks,
    )


def _version(model: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{hashlib.sha256(model.encode()).hexdigest()[:10]}"


def same_model(version: str, other: str) -> bool:
    """Whether two versions name the same model text (trained at different times)."""
    return version.rsplit("-", 1)[-1] == other.rsplit("-", 1)[-1]


def _importance(booster: lightgbm.Booster, features: Sequence[str]) -> list[dict[str, Any]]:
    """Gain and split count per feature, by gain, with each gain's share in %."""
    gain = booster.feature_importance(importance_type="gain")
    splits = booster.feature_importance(importance_type="split")
    total = float(gain.sum()) or 1.0
    group_of = {f: g for g, names in FEATURE_GROUPS.items() for f in names}
    ordered = sorted(
        zip(features, gain, splits, strict=True), key=lambda row: (-float(row[1]), row[0])
    )
    return [
        {
            "feature": name,
            "group": group_of[name],
            "gain": round(float(g), 3),
            "share": round(100.0 * float(g) / total, 2),
            "splits": int(s),
        }
        for name, g, s in ordered
    ]


async def _validate(
    store: MemoryStore,
    sessions: Sequence[EventSession],
    log: RecordLog,
    setup: TrainSetup,
    ranker: LearnedRanker,
    stages: Stages | None,
) -> dict[str, Any]:
    evaluated = NextItemSetup(
        setup.k, ("ranker", "blend"), setup.core, setup.scoring, ranker=ranker
    )
    cases = count_cases(sessions)
    scores = dict(
        await score_frozen(store, sessions, log, evaluated, _stage(stages, "validate", cases))
    )
    named: dict[str, dict[str, Any]] = {"ranker": {}, "blend": {}}
    if setup.incumbent is not None:
        served = dataclasses.replace(evaluated, methods=("ranker",), ranker=setup.incumbent)
        incumbent = await score_frozen(
            store, sessions, log, served, _stage(stages, "validate the active model", cases)
        )
        scores["active"] = incumbent["ranker"]
        named["active"] = {"version": setup.incumbent.version}
    k = setup.k
    return {
        method: {
            **named[method],
            "cases": s.full.cases,
            "widget cases": s.widget.cases,
            f"widget HR@{k}": round(100 * s.widget.hit_rate(k), 2),
            f"widget MRR@{k}": round(100 * s.widget.mrr(k), 2),
            f"new HR@{k}": round(100 * s.full.new_hit_rate(k), 2),
            f"new MRR@{k}": round(100 * s.full.new_mrr(k), 2),
            f"HR@{k}": round(100 * s.full.hit_rate(k), 2),
            f"MRR@{k}": round(100 * s.full.mrr(k), 2),
            "ms/case": round(s.full.mean_ms(), 2),
        }
        for method, s in scores.items()
    }
