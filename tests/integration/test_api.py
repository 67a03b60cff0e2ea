"""The query API in process, on a real Redis and a real broker: health and tracking.

The helpers at the top are shared with ``test_api_reads.py``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio import Redis

from recstream.contract.events import EventType, decode_event
from recstream.contract.keyspace import Keyspace
from recstream.platform.settings import KafkaSettings, RedisSettings
from recstream_api.auth import issue_token
from recstream_api.main import create_app
from recstream_api.settings import ApiKeyEntry, ApiSettings, AuthSettings, hash_api_key
from recstream_cli.localstack import free_port
from tests.unit.logcapture import captured_api_log

pytestmark = pytest.mark.integration

PREFIX = "/api/behavioral-ml"
SECRET = "integration-secret-long-enough-0123456789abcdef"
TRACK_KEY = "it-track-key"
ADMIN_KEY = "it-admin-key"
PARTITIONS = 3


def api_settings(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic: str, **overrides: Any
) -> ApiSettings:
    keys = (
        ApiKeyEntry(sha256=hash_api_key(TRACK_KEY), scopes=frozenset({"track"}), name="shop"),
        ApiKeyEntry(sha256=hash_api_key(ADMIN_KEY), scopes=frozenset({"admin"}), name="ops"),
    )
    return ApiSettings(
        redis=RedisSettings(url=redis_url, key_prefix=keyspace.prefix, socket_timeout_seconds=1),
        kafka=KafkaSettings(
            bootstrap_servers=kafka_bootstrap,
            interactions_topic=topic,
            catalog_topic=f"{topic}.catalog",
            erasures_topic=f"{topic}.erasures",
        ),
        auth=AuthSettings(jwt_secret=SECRET, api_keys=keys),
        health_timeout_seconds=2.0,
        produce_timeout_seconds=5.0,
        **overrides,
    )


@asynccontextmanager
async def serve(
    settings: ApiSettings, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client talking to it in process."""
    app = create_app(settings) if clock is None else create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        yield client


def bearer(settings: ApiSettings, user_id: str, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, user_id, admin=admin)}"}


def closed_address() -> str:
    """A loopback port nothing listens on."""
    return f"127.0.0.1:{free_port()}"


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


