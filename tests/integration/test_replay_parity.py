"""Replay parity: the Diginetica sample folded in-process and through Kafka + Redis is identical.

The same events go through the pure core directly (``MemoryStore`` +
``apply_batch``, one batch) and through the broker, the consumer and Redis
(12 partitions, many batches). Every user's 22 features and every implicit
rating must come out the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recstream.apply.batch import RawRecord, apply_batch
from recstream.contract.events import Event, encode_event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.model.features import compute_features
from recstream.model.ratings import implicit_rating
from recstream.model.state import UserState
from recstream.offline.datasets import BadRow, diginetica_events
from recstream.store.memory import MemoryStore
from recstream.store.redis import RedisStore
from recstream_consumer.settings import Runtime

from .conftest import (
    RUNTIMES,
    consumer_settings,
    create_topic,
    last_offsets,
    produce,
    running_consumer,
    total_events,
    wait_for_watermarks,
)

pytestmark = pytest.mark.integration

PARTITIONS = 12
RECORD_TIME_MS = 1_790_000_000_000  # one record timestamp for both paths
DAY = 86_400.0


def load_diginetica(datasets: Path) -> list[Event]:
    bad: list[BadRow] = []
    with (datasets / "diginetica-sample" / "events.csv").open() as lines:
        events = list(diginetica_events(lines, bad))
    assert bad == []
    return events


@pytest.fixture(scope="module")
async def replayed(datasets: Path) -> tuple[list[Event], MemoryStore]:
    """The sample folded in-process, once for the module."""
    events = load_diginetica(datasets)
    memory = MemoryStore()
    records = [
        RawRecord("replay", 0, offset, RECORD_TIME_MS, e.user_id.encode(), encode_event(e))
        for offset, e in enumerate(events)
    ]
    report = await apply_batch(memory, records, CoreConfig())
    assert report.applied == len(events)
    return events, memory


def comparable(state: UserState, now: float, config: CoreConfig) -> tuple[object, object]:
    ratings = {item: implicit_rating(item, s, now, config) for item, s in state.items.items()}
    return compute_features(state, now, config), ratings


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_diginetica_in_process_and_through_kafka_give_identical_features(
    runtime: Runtime,
    replayed: tuple[list[Event], MemoryStore],
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    config = CoreConfig()
    events, memory = replayed
    assert len(events) == 12_647
    values = [(e.user_id.encode(), encode_event(e)) for e in events]
    users = sorted({e.user_id for e in events})
    now = max(e.occurred_at.timestamp() for e in events) + DAY

    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=PARTITIONS,
        max_batch_records=500,
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    sent = await produce(kafka_bootstrap, topic_name, values, timestamp_ms=RECORD_TIME_MS)
    async with running_consumer(settings) as (consumer, _):
        await wait_for_watermarks(store, topic_name, last_offsets(sent), within=60)
    assert consumer.counters.applied == len(events)
    assert consumer.counters.batches > PARTITIONS

    mismatched = []
    for user in users:
        folded, streamed = await memory.get_user(user), await store.get_user(user)
        assert folded is not None, user
        assert streamed is not None, user
        if comparable(folded, now, config) != comparable(streamed, now, config):
            mismatched.append(user)
    assert mismatched == []
    assert await total_events(store, users) == len(events)
