"""Limits of the API (OWASP API4) in process, on a real Redis and a real broker: per-caller
rate limits with 429 and Retry-After, query parameter bounds, batch caps, the body cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace
from recstream_api.main import create_app
from recstream_api.settings import ApiSettings, AuthSettings, RateLimitSettings
from tests.integration.test_api import (
    ADMIN_KEY,
    PREFIX,
    TRACK_KEY,
    api_settings,
    bearer,
    create_topic,
    event,
    serve,
)

pytestmark = pytest.mark.integration

TIGHT = RateLimitSettings(
    track_per_second=0.01,
    track_burst=3,
    query_per_second=0.01,
    query_burst=2,
    api_key_factor=2,
)


@pytest.fixture
def settings(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> ApiSettings:
    return api_settings(redis_url, kafka_bootstrap, keyspace, topic_name, rate_limits=TIGHT)


@pytest.fixture
async def api(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    await create_topic(settings.kafka.bootstrap_servers, settings.kafka.interactions_topic)
    async with serve(settings) as client:
        yield client


def assert_rate_limited(response: httpx.Response, kind: str) -> None:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 101  # one token at 0.01/s: 100 s
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"] == {"limit": kind, "retry_after_seconds": retry_after}


async def test_tracking_is_limited_per_user(api: httpx.AsyncClient, settings: ApiSettings) -> None:
    url = f"{PREFIX}/track-interaction"
    ana = bearer(settings, "ana")
    for _ in range(3):
        response = await api.post(url, json=event("ana"), headers=ana)
        assert response.status_code == 202, response.text
    assert_rate_limited(await api.post(url, json=event("ana"), headers=ana), "track")
    # another user has a bucket of their own, and ana may still read
    assert (
        await api.post(url, json=event("ben"), headers=bearer(settings, "ben"))
    ).status_code == 202
    profile = await api.get(f"{PREFIX}/user-profile/behavioral", headers=ana)
    assert profile.status_code == 200


async def test_recommendation_reads_are_limited_per_user(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    ana = bearer(settings, "ana")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{PREFIX}/recommendations", {"json": {"limit": 3}}),
        ("GET", f"{PREFIX}/sequential/next-products", {"params": {"product_id": "p-1"}}),
    ]
    for method, url, kwargs in calls:
        response = await api.request(method, url, headers=ana, **kwargs)
        assert response.status_code == 200, response.text
    for method, url, kwargs in calls:
        response = await api.request(method, url, headers=ana, **kwargs)
        assert_rate_limited(response, "query")
    session = await api.get(f"{PREFIX}/session/recommendations", headers=bearer(settings, "ben"))
    assert session.status_code == 200


async def test_api_keys_have_larger_buckets_and_health_is_never_limited(
    api: httpx.AsyncClient,
) -> None:
    url = f"{PREFIX}/track-interaction"
    for index in range(6):  # 3 x 2
        response = await api.post(url, json=event(f"u-{index}"), headers={"X-API-Key": TRACK_KEY})
        assert response.status_code == 202, response.text
    refused = await api.post(url, json=event("u-9"), headers={"X-API-Key": TRACK_KEY})
    assert_rate_limited(refused, "track")
    # the admin key is another caller
    admin = await api.post(url, json=event("u-9"), headers={"X-API-Key": ADMIN_KEY})
    assert admin.status_code == 202
    for _ in range(10):
        assert (await api.get(f"{PREFIX}/health")).status_code == 200


async def test_refused_credentials_are_401_not_429(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    url = f"{PREFIX}/user-profile/behavioral"
    for _ in range(5):
        response = await api.get(url, headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
    assert (await api.get(url, headers=bearer(settings, "ana"))).status_code == 200


async def test_limits_switched_off(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> None:
    off = TIGHT.model_copy(update={"enabled": False})
    settings = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name, rate_limits=off)
    async with serve(settings) as client:
        for _ in range(10):
            response = await client.post(
                f"{PREFIX}/recommendations", json={"limit": 1}, headers=bearer(settings, "ana")
            )
            assert response.status_code == 200, response.text


# --- bounds -------------------------------------------------------------------------------

LIMITED_READS = [
    ("GET", f"{PREFIX}/recommendations/explain", {"product_id": "p-1"}),
    ("GET", f"{PREFIX}/session/recommendations", {}),
    ("GET", f"{PREFIX}/sequential/next-products", {}),
]


@pytest.mark.parametrize("limit", ["0", "-1", "101", "1e9", "ten"])
async def test_result_sizes_are_bounded(
    redis_url: str,
    kafka_bootstrap: str,
    keyspace: Keyspace,
    topic_name: str,
    redis_client: Redis,
    limit: str,
) -> None:
    settings = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)
    headers = bearer(settings, "ana")
    async with serve(settings) as client:
        for method, url, params in LIMITED_READS:
            response = await client.request(
                method, url, params={**params, "limit": limit}, headers=headers
            )
            assert response.status_code == 422, (url, limit, response.text)
        body = await client.post(
            f"{PREFIX}/recommendations", json={"limit": limit}, headers=headers
        )
        assert body.status_code == 422


async def test_lists_in_requests_are_capped(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> None:
    settings = api_settings(
        redis_url, kafka_bootstrap, keyspace, topic_name, max_events_per_request=5
    )
    async with serve(settings) as client:
        batch = {"events": [event("ana") for _ in range(6)]}
        track = await client.post(
            f"{PREFIX}/track-interaction", json=batch, headers=bearer(settings, "ana")
        )
        assert track.status_code == 422
        assert "1 to 5 events" in track.json()["error"]["message"]
        filters = {"exclude_product_ids": [f"p-{i}" for i in range(101)]}
        recommend = await client.post(
            f"{PREFIX}/recommendations",
            json={"filters": filters},
            headers=bearer(settings, "ana"),
        )
        assert recommend.status_code == 422
        users = {"user_ids": [f"u-{i}" for i in range(settings.extract_max_users + 1)]}
        extract = await client.post(
            f"{PREFIX}/features/extract-batch", json=users, headers={"X-API-Key": ADMIN_KEY}
        )
        assert extract.status_code == 422
        assert extract.json()["error"]["details"] == {"max_users": settings.extract_max_users}


async def test_every_body_route_has_the_body_cap(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> None:
    settings = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)
    oversize = b'{"user_ids": [' + b'"u-1",' * settings.max_body_bytes + b'"u-2"]}'
    async with serve(settings) as client:
        for url in ("track-interaction", "recommendations", "features/extract-batch"):
            response = await client.post(
                f"{PREFIX}/{url}",
                content=oversize,
                headers={"X-API-Key": ADMIN_KEY, "Content-Type": "application/json"},
            )
            assert response.status_code == 413, url
            assert response.json()["error"]["details"] == {"max_bytes": settings.max_body_bytes}


def test_the_document_names_the_rate_limit_answer() -> None:
    auth = AuthSettings(jwt_secret="only-for-the-openapi-document-0123456789abcdef")
    document = create_app(ApiSettings(environment="prod", auth=auth)).openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            limited = "429" in operation["responses"]
            assert limited == bool(operation.get("security")), (method, path)
            if limited:
                assert "Retry-After" in operation["responses"]["429"]["headers"]
