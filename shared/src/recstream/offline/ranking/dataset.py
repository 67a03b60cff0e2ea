"""The learned ranker's training data: cases of the training log, their candidates and
features, a label on the target.

The training events are split in time, never touching a test split: the sessions that
end last (``label_share`` of them) are the *label* sessions, whose cases teach the
ranker; the events before them are folded into a store, which then plays the
role the live state plays when the API serves. Each label session's cases are
played in frozen mode (as :mod:`recstream.offline.evaluation.next_item` does), and
for each case the candidates and features are computed exactly as the API
computes them (:func:`recstream.scoring.learned.learned_scores`'s code path).

Label sessions are split into *fit* and *validation* sessions by a seeded hash of
the session: fit cases keep the target and a sample of negatives (the hardest by
source evidence, the rest at random); validation cases keep every candidate, so
validation metrics are those of the served ranking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from recstream.model.config import CoreConfig
from recstream.offline.evaluation.next_item import play_frozen
from recstream.offline.evaluation.protocol import EventSession
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.training import EvalStore, Progress
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.candidates import (
    DEFAULT_SOURCES,
    SOURCES,
    Candidates,
    bound,
    source_scores,
)
from recstream.scoring.config import ScoringConfig
from recstream.scoring.ranker_features import FEATURES, Matrix, feature_matrix

RECALL_AT = (50, 100, 200)
_SOURCES_COLUMN = FEATURES.index("sources")
_SCORE_COLUMNS = [FEATURES.index(f"{s}_score") for s in SOURCES]


@dataclass(frozen=True, slots=True)
class DatasetSetup:
    core: CoreConfig
    scoring: ScoringConfig
    per_source: int
    sources: tuple[str, ...] = DEFAULT_SOURCES
    negatives: int = 50  # negatives kept per fit case
    # the label of the items the user engages with later in the label period, in this
    # session or another (the target is 2): a widget is good when it shows what the user
    # engages with soon, not only next; 0 labels the target alone. They are graded 1, the
    # target 2; the training gives grade 1 the gain of this label (2^label - 1)
    later_label: float = 1.0
    validation_share: float = 0.25  # of the label sessions
    seed: int = 7


@dataclass(slots=True)
class Groups:
    """Ranking groups (one per case) stacked: rows, labels, and each group's size."""

    rows: list[Matrix] = field(default_factory=list)
    labels: list[npt.NDArray[np.float64]] = field(default_factory=list)

    def add(self, matrix: Matrix, labels: npt.NDArray[np.float64]) -> None:
        self.rows.append(matrix)
        self.labels.append(labels)

    @property
    def sizes(self) -> list[int]:
        return [len(labels) for labels in self.labels]

    def stacked(self) -> tuple[Matrix, npt.NDArray[np.float64]]:
        if not self.rows:
            return np.zeros((0, len(FEATURES))), np.zeros(0)
        return np.vstack(self.rows), np.concatenate(self.labels)


@dataclass(slots=True)
class TrainingData:
    fit: Groups = field(default_factory=Groups)
    validation: Groups = field(default_factory=Groups)
    cases: int = 0
    fit_cases: int = 0
    validation_cases: int = 0
    # cases whose target is among the candidates: the ranker's ceiling
    covered: int = 0
    # source -> K -> cases whose target is in the source's top K
    recall: dict[str, dict[int, int]] = field(
        default_factory=lambda: {s: dict.fromkeys(RECALL_AT, 0) for s in SOURCES}
    )
    candidates: int = 0  # summed over cases, for the mean


def is_validation(session: EventSession, setup: DatasetSetup) -> bool:
    digest = hashlib.blake2b(
        f"{setup.seed}|{session.user_id}|{session.session_id}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") / 2**64 < setup.validation_share


def _sample_negatives(
    matrix: Matrix, labels: npt.NDArray[np.float64], n: int, rng: np.random.Generator
) -> npt.NDArray[np.intp]:
    """Row indexes kept for a fit case: the positive, the hardest ``n // 2`` negatives (most
    sources, then the best source score), and random others up to ``n`` negatives."""
    positive = np.flatnonzero(labels > 0)
    negative = np.flatnonzero(labels == 0)
    if len(negative) <= n:
        return np.arange(len(labels))
    evidence = matrix[negative][:, _SCORE_COLUMNS].max(axis=1)
    order = np.lexsort((negative, -evidence, -matrix[negative, _SOURCES_COLUMN]))
    hard = negative[order[: n // 2]]
    rest = negative[order[n // 2 :]]
    easy = rng.choice(rest, size=n - len(hard), replace=False)
    return np.sort(np.concatenate([positive, hard, easy]))


async def collect(
    store: EvalStore,
    sessions: Sequence[EventSession],
    log: RecordLog,
    setup: DatasetSetup,
    progress: Progress | None = None,
) -> TrainingData:
    """Candidates, features and labels of every case of the label ``sessions``."""
    data = TrainingData()
    rng = np.random.default_rng(setup.seed)
    validation = {id(s) for s in sessions if is_validation(s, setup)}
    in_validation = [False]  # of the session being played (set by the loop below)
    timelines: dict[str, list[tuple[float, str]]] = {}
    for session in sessions:
        timeline = timelines.setdefault(session.user_id, [])
        timeline += [
            (e.occurred_at.timestamp(), item) for e in session.events if (item := e.item_key)
        ]
    for timeline in timelines.values():
        timeline.sort()

    def on_case(
        ctx: RecommendationContext, _seconds: float, items: Sequence[str], target: str
    ) -> None:
        data.cases += 1
        raw = source_scores(ctx, setup.scoring, setup.core)
        for source in SOURCES:
            position = _rank_of(raw[source], target)
            for k in RECALL_AT:
                if position is not None and position <= k:
                    data.recall[source][k] += 1
        candidates, matrix = case_features(ctx, raw, setup)
        data.candidates += len(candidates.items)
        later = {i for at, i in timelines[ctx.user_id] if at > ctx.now} - set(items)
        # relevance grades; what a later item's grade is worth is the training's label_gain
        graded_later = later if setup.later_label > 0 else set()
        labels = np.array(
            [2.0 if i == target else 1.0 if i in graded_later else 0.0 for i in candidates.items]
        )
        if target in candidates.items:
            data.covered += 1
        if in_validation[0]:
            data.validation_cases += 1
            data.validation.add(matrix, labels)
            return
        data.fit_cases += 1
        if not labels.any():
            return  # nothing to learn from: no labelled item among the candidates
        keep = _sample_negatives(matrix, labels, setup.negatives, rng)
        data.fit.add(matrix[keep], labels[keep])

    for session in sessions:
        in_validation[0] = id(session) in validation
        await play_frozen(store, [session], log, setup.core, on_case, progress)
    return data


def case_features(
    ctx: RecommendationContext, raw: Mapping[str, Mapping[str, float]], setup: DatasetSetup
) -> tuple[Candidates, Matrix]:
    """A case's candidates and their features: the serving path's
    (:func:`recstream.scoring.learned.learned_scores`), from the sources already computed."""
    candidates = bound(ctx, raw, setup.per_source, setup.sources)
    return candidates, feature_matrix(ctx, candidates, setup.scoring, setup.core)


def _rank_of(scores: Mapping[str, float], target: str) -> int | None:
    if target not in scores or scores[target] <= 0:
        return None
    value = scores[target]
    return 1 + sum(1 for item, s in scores.items() if s > value or (s == value and item < target))
