"""The API's cache of catalog entries on real Redis: a change to an item's entry reaches
recommendations within ``item_cache_seconds``, not sooner, and at once with 0.

The shop of ``test_api_recommend.py``: ``u-me`` is viewing p-A, which other shoppers
followed with p-B; p-B then goes out of stock.
"""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from recstream.apply.batch import RawRecord, apply_catalog_batch
from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore

from .test_api import api_settings, bearer, serve
from .test_api_recommend import CATALOG, NOW, RECS, clock, ids, load_shop

pytestmark = pytest.mark.integration


async def test_a_catalog_change_waits_for_the_cache_and_not_without_it(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> None:
    cached = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name, item_cache_seconds=300)
    fresh = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name, item_cache_seconds=0)
    store = RedisStore(redis_client, keyspace)
    await load_shop(store, cached)
    out_of_stock = {
        "kind": "product",
        "product_id": "p-B",
        "category": "kitchen",
        "in_stock": False,
    }
    record = RawRecord(
        "catalog",
        0,
        len(CATALOG),
        int(NOW.timestamp() * 1000),
        None,
        json.dumps(out_of_stock).encode(),
    )
    body = {"limit": 20}
    headers = bearer(cached, "u-me")
    async with serve(cached, clock) as api, serve(fresh, clock) as uncached:
        before = await api.post(RECS, json=body, headers=headers)
        assert "p-B" in ids(before.json()), "A was followed by B in other sessions"
        assert (await apply_catalog_batch(store, [record])).applied == 1
        stale = await api.post(RECS, json=body, headers=headers)
        now = await uncached.post(RECS, json=body, headers=bearer(fresh, "u-me"))
    assert "p-B" in ids(stale.json()), "the entry read before the change is reused"
    assert "p-B" not in ids(now.json()), "out of stock, read from Redis"
