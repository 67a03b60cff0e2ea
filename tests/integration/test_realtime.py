"""Events in through the API's track endpoint -> the broker -> the consumer -> Redis -> the
recommendation endpoints, all in this process against a real broker and a real Redis.

The recommendations must change within the same second as the events are acknowledged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore
from recstream_api.settings import ApiSettings

from .conftest import consumer_settings, create_topic, running_consumer, wait_until
from .test_api import PREFIX, TRACK_KEY, api_settings, bearer, serve

pytestmark = pytest.mark.integration

PARTITIONS = 2
FRESHNESS_SECONDS = 1.0  # "within the same second"
NEXT = f"{PREFIX}/sequential/next-products"
RECS = f"{PREFIX}/recommendations"


def event(user: str, event_type: str, seconds_ago: float, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"e-{uuid.uuid4().hex[:12]}",
        "event_type": event_type,
        "user_id": user,
        "occurred_at": (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat(),
        **fields,
    }


async def track(api: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    response = await api.post(
        f"{PREFIX}/track-interaction", json={"events": events}, headers={"X-API-Key": TRACK_KEY}
    )
    assert response.status_code == 202, response.text


async def seconds_until(condition: Callable[[], Awaitable[bool]], within: float) -> float:
    """Poll ``condition`` every 10 ms; how long it took to hold (fails after ``within``)."""
    started = time.perf_counter()
    await wait_until(condition, within, "the API to reflect the events", interval=0.01)
    return time.perf_counter() - started


async def test_views_and_a_purchase_change_the_answers_within_a_second(
    redis_url: str,
    kafka_bootstrap: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    settings: ApiSettings = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)
    consumer = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        partitions=PARTITIONS,
    )
    me = bearer(settings, "me")
    async with serve(settings) as api, running_consumer(consumer) as (_, task):
        # the consumer has joined its group once a first event is in Redis
        await track(api, [event("warm-up", "page_view", 60)])

        async def warmed_up() -> bool:
            return await store.get_user("warm-up") is not None

        await wait_until(warmed_up, 30, "the consumer to apply a first event", watch=[task])

        async def next_after_a() -> list[str]:
            response = await api.get(NEXT, params={"product_id": "A"}, headers=me)
            assert response.status_code == 200, response.text
            return [i["product_id"] for i in response.json()["items"]]

        assert "B" not in await next_after_a()
        await track(
            api,
            [
                e
                for user in ("w1", "w2", "w3")
                for e in (
                    event(user, "product_view", 30, product_id="A"),
                    event(user, "product_view", 20, product_id="B"),
                )
            ],
        )

        async def b_follows_a() -> bool:
            return "B" in await next_after_a()

        views_seen = await seconds_until(b_follows_a, 10)
        assert next(p for p in await next_after_a() if p != "A") == "B"

        async def my_recommendations() -> list[str]:
            response = await api.post(RECS, json={"limit": 20}, headers=me)
            assert response.status_code == 200, response.text
            return [i["id"] for i in response.json()["items"]]

        await track(api, [event("me", "product_view", 5, product_id="A")])

        async def b_recommended() -> bool:
            return "B" in await my_recommendations()

        await seconds_until(b_recommended, 10)
        await track(api, [event("me", "purchase_completed", 1, product_id="B", price=9.5)])

        async def b_gone() -> bool:
            return "B" not in await my_recommendations()

        purchase_seen = await seconds_until(b_gone, 10)
        explained = await api.get(f"{RECS}/explain", params={"product_id": "B"}, headers=me)
    assert explained.status_code == 200, explained.text
    assert explained.json()["filtered_by"] == "already_purchased"
    print(f"event ack -> API answer: views {views_seen:.3f}s, purchase {purchase_seen:.3f}s")
    assert views_seen < FRESHNESS_SECONDS, f"views reflected after {views_seen:.3f}s"
    assert purchase_seen < FRESHNESS_SECONDS, f"purchase reflected after {purchase_seen:.3f}s"
