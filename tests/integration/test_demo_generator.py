"""The demo generator against the real broker: paced, keyed by user, applied by the consumer."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recstream.contract.events import decode_event
from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore
from recstream_cli.demo_generator import load_sessions, run_generator

from .conftest import (
    consumer_settings,
    create_topic,
    read_topic,
    running_consumer,
    total_events,
    wait_for_total_events,
)

pytestmark = pytest.mark.integration

EVENTS = 240
RATE = 400.0


async def test_generated_traffic_is_paced_keyed_and_applied(
    kafka_bootstrap: str,
    redis_url: str,
    topic_name: str,
    store: RedisStore,
    keyspace: Keyspace,
    datasets: Path,
) -> None:
    await create_topic(kafka_bootstrap, topic_name, 4)
    sessions = load_sessions(datasets / "diginetica-sample" / "events.csv", "auto", 2000)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    sent = await run_generator(
        kafka_bootstrap, topic_name, sessions, rate=RATE, limit=EVENTS, concurrency=20,
        loop=True, seed=1, run_id="itest", connect_timeout=10.0,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert sent == EVENTS
    assert elapsed >= (EVENTS - 1) / RATE

    records = await read_topic(kafka_bootstrap, topic_name, EVENTS)
    assert len(records) == EVENTS
    events = [decode_event(r.value) for r in records]
    assert all(r.key == e.user_id.encode() for r, e in zip(records, events, strict=True))
    assert all(e.event_id.endswith("-itest.0") for e in events)
    assert all(started_at <= e.occurred_at <= datetime.now(UTC) for e in events)
    assert len({e.user_id for e in events}) > 10, "many sessions are open at once"

    settings = consumer_settings(
        redis_url=redis_url, kafka_bootstrap=kafka_bootstrap, keyspace=keyspace, topic=topic_name
    )
    async with running_consumer(settings):
        await wait_for_total_events(store, {e.user_id for e in events}, EVENTS)
    # every generated event was valid: the states count all of them, none went to the DLQ
    assert await total_events(store, {e.user_id for e in events}) == EVENTS
