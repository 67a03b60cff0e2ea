"""Learned ranker models for the tests, and an in-memory ranker registry.

:func:`one_feature_artifact` trains a real LightGBM lambdarank model in milliseconds on
synthetic rows where one feature alone decides the relevance (every other column is
constant, so no tree can split on it): its ranking of any candidates is known in
advance. ``prefer="low"`` on ``popular_score`` ranks the least popular candidate first,
the opposite of what the blend does with the shop of ``test_api_recommend.py``.

:class:`MemoryRankers` keeps models the way ``RankerRegistry`` keeps them in Redis and
satisfies the same Protocol (``recstream_api.rankers.RankerCatalog``); ``unreachable``
makes every call fail as a Redis outage does.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import lightgbm
import numpy as np
from redis.exceptions import ConnectionError as RedisConnectionError

from recstream.scoring.learned import RankerArtifact
from recstream.scoring.ranker_features import FEATURES

GROUPS = 40
GROUP_SIZE = 10


def one_feature_artifact(
    version: str,
    feature: str = "popular_score",
    *,
    prefer: Literal["low", "high"] = "low",
    seed: int = 0,
    rounds: int = 20,
    features: tuple[str, ...] = FEATURES,
) -> RankerArtifact:
    """A model that ranks candidates by ``feature`` alone: lowest (or highest) first; it
    takes ``features`` as its inputs (a subset of the served ones, for the ablation)."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((GROUPS * GROUP_SIZE, len(features)))
    column = features.index(feature)
    rows[:, column] = rng.uniform(0.0, 1.0, len(rows))
    labels = np.zeros(len(rows), dtype=np.int64)
    for group in range(GROUPS):
        start = group * GROUP_SIZE
        values = rows[start : start + GROUP_SIZE, column]
        best_first = np.argsort(values if prefer == "low" else -values)
        labels[start + best_first[:3]] = (3, 2, 1)
    params = {
        "objective": "lambdarank",
        "verbosity": -1,
        "num_leaves": 7,
        "min_data_in_leaf": 5,
        "learning_rate": 0.2,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
    }
    data = lightgbm.Dataset(
        rows, label=labels, group=[GROUP_SIZE] * GROUPS, feature_name=list(features)
    )
    booster = lightgbm.train(params, data, num_boost_round=rounds)
    return RankerArtifact(version=version, model=booster.model_to_string(), features=features)


def corrupt_artifact(version: str) -> bytes:
    """An artifact whose model text LightGBM refuses (the JSON and the fields are fine)."""
    return RankerArtifact(version=version, model="not a model", features=FEATURES).to_bytes()


class MemoryRankers:
    """A ranker registry in memory, with ``RankerRegistry``'s methods and rules."""

    def __init__(self) -> None:
        self.models: dict[str, bytes] = {}
        self.active: str | None = None
        self.unreachable = False
        self.artifact_reads: Counter[str] = Counter()
        self.polls = 0

    def _check(self) -> None:
        if self.unreachable:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    async def publish(self, version: str, artifact: bytes, *, activate: bool = True) -> None:
        self._check()
        self.models[version] = artifact
        if activate:
            await self.activate(version)

    async def activate(self, version: str) -> None:
        self._check()
        if version not in self.models:
            raise KeyError(f"no published ranker model {version!r}")
        self.active = version

    async def deactivate(self) -> None:
        self._check()
        self.active = None

    async def remove(self, version: str) -> None:
        self._check()
        if self.active == version:
            self.active = None
        self.models.pop(version, None)

    async def active_version(self) -> str | None:
        self._check()
        self.polls += 1
        return self.active

    async def artifact(self, version: str) -> bytes | None:
        self._check()
        self.artifact_reads[version] += 1
        return self.models.get(version)

    async def versions(self) -> list[str]:
        self._check()
        return sorted(self.models)
