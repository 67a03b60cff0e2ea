"""Feature recomputation (extract-batch) and erasure through the API, on real Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from recstream.apply.batch import apply_batch
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.store.redis import RedisStore
from recstream_api.settings import ApiSettings

from .test_api import ADMIN_KEY, PREFIX, TRACK_KEY, api_settings, bearer, serve
from .test_api_recommend import (
    RECS,
    action,
    api,
    as_records,
    clock,
    load_shop,
    settings,
    shop_events,
)

pytestmark = pytest.mark.integration

__all__ = ["api", "settings"]  # fixtures

EXTRACT = f"{PREFIX}/features/extract-batch"
SHOP_USERS = {"v1", "v2", "v3", "v4", "u-me"}


async def extract(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(EXTRACT, json=body, headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def tamper(redis: Redis, keyspace: Keyspace, user: str) -> None:
    """Change a stored state the way an older fold might have: a category count lost."""
    store = RedisStore(redis, keyspace)
    state = await store.get_user(user)
    assert state is not None
    assert state.categories
    state.categories = {}
    await redis.hset(keyspace.user_state(user), "st", state.to_json())


# --- POST /features/extract-batch -------------------------------------------------------


async def test_extract_batch_reports_and_writes_differences(
    api: httpx.AsyncClient, redis_client: Redis, keyspace: Keyspace
) -> None:
    clean = await extract(api, {"user_ids": ["u-me", "v1", "nobody"]})
    statuses = {u["user_id"]: u["status"] for u in clean["users"]}
    assert statuses == {"u-me": "unchanged", "v1": "unchanged", "nobody": "missing"}
    assert all(u["differences"] == {} for u in clean["users"])
    assert clean["summary"] == {"unchanged": 2, "missing": 1}
    assert clean["next_cursor"] is None

    await tamper(redis_client, keyspace, "v1")
    report = await extract(api, {"user_ids": ["v1"]})
    [v1] = report["users"]
    assert (v1["status"], v1["state_differs"]) == ("changed", True)
    assert v1["differences"]["categories_explored"] == {"stored": 0, "recomputed": 1}
    still = await RedisStore(redis_client, keyspace).get_user("v1")
    assert still is not None
    assert still.categories == {}, "not written without write: true"

    written = await extract(api, {"user_ids": ["v1"], "write": True})
    assert written["users"][0]["status"] == "written"
    fixed = await RedisStore(redis_client, keyspace).get_user("v1")
    assert fixed is not None
    assert fixed.categories == {"kitchen": 3}
    again = await extract(api, {"user_ids": ["v1"]})
    assert again["users"][0]["status"] == "unchanged"


async def test_extract_batch_walks_all_users_in_bounded_pages(
    api: httpx.AsyncClient, redis_client: Redis, keyspace: Keyspace
) -> None:
    await tamper(redis_client, keyspace, "v2")
    seen: dict[str, str] = {}
    cursor: str | None = None
    pages = 0
    while True:
        body: dict[str, Any] = {"all_users": True, "page_size": 2, "write": True}
        if cursor is not None:
            body["cursor"] = cursor
        page = await extract(api, body)
        pages += 1
        seen.update({u["user_id"]: u["status"] for u in page["users"]})
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 500
    assert set(seen) == SHOP_USERS
    assert seen["v2"] == "written"
    assert {s for u, s in seen.items() if u != "v2"} == {"unchanged"}
    assert pages > 1


async def test_a_history_beyond_the_cap_is_reported_but_never_written(
    redis_url: str,
    kafka_bootstrap: str,
    keyspace: Keyspace,
    topic_name: str,
    redis_client: Redis,
) -> None:
    capped = api_settings(
        redis_url, kafka_bootstrap, keyspace, topic_name, core=CoreConfig(history_cap=3)
    )
    events = [
        action(f"h-{i}", "product_view", "busy", 60 - i, product_id=f"p-{i}") for i in range(5)
    ]
    store = RedisStore(redis_client, keyspace)
    await apply_batch(store, as_records(events, topic_name), capped.core)
    async with serve(capped, clock) as api:
        body = await extract(api, {"user_ids": ["busy"], "write": True})
    [busy] = body["users"]
    assert busy["status"] == "incomplete_history"
    assert busy["differences"]["total_events"] == {"stored": 5, "recomputed": 3}
    state = await store.get_user("busy")
    assert state is not None
    assert state.total_events == 5


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user_ids": ["u-1"], "all_users": True},
        {"user_ids": []},
        {"user_ids": [f"u-{i}" for i in range(101)]},
        {"user_ids": ["u-1"], "cursor": "5"},
        {"all_users": True, "cursor": "not-a-number"},
        {"all_users": True, "page_size": 0},
        {"user_ids": ["bad id"]},
    ],
)
async def test_bad_extract_requests_are_422(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await api.post(EXTRACT, json=body, headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


async def test_extract_batch_is_for_admins_only(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    body = {"user_ids": ["u-me"]}
    user = await api.post(EXTRACT, json=body, headers=bearer(settings, "u-me"))
    track = await api.post(EXTRACT, json=body, headers={"X-API-Key": TRACK_KEY})
    admin = await api.post(EXTRACT, json=body, headers=bearer(settings, "ops", admin=True))
    assert (user.status_code, track.status_code, admin.status_code) == (403, 403, 200)
    assert user.json()["error"]["message"] == "only an admin may recompute features"


# --- DELETE /users/{user_id} ------------------------------------------------------------


async def test_a_user_erases_themselves_and_comes_back_cold(
    api: httpx.AsyncClient, settings: ApiSettings, redis_client: Redis, keyspace: Keyspace
) -> None:
    store = RedisStore(redis_client, keyspace)
    pop_key = keyspace.stat("pop", "p:p-Z")
    before = await redis_client.zscore(pop_key, "p:p-Z")
    headers = bearer(settings, "u-me")

    response = await api.delete(f"{PREFIX}/users/u-me", headers=headers)
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["user_id"] == "u-me"
    assert receipt["erased"] is True
    assert receipt["requested_by"] == "user:u-me"
    removed = receipt["removed"]
    assert (removed["history_events"], removed["items"]) == (4, 2)
    assert len(removed["sessions"]) == 2
    assert removed["statistic_updates"] > 0

    assert await store.get_user("u-me") is None
    after = await redis_client.zscore(pop_key, "p:p-Z")
    assert before is not None
    assert abs(after or 0.0) <= 1e-9 * before, "p-Z was only ever touched by u-me"
    recs = await api.post(RECS, json={}, headers=headers)
    assert recs.json()["source"] == "cold_start"

    old_events = as_records(shop_events(), settings.kafka.interactions_topic, first_offset=100)
    replay = await apply_batch(store, old_events, settings.core)
    assert replay.erased == 4, "a replay drops the erased user's old events"
    assert await store.get_user("u-me") is None

    twice = await api.delete(f"{PREFIX}/users/u-me", headers=headers)
    assert twice.status_code == 200
    assert twice.json()["erased"] is False


async def test_only_the_user_or_an_admin_may_erase(
    api: httpx.AsyncClient, settings: ApiSettings, redis_client: Redis, keyspace: Keyspace
) -> None:
    store = RedisStore(redis_client, keyspace)
    other = await api.delete(f"{PREFIX}/users/v1", headers=bearer(settings, "u-me"))
    track = await api.delete(f"{PREFIX}/users/v1", headers={"X-API-Key": TRACK_KEY})
    anonymous = await api.delete(f"{PREFIX}/users/v1")
    invalid = await api.delete(f"{PREFIX}/users/a%20b", headers=bearer(settings, "ops", admin=True))
    assert (other.status_code, track.status_code, anonymous.status_code) == (403, 403, 401)
    assert invalid.status_code == 422
    assert await store.get_user("v1") is not None
    admin = await api.delete(f"{PREFIX}/users/v1", headers=bearer(settings, "ops", admin=True))
    assert admin.status_code == 200
    assert admin.json()["requested_by"] == "user:ops"
    assert await store.get_user("v1") is None
    key = await api.delete(f"{PREFIX}/users/v2", headers={"X-API-Key": ADMIN_KEY})
    assert key.status_code == 200
    assert key.json()["requested_by"] == "api-key:ops"


async def test_erasure_counts_only_what_was_stored(
    settings: ApiSettings, redis_client: Redis, keyspace: Keyspace
) -> None:
    await load_shop(RedisStore(redis_client, keyspace), settings)
    async with serve(settings, clock) as client:
        response = await client.delete(f"{PREFIX}/users/v4", headers=bearer(settings, "v4"))
    removed = response.json()["removed"]
    assert (removed["history_events"], removed["items"]) == (2, 1)
