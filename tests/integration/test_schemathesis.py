"""The API against its own OpenAPI document, with schemathesis: generated requests (valid
and invalid) to every operation, in process, on a real Redis and a real broker, with an
admin token. No answer may be a 5xx, and every answer must match the document (status
code, content type, body schema), an invalid request must be refused and a request
without credentials must be refused with 401.

The number of examples is bounded and the generation derandomized, so the test is
repeatable and takes seconds. The rate limits are off (hundreds of calls with one token).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.python.asgi import shutdown_lifespans
from starlette.types import Receive, Scope, Send

from recstream.contract.keyspace import Keyspace
from recstream_api.auth import issue_token
from recstream_api.main import create_app
from recstream_api.settings import ApiSettings, AuthSettings, RateLimitSettings
from tests.integration.test_api import PREFIX, api_settings, bearer, create_topic, event, serve

from ..conftest import sync_redis

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25
TRACK_PATH = f"{PREFIX}/track-interaction"


@pytest.fixture(scope="module")
def api_settings_for_fuzzing(redis_url: str, kafka_bootstrap: str) -> Iterator[ApiSettings]:
    keyspace = Keyspace(prefix=f"t{uuid.uuid4().hex[:12]}")
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    with ThreadPoolExecutor(1) as pool:  # its own event loop, not the tests' one
        pool.submit(asyncio.run, create_topic(kafka_bootstrap, topic)).result()
    settings = api_settings(
        redis_url,
        kafka_bootstrap,
        keyspace,
        topic,
        environment="prod",
        rate_limits=RateLimitSettings(enabled=False),
    )
    yield settings
    client = sync_redis(redis_url)
    try:
        for key in client.scan_iter(match=f"{keyspace.prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()


class DeferredApp:
    """The ASGI app the schema is bound to at import; the fixture plugs the real app in (it
    needs the addresses of the test services). schemathesis starts its lifespan on the
    first call, in an event loop thread of its own."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the app fixture plugs the app in"
        await self.app(scope, receive, send)


APP = DeferredApp()


@pytest.fixture(scope="module")
def app(api_settings_for_fuzzing: ApiSettings) -> Iterator[DeferredApp]:
    APP.app = create_app(api_settings_for_fuzzing)
    try:
        yield APP
    finally:
        shutdown_lifespans()
        APP.app = None


@pytest.fixture(scope="module")
def admin_headers(api_settings_for_fuzzing: ApiSettings) -> dict[str, str]:
    token = issue_token(api_settings_for_fuzzing, "fuzz-admin", admin=True)
    return {"Authorization": f"Bearer {token}"}


def _document() -> dict[str, Any]:
    """The OpenAPI document; it does not depend on the addresses, so an app that is never
    started can give it."""
    auth = AuthSettings(jwt_secret="only-for-the-openapi-document-0123456789abcdef")
    return create_app(ApiSettings(environment="prod", auth=auth)).openapi()


# An invalid request may also be refused for its size (413, the body cap) before validation.
REJECTED = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {"expected-statuses": REJECTED},
            # A request valid by the document may still break a rule the document cannot
            # state: exactly one of two query parameters, fields an event type requires,
            # an event time relative to the server clock. Those answer 422 by design.
            "positive_data_acceptance": {"enabled": False},
        },
        # The coverage phase walks every boundary of the track body (15 event types and a
        # batch): thousands of requests; the track route gets the examples and the bounded
        # fuzzing phase instead.
        "operations": [{"include-path": TRACK_PATH, "phases": {"coverage": {"enabled": False}}}],
    }
)
schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)
schema.app = APP


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, app: DeferredApp, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(headers=admin_headers)


# --- what schemathesis found, pinned down ----------------------------------------------------


@pytest.fixture
async def api(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    settings = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)
    await create_topic(kafka_bootstrap, topic_name)
    async with serve(settings) as client:
        yield client, bearer(settings, "u-1")


@pytest.mark.parametrize(
    "change",
    [{"price": False}, {"price": "12.5"}, {"quantity": "3"}, {"rating": True}, {"user_id": 7}],
)
async def test_track_refuses_values_of_another_json_type(
    api: tuple[httpx.AsyncClient, dict[str, str]], change: dict[str, Any]
) -> None:
    client, headers = api
    body = {**event("u-1", "rating_submitted", rating=4), **change}
    response = await client.post(f"{PREFIX}/track-interaction", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_events"


async def test_request_models_refuse_values_of_another_json_type(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, headers = api
    for body in (
        {"filters": {"exclude_purchased": 0}},
        {"limit": "5"},
        {"limit": 5.0},
        {"context": {"product_id": 9}},
    ):
        response = await client.post(f"{PREFIX}/recommendations", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
    fine = await client.post(f"{PREFIX}/recommendations", json={"limit": 5}, headers=headers)
    assert fine.status_code == 200


async def test_a_body_that_is_not_utf8_is_422(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, headers = api
    for route in ("recommendations", "track-interaction"):
        response = await client.post(
            f"{PREFIX}/{route}",
            content=b"\xff\xfe{=\x80",
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] in {"invalid_request"}


async def test_a_repeated_query_parameter_is_refused(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, headers = api
    url = f"{PREFIX}/user-profile/behavioral"
    response = await client.get(f"{url}?user_id=u-1&user_id=u-2", headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"repeated": ["user_id"]}
    # a parameter the route does not take is ignored, repeated or not
    fine = await client.get(f"{url}?user_id=u-1&utm=a&utm=b", headers=headers)
    assert fine.status_code == 200
