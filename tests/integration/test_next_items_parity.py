"""Next-item predictions on real data: the API on Redis equals the pure core on memory.

The first 20,000 training events of ``yoochoose-100k`` are applied through the
batch-apply core into Redis and into a ``MemoryStore``. Then, for a sample of
test sessions, the session's events before its last item are applied to both
the same way, and ``GET /sequential/next-products`` (through the API, reading
Redis) must answer exactly what :func:`recstream.scoring.recommender.next_items`
answers on the memory store: from the user's session, and from a given product.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from recstream.apply.batch import RawRecord, apply_batch
from recstream.contract.events import Event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.datasets import session_tsv_events
from recstream.offline.evaluation.protocol import EventSession, group_sessions
from recstream.offline.evaluation.records import RecordLog, partition_batches
from recstream.offline.evaluation.training import landmark_for
from recstream.readmodel.load import load_context
from recstream.scoring.recommender import next_items
from recstream.store.memory import MemoryStore
from recstream.store.redis import RedisStore
from recstream_api.settings import ApiSettings

from .test_api import PREFIX, api_settings, bearer, serve

pytestmark = pytest.mark.integration

TRAIN_ROWS = 20_000
SESSIONS = 40
LIMIT = 20
PARTITIONS = 4


def yoochoose(datasets: Path) -> tuple[list[Event], list[Event], CoreConfig]:
    """The first ``TRAIN_ROWS`` training events, every test event, and a core config whose
    decay landmark is the first training day."""
    folder = datasets / "yoochoose-100k"
    train = read(folder / "yoochoose-clicks-100k_train_full.txt", TRAIN_ROWS)
    test = read(folder / "yoochoose-clicks-100k_test.txt")
    assert len(train) == TRAIN_ROWS
    return train, test, CoreConfig(decay_landmark=landmark_for(train))


def read(path: Path, rows: int | None = None) -> list[Event]:
    with path.open() as lines:
        head: Iterator[str] = itertools.islice(lines, rows + 1) if rows is not None else lines
        return list(session_tsv_events(head))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def apply_both(
    records: list[RawRecord], redis_store: RedisStore, memory: MemoryStore, core: CoreConfig
) -> None:
    for batch in partition_batches(records, 2000):
        on_redis = await apply_batch(redis_store, batch, core)
        in_memory = await apply_batch(memory, batch, core)
        assert on_redis.applied == in_memory.applied == len(batch)


def predictions(body: dict[str, Any]) -> list[tuple[str, float, str]]:
    return [(f"p:{i['product_id']}", i["score"], i["source"]) for i in body["items"]]


def sample(sessions: list[EventSession]) -> list[EventSession]:
    """Test sessions of three or more item events, spread over the whole test day."""
    long_enough = [s for s in sessions if len(s.items) >= 3]
    step = max(1, len(long_enough) // SESSIONS)
    return long_enough[::step][:SESSIONS]


async def test_next_products_through_redis_equal_the_core_on_memory(
    datasets: Path,
    redis_url: str,
    kafka_bootstrap: str,
    keyspace: Keyspace,
    topic_name: str,
    redis_client: Redis,
) -> None:
    train, test, core = yoochoose(datasets)
    # equal at the same moment: events are applied between requests, faster than the caches'
    # freshness bounds (tests/unit/test_shared_reads.py, test_items_cache.py check them)
    settings: ApiSettings = api_settings(
        redis_url,
        kafka_bootstrap,
        keyspace,
        topic_name,
        core=core,
        shared_reads_cache_seconds=0,
        item_cache_seconds=0,
    )
    redis_store, memory = RedisStore(redis_client, keyspace), MemoryStore(keyspace)
    log = RecordLog(topic_name, PARTITIONS)
    await apply_both([log.append(e) for e in train], redis_store, memory, core)

    chosen = sample(group_sessions(test, core.session_gap_minutes * 60))
    assert len(chosen) == SESSIONS
    clock = Clock()
    compared = hits = 0
    async with serve(settings, clock) as api:
        for session in chosen:
            prefix, target = session.events[:-1], session.events[-1]
            await apply_both([log.append(e) for e in prefix], redis_store, memory, core)
            clock.now = datetime.fromtimestamp(prefix[-1].occurred_at.timestamp() + 1, UTC)
            now = clock.now.timestamp()
            headers = bearer(settings, session.user_id, admin=False)
            last_item = prefix[-1].product_id
            for anchor in (None, last_item):
                params: dict[str, Any] = {"limit": LIMIT}
                if anchor is not None:
                    params["product_id"] = anchor
                response = await api.get(
                    f"{PREFIX}/sequential/next-products", params=params, headers=headers
                )
                assert response.status_code == 200, response.text
                ctx = await load_context(
                    memory,
                    session.user_id,
                    now,
                    core,
                    anchor=f"p:{anchor}" if anchor is not None else None,
                )
                expected = next_items(ctx, LIMIT, settings.scoring)
                got = predictions(response.json())
                assert got == [(s.item, s.score, s.source) for s in expected], session.user_id
                assert len(got) == LIMIT
                compared += 1
                hits += target.item_key in {item for item, _, _ in got}
    assert compared == 2 * SESSIONS
    assert hits > 0, "the predictions find some of the sessions' next items"
