"""The catalog over HTTP: records published to the catalog topic, applied by the consumer."""

from __future__ import annotations

import orjson
import pytest
from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace
from recstream_api.settings import ApiSettings

from .conftest import consumer_settings, running_consumer, wait_until
from .test_api import ADMIN_KEY, PREFIX, TRACK_KEY, api_settings, bearer, read_topic, serve

pytestmark = pytest.mark.integration

CATALOG = f"{PREFIX}/catalog"
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def settings(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str
) -> ApiSettings:
    return api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)


async def test_records_are_published_applied_and_deleted(
    settings: ApiSettings, redis_client: Redis, keyspace: Keyspace, redis_url: str
) -> None:
    kafka = settings.kafka
    batch = {
        "records": [
            {"kind": "product", "product_id": "p-1", "category": "kitchen", "price": 12.5},
            {"kind": "product", "product_id": "p-2", "price": -1},
            {"kind": "group", "group_id": "g-1", "product_id": "p-1", "target_size": 4},
            "not an object",
        ]
    }
    async with serve(settings) as api:
        response = await api.post(CATALOG, json=batch, headers=ADMIN)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["accepted"] == 2
        assert [(i["kind"], i["id"], i["op"]) for i in body["items"]] == [
            ("product", "p-1", "upsert"),
            ("group", "g-1", "upsert"),
        ]
        assert [r["index"] for r in body["rejected"]] == [1, 3]
        assert body["rejected"][0]["errors"][0]["loc"].endswith("price")

        consumer = consumer_settings(
            redis_url=redis_url, kafka_bootstrap=kafka.bootstrap_servers, keyspace=keyspace,
            topic=kafka.interactions_topic,
        )  # fmt: skip
        assert consumer.kafka.catalog_topic == kafka.catalog_topic
        product_key = keyspace.catalog_item("p:p-1")
        async with running_consumer(consumer):

            async def applied() -> bool:
                return await redis_client.get(product_key) is not None

            await wait_until(applied, 20.0, "the product in Redis")
            entry = orjson.loads(await redis_client.get(product_key))  # type: ignore[arg-type]
            assert (entry["category"], entry["price"]) == ("kitchen", 12.5)

            deleted = await api.delete(f"{CATALOG}/products/p-1", headers=ADMIN)
            assert deleted.status_code == 202, deleted.text
            assert deleted.json()["items"][0]["op"] == "delete"

            async def gone() -> bool:
                return await redis_client.get(product_key) is None

            await wait_until(gone, 20.0, "the product deleted")
    records = await read_topic(kafka.bootstrap_servers, kafka.catalog_topic, 3)
    assert [r.key for r in records] == [b"p:p-1", b"g:g-1", b"p:p-1"]


async def test_only_an_admin_changes_the_catalog_and_bad_batches_publish_nothing(
    settings: ApiSettings,
) -> None:
    record = {"kind": "product", "product_id": "p-1"}
    async with serve(settings) as api:
        for headers in (bearer(settings, "u-1"), {"X-API-Key": TRACK_KEY}):
            assert (await api.post(CATALOG, json=record, headers=headers)).status_code == 403
        bad = {"records": [{"kind": "product", "product_id": "p-1", "price": "12"}, record]}
        atomic = await api.post(f"{CATALOG}?atomic=true", json=bad, headers=ADMIN)
        assert atomic.status_code == 422
        assert (
            "1 of 2 records are invalid; nothing was published" in atomic.json()["error"]["message"]
        )
        assert (await api.post(CATALOG, json={"kind": "sofa"}, headers=ADMIN)).status_code == 422
        too_many = {"records": [record] * 101}
        assert (await api.post(CATALOG, json=too_many, headers=ADMIN)).status_code == 422
        published = await api.post(CATALOG, json=record, headers=ADMIN)
        assert published.status_code == 202
    [first] = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.catalog_topic, 1)
    assert orjson.loads(first.value) == {
        **record,
        "op": "upsert",
        "in_stock": True,
        "attributes": {},
    }