async def read_topic(bootstrap: str, topic: str, count: int, within: float = 15.0) -> list[Any]:
    """The first ``count`` records of every partition of ``topic``, without a consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        async with asyncio.timeout(within):
            while topic not in await consumer.topics():  # noqa: ASYNC110 - polling the broker
                await asyncio.sleep(0.1)
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[Any] = []
        async with asyncio.timeout(within):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=200)
                for batch in batches.values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


def event(user_id: str, event_type: str = "product_view", **fields: Any) -> dict[str, Any]:
    """A valid event that happened a minute ago (by the real clock)."""
    body: dict[str, Any] = {
        "event_id": f"e-{uuid.uuid4().hex[:12]}",
        "event_type": event_type,
        "user_id": user_id,
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    }
    if event_type in {"product_view", "add_to_cart", "purchase_completed"}:
        body["product_id"] = "p-1"
    body.update(fields)
    return body


@pytest.fixture
def settings(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> ApiSettings:
    return api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)


@pytest.fixture
async def client(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    await create_topic(settings.kafka.bootstrap_servers, settings.kafka.interactions_topic)
    async with serve(settings) as api:
        yield api


# --- health -----------------------------------------------------------------------------


async def test_health_reports_redis_and_broker(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PREFIX}/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"]
    assert body["redis"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert body["redis"]["latency_ms"] >= 0
    ready = await client.get(f"{PREFIX}/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"


async def test_health_is_503_when_redis_is_down(
    kafka_bootstrap: str, keyspace: Keyspace, topic_name: str
) -> None:
    settings = api_settings(f"redis://{closed_address()}/0", kafka_bootstrap, keyspace, topic_name)
    async with serve(settings) as api:
        response = await api.get(f"{PREFIX}/health")
        ready = await api.get(f"{PREFIX}/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["redis"]["ok"] is False
    assert "redis" in body["redis"]["error"]
    assert body["broker"]["ok"] is True
    assert ready.status_code == 503, "no read can serve without Redis: not ready"
    assert ready.json()["status"] == "unavailable"


async def test_broker_down_tracking_is_503_and_reads_still_work(
    redis_url: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> None:
    settings = api_settings(redis_url, closed_address(), keyspace, topic_name)
    async with serve(settings) as api:  # starts although the broker is unreachable
        health = await api.get(f"{PREFIX}/health")
        ready = await api.get(f"{PREFIX}/ready")
        track = await api.post(
            f"{PREFIX}/track-interaction", json=event("u-1"), headers=bearer(settings, "u-1")
        )
        profile = await api.get(
            f"{PREFIX}/user-profile/behavioral", headers=bearer(settings, "u-1")
        )
    assert health.status_code == 503
    assert health.json()["broker"]["ok"] is False
    assert health.json()["redis"]["ok"] is True
    assert ready.status_code == 200, "reads serve: the pod stays in its Service"
    assert ready.json()["status"] == "degraded"
    assert ready.json()["broker"]["ok"] is False
    assert track.status_code == 503
    assert track.json()["error"]["code"] == "broker_unavailable"
    assert track.headers["Retry-After"] == "1"
    assert profile.status_code == 200
    assert profile.json()["source"] == "cold_start"


# --- tracking ---------------------------------------------------------------------------


async def test_tracked_events_are_on_the_topic_keyed_by_user(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    events = [
        event("u-1"),
        event("u-1", "add_to_cart"),
        event("u-1", "product_search", query="rice"),
    ]
    response = await client.post(
        f"{PREFIX}/track-interaction", json={"events": events}, headers=bearer(settings, "u-1")
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["accepted"] == 3
    assert accepted["event_ids"] == [e["event_id"] for e in events]

    records = await read_topic(
        settings.kafka.bootstrap_servers, settings.kafka.interactions_topic, 3
    )
    assert len(records) == 3
    assert {r.key for r in records} == {b"u-1"}
    assert len({r.partition for r in records}) == 1  # one key, one partition, in order
    by_offset = sorted(records, key=lambda r: r.offset)
    assert [decode_event(r.value).event_id for r in by_offset] == accepted["event_ids"]
    positions = [(e["partition"], e["offset"]) for e in accepted["events"]]
    assert positions == [(r.partition, r.offset) for r in by_offset]
    first = decode_event(by_offset[0].value)
    assert (first.user_id, first.product_id) == ("u-1", "p-1")


async def test_track_api_key_tracks_any_user(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    response = await client.post(
        f"{PREFIX}/track-interaction", json=event("u-77"), headers={"X-API-Key": TRACK_KEY}
    )
    assert response.status_code == 202, response.text
    [record] = await read_topic(
        settings.kafka.bootstrap_servers, settings.kafka.interactions_topic, 1
    )
    assert record.key == b"u-77"
    assert json.loads(record.value)["event_id"] == response.json()["event_ids"][0]


async def test_refused_requests_publish_nothing(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    url, headers = f"{PREFIX}/track-interaction", bearer(settings, "u-1")
    other = await client.post(url, json={"events": [event("u-1"), event("u-2")]}, headers=headers)
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "forbidden"
    assert other.json()["error"]["details"] == {"user_ids": ["u-2"]}

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    bad = [
        event("u-1", product_id=None),
        event("u-1"),
        event("u-1", occurred_at=future),
        event("u-1", "rating_submitted", product_id="p-1", rating=9),
    ]
    atomic = await client.post(f"{url}?atomic=true", json={"events": bad}, headers=headers)
    assert atomic.status_code == 422
    error = atomic.json()["error"]
    assert error["code"] == "invalid_events"
    assert "3 of 4 events are invalid; nothing was published" in error["message"]
    by_index = {d["index"]: d for d in error["details"]}
    assert sorted(by_index) == [0, 2, 3]
    assert by_index[0]["event_id"] == bad[0]["event_id"]
    assert "requires product_id" in by_index[0]["errors"][0]["msg"]
    assert by_index[2]["errors"][0]["type"] == "future_event"
    assert by_index[3]["errors"][0]["loc"].endswith("rating")
    only_bad = [bad[0], bad[2]]
    refused = await client.post(url, json={"events": only_bad}, headers=headers)
    assert refused.status_code == 422
    single = await client.post(url, json=bad[0], headers=headers)
    assert single.status_code == 422

    marker = event("u-1")
    ok = await client.post(url, json=marker, headers=headers)
    assert ok.status_code == 202
    assert ok.json()["rejected"] == []
    [first] = await read_topic(
        settings.kafka.bootstrap_servers, settings.kafka.interactions_topic, 1
    )
    assert json.loads(first.value)["event_id"] == marker["event_id"]  # nothing before it


async def test_a_batch_publishes_its_valid_events_and_reports_each_bad_one(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    url, headers = f"{PREFIX}/track-interaction", bearer(settings, "u-1")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    batch = [
        event("u-1"),
        event("u-1", product_id=None),
        event("u-1"),
        event("u-1", occurred_at=future),
        "not an object",
        event("u-1"),
    ]
    response = await client.post(url, json={"events": batch}, headers=headers)
    assert response.status_code == 202, response.text
    body = response.json()
    good = [batch[0], batch[2], batch[5]]
    assert body["accepted"] == 3
    assert body["event_ids"] == [e["event_id"] for e in good]  # type: ignore[index]
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [1, 3, 4]
    assert rejected[1]["event_id"] == batch[1]["event_id"]  # type: ignore[index]
    assert rejected[3]["errors"][0]["type"] == "future_event"
    assert rejected[4]["event_id"] is None
    assert rejected[4]["errors"][0]["type"] == "not_an_object"
    marker = event("u-1")
    assert (await client.post(url, json=marker, headers=headers)).status_code == 202
    records = await read_topic(
        settings.kafka.bootstrap_servers, settings.kafka.interactions_topic, 4
    )
    published = [json.loads(r.value)["event_id"] for r in records]
    assert published == [*body["event_ids"], marker["event_id"]], "nothing of the bad ones"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"events": []}, "1 to 100 events"),
        ({"events": [{}] * 101}, "1 to 100 events"),
        ({"events": [], "other": 1}, "exactly {'events'"),
        ({"event_type": "teleport", "event_id": "x"}, "teleport"),
        ({"events": ["not an object"]}, "JSON object"),
    ],
)
async def test_malformed_track_bodies_are_422(
    client: httpx.AsyncClient, settings: ApiSettings, body: dict[str, Any], fragment: str
) -> None:
    response = await client.post(
        f"{PREFIX}/track-interaction", json=body, headers=bearer(settings, "u-1")
    )
    assert response.status_code == 422
    assert fragment in json.dumps(response.json()["error"])


async def test_track_body_that_is_not_json_is_422(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    response = await client.post(
        f"{PREFIX}/track-interaction",
        content=b"{not json",
        headers={**bearer(settings, "u-1"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


async def test_track_needs_credentials(client: httpx.AsyncClient, settings: ApiSettings) -> None:
    url = f"{PREFIX}/track-interaction"
    missing = await client.post(url, json=event("u-1"))
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "not_authenticated"
    forged = issue_token(settings.model_copy(update={"auth": AuthSettings()}), "u-1")
    wrong = await client.post(url, json=event("u-1"), headers={"Authorization": f"Bearer {forged}"})
    assert wrong.status_code == 401
    assert "signature does not verify" in wrong.json()["error"]["message"]
    bad_key = await client.post(url, json=event("u-1"), headers={"X-API-Key": "nope"})
    assert bad_key.status_code == 401


async def test_an_unknown_event_type_is_told_the_valid_types_plainly(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    response = await client.post(
        f"{PREFIX}/track-interaction",
        json=event("u-1", "teleport"),
        headers=bearer(settings, "u-1"),
    )
    assert response.status_code == 422
    (bad,) = response.json()["error"]["details"]
    (problem,) = bad["errors"]
    assert problem["type"] == "union_tag_invalid"
    assert "'teleport'" in problem["msg"]
    assert problem["msg"].endswith("expected tags: " + ", ".join(t.value for t in EventType))
    assert "EventType" not in response.text


GARBAGE_TOKENS = (
    "not-a-jwt",
    "a.b.c",
    "eyJhbGciOiJIUzI1NiJ9.@@@.x",
    # signed with the API's secret, but the payload is no UTF-8 / no JSON
    jwt.api_jws.encode(b"\xc3\x28", SECRET, algorithm="HS256"),
    jwt.api_jws.encode(b"not json", SECRET, algorithm="HS256"),
)


async def test_a_garbage_bearer_token_is_refused_in_the_api_s_words(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    with captured_api_log(settings) as log:
        for token in GARBAGE_TOKENS:
            response = await client.get(
                f"{PREFIX}/user-profile/behavioral", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401
            error = response.json()["error"]
            assert error["code"] == "not_authenticated"
            assert error["message"] == "invalid token: the bearer token is not a valid JWT"
    causes = [r["msg"] for r in log.api_records() if r["logger"] == "recstream_api.auth"]
    assert len(causes) == len(GARBAGE_TOKENS)
    assert all(c.startswith("bearer token refused: DecodeError: ") for c in causes)
    assert "codec can't decode" in " ".join(causes)  # in the log, never in an answer


async def test_oversize_body_is_413(client: httpx.AsyncClient, settings: ApiSettings) -> None:
    big = {"events": [event("u-1", properties={"k": "x" * 200}) for _ in range(400)]}
    payload = json.dumps(big).encode()
    assert len(payload) > settings.max_body_bytes
    response = await client.post(
        f"{PREFIX}/track-interaction",
        content=payload,
        headers={**bearer(settings, "u-1"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    streamed = await client.post(
        f"{PREFIX}/track-interaction",
        content=chunks(),
        headers={**bearer(settings, "u-1"), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


async def test_unknown_route_has_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PREFIX}/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_openapi_documents_errors_and_the_event_contract(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get(f"{PREFIX}/openapi.json")).json()
    track = document["paths"][f"{PREFIX}/track-interaction"]["post"]
    assert {"202", "401", "403", "413", "422", "503"} <= set(track["responses"])
    schema = track["requestBody"]["content"]["application/json"]["schema"]
    assert schema["title"] == "TrackRequest"
    assert "ProductView" in document["components"]["schemas"]
    for path in ("/user-profile/behavioral", "/features/implicit-rating"):
        responses = document["paths"][f"{PREFIX}{path}"]["get"]["responses"]
        assert {"200", "401", "403", "422", "503"} <= set(responses)
        assert "examples" in document["components"]["schemas"]["ErrorResponse"]
