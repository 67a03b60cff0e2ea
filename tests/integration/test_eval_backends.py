"""The evaluation gives the same metrics on the in-memory store and on a real Redis."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from recstream.contract.events import Event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.datasets import diginetica_events, session_tsv_events
from recstream.offline.evaluation.methods import ALL_METHODS
from recstream.offline.evaluation.next_item import MODES, NextItemSetup, evaluate_next_item
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.report import next_item_summary, top_n_summary
from recstream.offline.evaluation.top_n import TopNSetup, evaluate_top_n, holdout_split
from recstream.offline.evaluation.training import EvalStore, build_state, landmark_for
from recstream.store.memory import MemoryStore
from recstream.store.redis import RedisStore

pytestmark = pytest.mark.integration


def without_latency(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without what the clock measures (costs and training times)."""
    for metrics in summary["methods"].values():
        metrics.pop("latency_ms")
        metrics.pop("fit_seconds")
        metrics["widget"].pop("latency_ms")
    return summary


def yoochoose_sample(datasets: Path) -> tuple[list[Event], list[Event]]:
    """The last 5,000 training clicks and the first 300 test clicks (whole sessions)."""
    folder = datasets / "yoochoose-100k"
    with (folder / "yoochoose-clicks-100k_train_full.txt").open() as handle:
        train = list(session_tsv_events(handle))[-5000:]
    with (folder / "yoochoose-clicks-100k_test.txt").open() as handle:
        test = list(itertools.islice(session_tsv_events(handle), 300))
    last = test[-1].session_id
    return train, [e for e in test if e.session_id != last]


async def next_item_metrics(
    store: EvalStore, train: list[Event], test: list[Event], core: CoreConfig
) -> list[dict[str, Any]]:
    log = RecordLog("eval", 4)
    await build_state(store, train, log, core, batch_records=500)
    setup = NextItemSetup(20, ALL_METHODS, core)
    summaries = []
    for mode in MODES:  # frozen first: it leaves the store as it was
        result = await evaluate_next_item(store, train, test, log, setup, mode)
        summaries.append(without_latency(next_item_summary(result, 20)))
    return summaries


async def test_memory_and_redis_give_the_same_next_item_metrics(
    datasets: Path, redis_client: Redis, keyspace: Keyspace
) -> None:
    train, test = yoochoose_sample(datasets)
    core = CoreConfig(decay_landmark=landmark_for(train))
    in_memory = await next_item_metrics(MemoryStore(), train, test, core)
    on_redis = await next_item_metrics(RedisStore(redis_client, keyspace), train, test, core)
    frozen, prequential = in_memory
    assert frozen["cases"] == prequential["cases"] > 200
    assert frozen["methods"]["vsknn"]["hr@20"] > 0.3  # the sample is not degenerate
    assert frozen["methods"]["session"]["hr@20"] > 0.3
    assert frozen["methods"] != prequential["methods"]  # the modes differ ...
    assert on_redis == in_memory  # ... and each is the same on both stores


async def test_memory_and_redis_give_the_same_top_n_metrics(
    datasets: Path, redis_client: Redis, keyspace: Keyspace
) -> None:
    with (datasets / "diginetica-sample" / "events.csv").open(newline="") as handle:
        events = list(itertools.islice(diginetica_events(handle), 4000))
    train, holdouts = holdout_split(events, min_events=5, fraction=0.2, gap_seconds=1800)
    core = CoreConfig(decay_landmark=landmark_for(train))
    setup = TopNSetup(10, ALL_METHODS, core)
    summaries = []
    for store in (MemoryStore(), RedisStore(redis_client, keyspace)):
        await build_state(store, train, RecordLog("eval", 4), core)
        result = await evaluate_top_n(store, train, holdouts, setup, min_events=5, fraction=0.2)
        summaries.append(without_latency(top_n_summary(result, 10)))
    assert summaries[0]["users"] > 100
    assert summaries[0]["methods"]["blend"]["hit_rate"] > 0
    assert summaries[0] == summaries[1]
