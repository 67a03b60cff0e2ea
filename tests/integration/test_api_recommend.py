"""The recommendation endpoints in process, on state written the consumer's way in real Redis.

A small shop: users ``v1``..``v4`` viewed p-A then p-B (or p-C) a few hours
ago; ``u-me`` bought p-Z earlier and is viewing p-A and searching now. The catalog knows
the products' categories, one product out of stock and an open group deal
for p-B. The helpers at the top are shared with ``test_api_recommend_admin.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from recstream.apply.batch import RawRecord, apply_batch, apply_catalog_batch
from recstream.contract.keyspace import Keyspace
from recstream.store.port import StateStore
from recstream.store.redis import RedisStore
from recstream_api.settings import ApiSettings

from .test_api import ADMIN_KEY, PREFIX, TRACK_KEY, api_settings, bearer, serve

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 7, 18, 30, tzinfo=UTC)
PARTITION = 2
RECS = f"{PREFIX}/recommendations"
ME_LAST = 13  # the offset of u-me's last event


def clock() -> datetime:
    return NOW


def view(
    event_id: str, user: str, minutes_ago: float, product: str, **fields: Any
) -> dict[str, Any]:
    return action(event_id, "product_view", user, minutes_ago, product_id=product, **fields)


def action(
    event_id: str, event_type: str, user: str, minutes_ago: float, **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "user_id": user,
        "occurred_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        **fields,
    }


def shop_events() -> list[dict[str, Any]]:
    kitchen = {"category": "kitchen"}
    return [
        view("v1-1", "v1", 240, "p-A", **kitchen),
        view("v1-2", "v1", 238, "p-B", **kitchen),
        view("v1-3", "v1", 236, "p-OUT", **kitchen),
        view("v2-1", "v2", 200, "p-A", **kitchen),
        view("v2-2", "v2", 199, "p-B", **kitchen),
        action("v2-3", "group_view", "v2", 198, group_id="g-1"),
        view("v3-1", "v3", 180, "p-A", **kitchen),
        view("v3-2", "v3", 179, "p-C", category="garden"),
        view("v4-1", "v4", 170, "p-B", **kitchen),
        action("v4-2", "add_to_cart", "v4", 169, product_id="p-B", **kitchen),
        view("me-1", "u-me", 300, "p-Z", **kitchen),
        action("me-2", "purchase_completed", "u-me", 299, product_id="p-Z", price=30.0),
        view("me-3", "u-me", 5, "p-A", **kitchen),
        action("me-4", "product_search", "u-me", 4, query="frying pan"),
    ]


CATALOG: list[dict[str, Any]] = [
    {"kind": "product", "product_id": "p-A", "category": "kitchen", "price": 20.0},
    {"kind": "product", "product_id": "p-B", "category": "kitchen", "price": 25.0},
    {"kind": "product", "product_id": "p-C", "category": "garden", "price": 10.0},
    {"kind": "product", "product_id": "p-Z", "category": "kitchen", "price": 30.0},
    {"kind": "product", "product_id": "p-OUT", "category": "kitchen", "in_stock": False},
    {
        "kind": "group",
        "group_id": "g-1",
        "product_id": "p-B",
        "group_price": 19.0,
        "target_size": 5,
        "current_size": 3,
        "closes_at": (NOW + timedelta(hours=10)).isoformat(),
    },
]


def as_records(
    events: list[dict[str, Any]], topic: str = "interactions", first_offset: int = 0
) -> list[RawRecord]:
    stamp = int(NOW.timestamp() * 1000)
    return [
        RawRecord(
            topic,
            PARTITION,
            first_offset + i,
            stamp,
            e["user_id"].encode(),
            json.dumps(e).encode(),
        )
        for i, e in enumerate(events)
    ]


async def load_shop(store: StateStore, settings: ApiSettings) -> list[RawRecord]:
    catalog = [
        RawRecord("catalog", 0, i, int(NOW.timestamp() * 1000), None, json.dumps(r).encode())
        for i, r in enumerate(CATALOG)
    ]
    assert (await apply_catalog_batch(store, catalog)).applied == len(CATALOG)
    batch = as_records(shop_events(), settings.kafka.interactions_topic)
    report = await apply_batch(store, batch, settings.core)
    assert report.applied == len(batch)
    return batch


@pytest.fixture
def settings(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> ApiSettings:
    return api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)


@pytest.fixture
async def api(
    settings: ApiSettings, redis_client: Redis, keyspace: Keyspace
) -> AsyncIterator[httpx.AsyncClient]:
    await load_shop(RedisStore(redis_client, keyspace), settings)
    async with serve(settings, clock) as client:
        yield client


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]]


# --- POST /recommendations --------------------------------------------------------------


async def test_recommendations_follow_the_session_and_respect_the_filters(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    response = await api.post(RECS, json={"limit": 20}, headers=bearer(settings, "u-me"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == "u-me"
    assert body["cold_start"] is False
    assert body["source"] in {"content", "sequential", "session"}
    assert datetime.fromisoformat(body["computed_at"]) == NOW
    assert body["watermark"] == {"partition": PARTITION, "offset": ME_LAST}
    assert body["intent"]["kind"] == "research", "a search in the current session"
    assert 0 <= body["intent"]["confidence"] <= 1
    assert sum(body["weights"].values()) == pytest.approx(1.0)
    found = ids(body)
    assert "p-B" in found, "A was followed by B in other sessions"
    assert "p-Z" not in found, "already purchased"
    assert "p-OUT" not in found, "out of stock"
    assert [i["rank"] for i in body["items"]] == list(range(1, len(found) + 1))
    for item in body["items"]:
        assert sum(item["components"].values()) == pytest.approx(item["score"])
        assert item["kind"] in {"product", "group"}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    by_id = {i["id"]: i for i in body["items"]}
    assert by_id["p-B"]["category"] == "kitchen"
    assert by_id["p-B"]["components"]["sequential"] > 0


async def test_filters_change_what_is_recommended(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    headers = bearer(settings, "u-me")

    async def post(body: dict[str, Any]) -> dict[str, Any]:
        response = await api.post(RECS, json={"limit": 50, **body}, headers=headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    with_purchased = await post({"filters": {"exclude_purchased": False}})
    assert "p-Z" in ids(with_purchased)
    groups = await post({"kind": "groups"})
    assert ids(groups) == ["g-1"], "the open deal for p-B inherits p-B's appeal"
    assert groups["items"][0]["kind"] == "group"
    products = await post({"kind": "products"})
    assert products["items"]
    assert all(i["kind"] == "product" for i in products["items"])
    garden = await post({"filters": {"include_categories": ["garden"]}})
    assert ids(garden) == ["p-C"]
    no_kitchen = await post({"filters": {"exclude_categories": ["kitchen"]}})
    assert "p-B" not in ids(no_kitchen)
    diverse = await post({"kind": "products", "filters": {"max_per_category": 1}})
    categories = [i["category"] for i in diverse["items"]]
    assert len(categories) == len(set(categories))
    excluded = await post(
        {"filters": {"exclude_product_ids": ["p-B"], "exclude_group_ids": ["g-1"]}}
    )
    assert not {"p-B", "g-1"} & set(ids(excluded))
    on_page = await post({"context": {"product_id": "p-C", "page": "product"}})
    assert "p-C" not in ids(on_page), "the page's own product is not recommended back"
    limited = await post({"limit": 1})
    assert len(limited["items"]) == 1


async def test_weight_override_is_for_admins_unless_allowed(
    api: httpx.AsyncClient,
    settings: ApiSettings,
    redis_url: str,
    kafka_bootstrap: str,
    keyspace: Keyspace,
    topic_name: str,
) -> None:
    weights = {"sequential": 1.0}
    user = await api.post(RECS, json={"weights": weights}, headers=bearer(settings, "u-me"))
    assert user.status_code == 403
    assert user.json()["error"]["details"] == {"setting": "allow_weight_override"}
    admin = await api.post(
        RECS,
        json={"weights": weights, "user_id": "u-me"},
        headers=bearer(settings, "ops", admin=True),
    )
    assert admin.status_code == 200, admin.text
    assert admin.json()["weights"] == {"content": 0.0, "sequential": 1.0, "session": 0.0}
    assert all(i["components"]["content"] == 0 for i in admin.json()["items"])

    open_settings = api_settings(
        redis_url, kafka_bootstrap, keyspace, topic_name, allow_weight_override=True
    )
    async with serve(open_settings, clock) as other:
        allowed = await other.post(
            RECS, json={"weights": weights}, headers=bearer(open_settings, "u-me")
        )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["weights"]["sequential"] == 1.0


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 0},
        {"limit": 101},
        {"kind": "everything"},
        {"surprise": 1},
        {"weights": {"content": 0, "sequential": 0, "session": 0}},
        {"weights": {"popular": 1}},
        {"context": {"product_id": "p-A", "group_id": "g-1"}},
        {"filters": {"max_per_category": 0}},
        {"filters": {"exclude_product_ids": ["has space"]}},
        {"user_id": "bad|id"},
    ],
)
async def test_bad_recommendation_requests_are_422(
    api: httpx.AsyncClient, settings: ApiSettings, body: dict[str, Any]
) -> None:
    response = await api.post(RECS, json=body, headers=bearer(settings, "ops", admin=True))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


async def test_nobody_reads_another_users_recommendations(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    other = {"user_id": "u-me"}
    v1 = bearer(settings, "v1")
    answers = {
        "anonymous": await api.post(RECS, json={}),
        "other_user": await api.post(RECS, json=other, headers=v1),
        "track_key": await api.post(RECS, json=other, headers={"X-API-Key": TRACK_KEY}),
        "explain": await api.get(
            f"{RECS}/explain", params={"product_id": "p-B", **other}, headers=v1
        ),
        "session": await api.get(f"{PREFIX}/session/recommendations", params=other, headers=v1),
        "next": await api.get(f"{PREFIX}/sequential/next-products", params=other, headers=v1),
    }
    assert answers.pop("anonymous").status_code == 401
    for name, response in answers.items():
        assert response.status_code == 403, name
        assert response.json()["error"]["code"] == "forbidden", name
    key_without_user = await api.post(RECS, json={}, headers={"X-API-Key": ADMIN_KEY})
    assert key_without_user.status_code == 422
    admin_key = await api.post(RECS, json=other, headers={"X-API-Key": ADMIN_KEY})
    assert admin_key.status_code == 200
    assert admin_key.json()["user_id"] == "u-me"


async def test_a_cold_start_user_gets_popular_items_with_the_source(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    response = await api.post(RECS, json={"limit": 3}, headers=bearer(settings, "newcomer"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["source"], body["cold_start"], body["watermark"]) == ("cold_start", True, None)
    assert body["intent"]["kind"] == "unknown"
    assert len(body["items"]) == 3
    assert {i["source"] for i in body["items"]} == {"cold_start"}
    assert ids(body)[0] in {"p-A", "p-B"}, "the most viewed products"
    assert "p-OUT" not in ids(body)
