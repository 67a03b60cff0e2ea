"""The read endpoints against state written the consumer's way (apply_batch + RedisStore)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from recstream.apply.batch import RawRecord, apply_batch
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.model.features import compute_features
from recstream.model.ratings import implicit_rating
from recstream.model.state import UserState
from recstream.store.memory import MemoryStore
from recstream.store.redis import RedisStore
from recstream_api.settings import ApiSettings

from .test_api import ADMIN_KEY, PREFIX, TRACK_KEY, api_settings, bearer, closed_address, serve

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 7, 18, 30, tzinfo=UTC)  # a Saturday
PARTITION = 4


@pytest.fixture
def settings(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> ApiSettings:
    return api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)


def clock() -> datetime:
    return NOW


def make(event_id: str, event_type: str, user_id: str, hours_ago: float, **fields: Any) -> bytes:
    event = {
        "event_id": event_id,
        "event_type": event_type,
        "user_id": user_id,
        "occurred_at": (NOW - timedelta(hours=hours_ago)).isoformat(),
        **fields,
    }
    return json.dumps(event).encode()


def history(user_id: str) -> list[bytes]:
    return [
        make(f"{user_id}-1", "product_view", user_id, 50, product_id="p-1", category="kitchen"),
        make(f"{user_id}-2", "product_view", user_id, 30, product_id="p-2", category="garden"),
        make(f"{user_id}-3", "add_to_cart", user_id, 29, product_id="p-1", category="kitchen"),
        make(f"{user_id}-4", "group_view", user_id, 20, group_id="g-1"),
        make(f"{user_id}-5", "group_join_click", user_id, 19, group_id="g-1"),
        make(f"{user_id}-6", "group_join_complete", user_id, 19, group_id="g-1"),
        make(f"{user_id}-7", "purchase_completed", user_id, 5, product_id="p-1", price=20.0),
        make(f"{user_id}-8", "rating_submitted", user_id, 4, product_id="p-1", rating=5),
        make(f"{user_id}-9", "product_search", user_id, 2, query="rice cooker"),
        make(f"{user_id}-10", "cart_remove", user_id, 1, product_id="p-2"),
    ]


def records(topic: str, values: list[bytes], first_offset: int = 0) -> list[RawRecord]:
    received_ms = int(NOW.timestamp() * 1000)
    return [
        RawRecord(
            topic, PARTITION, first_offset + i, received_ms, json.loads(v)["user_id"].encode(), v
        )
        for i, v in enumerate(values)
    ]


async def write_state(
    redis_client: Redis, keyspace: Keyspace, config: CoreConfig, batch: list[RawRecord]
) -> UserState:
    """Apply the batch through the Redis store; return the same fold done in memory."""
    report = await apply_batch(RedisStore(redis_client, keyspace), batch, config)
    assert report.applied == len(batch)
    assert not report.dead_letters
    memory = MemoryStore()
    await apply_batch(memory, batch, config)
    users = {json.loads(r.value or b"{}")["user_id"] for r in batch}
    [user] = users
    state = await memory.get_user(user)
    assert state is not None
    return state


async def test_profile_equals_the_core_on_the_same_events(
    settings: ApiSettings, redis_client: Redis, keyspace: Keyspace
) -> None:
    batch = records("interactions", history("u-1"), first_offset=40)
    expected_state = await write_state(redis_client, keyspace, settings.core, batch)
    async with serve(settings, clock) as api:
        response = await api.get(
            f"{PREFIX}/user-profile/behavioral", headers=bearer(settings, "u-1")
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == "u-1"
    assert body["source"] == "stream"
    assert datetime.fromisoformat(body["computed_at"]) == NOW
    assert body["watermark"] == {"partition": PARTITION, "offset": 49}
    expected = asdict(compute_features(expected_state, NOW.timestamp(), settings.core))
    assert body["features"] == expected
    assert len(body["features"]) == 22
    assert body["features"]["total_events"] == 10
    assert body["features"]["purchases"] == 1
    assert body["features"]["peak_activity_day"] is not None


async def test_implicit_rating_equals_the_core(
    settings: ApiSettings, redis_client: Redis, keyspace: Keyspace
) -> None:
    state = await write_state(
        redis_client, keyspace, settings.core, records("interactions", history("u-2"))
    )
    headers = bearer(settings, "u-2")
    async with serve(settings, clock) as api:
        product = await api.get(
            f"{PREFIX}/features/implicit-rating", params={"product_id": "p-1"}, headers=headers
        )
        group = await api.get(
            f"{PREFIX}/features/implicit-rating", params={"group_id": "g-1"}, headers=headers
        )
        untouched = await api.get(
            f"{PREFIX}/features/implicit-rating", params={"product_id": "p-404"}, headers=headers
        )
    assert product.status_code == 200, product.text
    body = product.json()
    core = implicit_rating("p:p-1", state.items["p:p-1"], NOW.timestamp(), settings.core)
    assert body["source"] == "stream"
    assert (body["product_id"], body["group_id"]) == ("p-1", None)
    assert body["rating"] == core.rating
    assert body["implicit_rating"] == core.implicit_rating
    assert body["explicit_rating"] == 5
    assert body["decayed_score"] == core.decayed_score
    assert body["events"] == core.events == 4
    assert datetime.fromisoformat(body["last_event_at"]).timestamp() == core.last_event_at
    assert body["config"] == {
        "half_life_days": settings.core.rating_half_life_days,
        "rating_scale": settings.core.rating_scale,
        "explicit_rating_share": settings.core.explicit_rating_share,
    }
    assert body["watermark"] == {"partition": PARTITION, "offset": 9}

    g = group.json()
    core_g = implicit_rating("g:g-1", state.items["g:g-1"], NOW.timestamp(), settings.core)
    assert (g["source"], g["rating"], g["events"]) == ("stream", core_g.rating, 3)
    assert g["explicit_rating"] is None

    none = untouched.json()
    assert untouched.status_code == 200
    assert (none["source"], none["rating"], none["events"]) == ("no_interactions", 0.0, 0)
    assert none["last_event_at"] is None


async def test_who_may_read_whom(
    settings: ApiSettings, redis_client: Redis, keyspace: Keyspace
) -> None:
    await write_state(
        redis_client, keyspace, settings.core, records("interactions", history("u-3"))
    )
    url = f"{PREFIX}/user-profile/behavioral"
    async with serve(settings, clock) as api:
        anonymous = await api.get(url)
        other = await api.get(url, params={"user_id": "u-3"}, headers=bearer(settings, "u-4"))
        own = await api.get(url, params={"user_id": "u-3"}, headers=bearer(settings, "u-3"))
        admin = await api.get(
            url, params={"user_id": "u-3"}, headers=bearer(settings, "ops", admin=True)
        )
        admin_key = await api.get(url, params={"user_id": "u-3"}, headers={"X-API-Key": ADMIN_KEY})
        track_key = await api.get(url, params={"user_id": "u-3"}, headers={"X-API-Key": TRACK_KEY})
        rating_other = await api.get(
            f"{PREFIX}/features/implicit-rating",
            params={"product_id": "p-1", "user_id": "u-3"},
            headers=bearer(settings, "u-4"),
        )
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "forbidden"
    assert rating_other.status_code == 403
    assert track_key.status_code == 403
    for allowed in (own, admin, admin_key):
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["user_id"] == "u-3"
        assert allowed.json()["features"]["total_events"] == 10


async def test_cold_start_user_gets_zeros_not_404(settings: ApiSettings) -> None:
    headers = bearer(settings, "newcomer")
    async with serve(settings, clock) as api:
        profile = await api.get(f"{PREFIX}/user-profile/behavioral", headers=headers)
        rating = await api.get(
            f"{PREFIX}/features/implicit-rating", params={"group_id": "g-1"}, headers=headers
        )
    assert profile.status_code == 200
    body = profile.json()
    assert body["source"] == "cold_start"
    assert body["watermark"] is None
    assert body["features"]["total_events"] == 0
    assert body["features"]["engagement_score"] == 0.0
    assert body["features"]["days_since_last_event"] is None
    assert rating.status_code == 200
    assert (rating.json()["source"], rating.json()["rating"]) == ("cold_start", 0.0)


@pytest.mark.parametrize(
    "params",
    [{}, {"product_id": "p-1", "group_id": "g-1"}, {"product_id": "has space"}],
)
async def test_rating_needs_exactly_one_valid_item(
    settings: ApiSettings, params: dict[str, str]
) -> None:
    async with serve(settings, clock) as api:
        response = await api.get(
            f"{PREFIX}/features/implicit-rating", params=params, headers=bearer(settings, "u-1")
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


async def test_reads_are_503_with_retry_after_when_redis_is_down(
    kafka_bootstrap: str, keyspace: Keyspace, topic_name: str
) -> None:
    down = api_settings(f"redis://{closed_address()}/0", kafka_bootstrap, keyspace, topic_name)
    async with serve(down, clock) as api:
        response = await api.get(f"{PREFIX}/user-profile/behavioral", headers=bearer(down, "u-1"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
    assert response.headers["Retry-After"] == "1"
