"""Training and serving compute the same features: the trainer's function on the memory
store equals the API's path on Redis, for the same moment, and so does the served ranking.

The first 20,000 training events of ``yoochoose-100k`` are applied through the batch-apply
core into Redis and into a ``MemoryStore``; for a sample of test sessions, the events before
their last item are applied to both the same way. Then, at the moment of the next request:

- the feature matrix :func:`recstream.offline.ranking.dataset.case_features` computes from
  the memory store's read model (what ``recstream train`` records for a case) equals, value
  for value, the one :func:`recstream.scoring.learned.learned_scores` computes from the
  Redis read model (what the API ranks with);
- ``POST /recommendations`` through the API, with a model published to the Redis registry,
  returns exactly the items and scores the core ranks on the memory store.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace
from recstream.offline.evaluation.protocol import group_sessions
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.ranking.dataset import DatasetSetup, case_features
from recstream.readmodel.load import load_context
from recstream.scoring.candidates import SOURCES, source_scores
from recstream.scoring.config import ScoringConfig
from recstream.scoring.learned import LearnedRanker, RankerArtifact, learned_scores
from recstream.scoring.models import RecommendationRequest
from recstream.scoring.recommender import recommend
from recstream.store.memory import MemoryStore
from recstream.store.rankers import RankerRegistry
from recstream.store.redis import RedisStore
from recstream_api.settings import ApiSettings, RankerSettings

from ..unit.ranker_models import one_feature_artifact
from .test_api import PREFIX, api_settings, bearer, serve
from .test_next_items_parity import PARTITIONS, Clock, apply_both, sample, yoochoose

pytestmark = pytest.mark.integration

LIMIT = 20
DEFAULT_MODEL = one_feature_artifact("parity", "sequential_score", prefer="high")
# over every source, the optional ``stan`` too, so that each is computed on both sides
EVERY_SOURCE = dataclasses.replace(DEFAULT_MODEL, version="parity-all", sources=SOURCES)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("model", [DEFAULT_MODEL, EVERY_SOURCE], ids=["default", "every"])
async def test_the_trainer_and_the_api_compute_the_same_features(
    model: RankerArtifact,
    datasets: Path,
    redis_url: str,
    kafka_bootstrap: str,
    keyspace: Keyspace,
    topic_name: str,
    redis_client: Redis,
) -> None:
    train, test, core = yoochoose(datasets)
    scoring = ScoringConfig()
    settings: ApiSettings = api_settings(
        redis_url, kafka_bootstrap, keyspace, topic_name, core=core,
        ranker=RankerSettings(poll_seconds=0.1),
        # equal at the same moment: events are applied between requests, faster than the
        # caches' freshness bounds (tests/unit/test_shared_reads.py, test_items_cache.py)
        shared_reads_cache_seconds=0, item_cache_seconds=0,
    )  # fmt: skip
    redis_store, memory = RedisStore(redis_client, keyspace), MemoryStore(keyspace)
    log = RecordLog(topic_name, PARTITIONS)
    await apply_both([log.append(e) for e in train], redis_store, memory, core)
    await RankerRegistry(redis_client, keyspace).publish(model.version, model.to_bytes())
    ranker = LearnedRanker(model)
    trainer = DatasetSetup(core, scoring, model.per_source, model.sources)

    chosen = sample(group_sessions(test, core.session_gap_minutes * 60))
    clock = Clock()
    compared = with_stan = 0
    async with serve(settings, clock) as api:
        for session in chosen:
            prefix = session.events[:-1]
            await apply_both([log.append(e) for e in prefix], redis_store, memory, core)
            clock.now = datetime.fromtimestamp(prefix[-1].occurred_at.timestamp() + 1, UTC)
            now = clock.now.timestamp()
            in_memory = await load_context(memory, session.user_id, now, core)
            candidates, trained_on = case_features(
                in_memory, source_scores(in_memory, scoring, core), trainer
            )
            on_redis = await load_context(redis_store, session.user_id, now, core)
            served = learned_scores(on_redis, ranker, scoring, core)
            assert served.candidates.items == candidates.items, session.user_id
            assert trained_on.shape == served.matrix.shape
            assert all(
                same(a, b) for a, b in zip(trained_on.ravel(), served.matrix.ravel(), strict=True)
            ), session.user_id
            assert np.isfinite(served.scores).all()
            with_stan += bool(served.candidates.scores.get("stan"))

            response = await api.post(
                f"{PREFIX}/recommendations",
                json={"limit": LIMIT},
                headers=bearer(settings, session.user_id, admin=False),
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["ranker"] == model.version
            expected = recommend(
                in_memory, RecommendationRequest(limit=LIMIT), scoring, core, ranker
            )
            got = [(f"{i['kind'][0]}:{i['id']}", i["score"]) for i in body["items"]]
            assert got == [(s.item, s.score) for s in expected.items], session.user_id
            compared += 1
    assert compared == len(chosen) > 0
    assert (with_stan > 0) == ("stan" in model.sources)
