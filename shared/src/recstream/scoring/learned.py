"""The learned ranker: a LightGBM LambdaMART model over the candidates' features.

A model travels as one artifact (:class:`RankerArtifact`, JSON): its version, the
features and candidate sources it was trained with, the LightGBM model text and the
training report. ``recstream train`` writes it; the API loads it (see
``recstream_api.rankers``) and ranks with :func:`learned_ranking`; without a model
the hand-tuned blend ranks (:func:`recstream.scoring.recommender.rank`).

Explanations come from the model itself: LightGBM's ``pred_contrib`` gives each
feature's additive contribution (SHAP values) to an item's score, and the largest
ones are the reasons an item was placed where it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm
import numpy as np
import orjson

from recstream.model.config import CoreConfig
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.candidates import DEFAULT_SOURCES, SOURCES, Candidates, generate
from recstream.scoring.config import ScoringConfig
from recstream.scoring.ranker_features import FEATURES, Matrix, feature_matrix

ARTIFACT_FORMAT = "recstream-ranker/1"
DEFAULT_PER_SOURCE = 50


class ArtifactError(ValueError):
    """A model artifact that cannot be served by this build."""


@dataclass(frozen=True, slots=True)
class RankerArtifact:
    version: str
    model: str  # LightGBM's model text
    features: tuple[str, ...]
    sources: tuple[str, ...] = DEFAULT_SOURCES
    per_source: int = DEFAULT_PER_SOURCE
    created_at: str = ""
    report: Mapping[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "format": ARTIFACT_FORMAT,
                "version": self.version,
                "created_at": self.created_at,
                "features": list(self.features),
                "sources": list(self.sources),
                "per_source": self.per_source,
                "report": self.report,
                "model": self.model,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes | str) -> RankerArtifact:
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ArtifactError(f"not a model artifact (invalid JSON: {exc})") from exc
        if not isinstance(raw, dict) or raw.get("format") != ARTIFACT_FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ArtifactError(f"not a {ARTIFACT_FORMAT} artifact (format {found!r})")
        try:
            return cls(
                version=str(raw["version"]),
                model=str(raw["model"]),
                features=tuple(raw["features"]),
                sources=tuple(raw["sources"]),
                per_source=int(raw["per_source"]),
                created_at=str(raw.get("created_at", "")),
                report=raw.get("report", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"incomplete model artifact: {exc!r}") from exc


class LearnedRanker:
    """A loaded artifact, ready to score feature rows. Raises :class:`ArtifactError` when
    the artifact asks for features or sources this build does not compute."""

    def __init__(self, artifact: RankerArtifact) -> None:
        unknown = sorted(set(artifact.features) - set(FEATURES))
        if unknown:
            raise ArtifactError(f"model {artifact.version} uses unknown features {unknown}")
        unknown = sorted(set(artifact.sources) - set(SOURCES))
        if unknown:
            raise ArtifactError(f"model {artifact.version} uses unknown sources {unknown}")
        try:
            self.booster = lightgbm.Booster(model_str=artifact.model)
        except lightgbm.basic.LightGBMError as exc:
            raise ArtifactError(f"model {artifact.version} does not load: {exc}") from exc
        if self.booster.num_feature() != len(artifact.features):
            raise ArtifactError(
                f"model {artifact.version} has {self.booster.num_feature()} inputs "
                f"for {len(artifact.features)} named features"
            )
        self.artifact = artifact
        self.version = artifact.version
        self.features = artifact.features
        self._columns = np.array([FEATURES.index(f) for f in artifact.features], dtype=np.intp)

    def select(self, matrix: Matrix) -> Matrix:
        """The model's columns of a full :data:`FEATURES` matrix."""
        return matrix[:, self._columns]

    def scores(self, matrix: Matrix) -> Matrix:
        if len(matrix) == 0:
            return np.zeros(0)
        return np.asarray(self.booster.predict(self.select(matrix), num_threads=1))

    def contributions(self, rows: Matrix) -> list[dict[str, float]]:
        """Each row's per-feature contributions to its score (the bias left out)."""
        if len(rows) == 0:
            return []
        values = np.asarray(
            self.booster.predict(self.select(rows), pred_contrib=True, num_threads=1)
        )
        return [
            {name: float(v) for name, v in zip(self.features, row[:-1], strict=True) if v != 0}
            for row in values
        ]


@dataclass(frozen=True, slots=True)
class LearnedScores:
    """The model's view of one request: candidates, their features and scores."""

    ranker: LearnedRanker
    candidates: Candidates
    matrix: Matrix
    scores: Matrix

    def reasons(self, items: Sequence[str], n: int = 3) -> dict[str, tuple[tuple[str, float], ...]]:
        """The ``n`` features that raised each item's score most (positive contributions)."""
        index = {item: i for i, item in enumerate(self.candidates.items)}
        wanted = [item for item in items if item in index]
        rows = self.matrix[[index[item] for item in wanted]] if wanted else self.matrix[:0]
        found = {}
        for item, contributions in zip(wanted, self.ranker.contributions(rows), strict=True):
            best = sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
            found[item] = tuple((name, round(v, 6)) for name, v in best if v > 0)
        return found


def learned_scores(
    ctx: RecommendationContext, ranker: LearnedRanker, config: ScoringConfig, core: CoreConfig
) -> LearnedScores:
    candidates = generate(ctx, config, core, ranker.artifact.per_source, ranker.artifact.sources)
    matrix = feature_matrix(ctx, candidates, config, core)
    return LearnedScores(ranker, candidates, matrix, ranker.scores(matrix))
