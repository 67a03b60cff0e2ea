"""The learned ranker served from a real Redis registry: published models reach the API
within one poll and reorder its recommendations, a newer version replaces the older one
without a restart, deactivating or removing it brings the blend back, and a corrupt
artifact leaves the blend serving with the error in ``GET /health``.

Models are published with ``RankerRegistry`` (what ``recstream model publish`` and
``recstream train --publish`` call) into the test's own key prefix; the app polls every
0.1 s. The shop is the one of ``test_api_recommend.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace
from recstream.store.rankers import RankerRegistry
from recstream.store.redis import RedisStore
from recstream_api.settings import ApiSettings, RankerSettings

from ..unit.ranker_models import corrupt_artifact, one_feature_artifact
from .conftest import wait_until
from .test_api import ADMIN_KEY, PREFIX, api_settings, bearer, serve
from .test_api_recommend import RECS, clock, ids, load_shop

pytestmark = pytest.mark.integration

POLL_SECONDS = 0.1
HEALTH = f"{PREFIX}/health"
ACTIVE = f"{PREFIX}/rankers/active"
ADMIN = {"X-API-Key": ADMIN_KEY}

BLEND_ORDER = ["p-B", "g-1", "p-C"]
# popular_score, lowest first; the deal g-1 ties with its product p-B, and the blend's
# components order the tie (as in tests/unit/test_api_rankers.py)
LEAST_POPULAR_FIRST = ["p-C", "p-B", "g-1"]
GROUPS_FIRST = ["g-1", "p-B", "p-C"]

V1 = one_feature_artifact("v1", "popular_score", prefer="low")
V2 = one_feature_artifact("v2", "is_group", prefer="high")


@pytest.fixture
def settings(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> ApiSettings:
    ranker = RankerSettings(poll_seconds=POLL_SECONDS)
    return api_settings(redis_url, kafka_bootstrap, keyspace, topic_name, ranker=ranker)


@pytest.fixture
def registry(redis_client: Redis, keyspace: Keyspace) -> RankerRegistry:
    return RankerRegistry(redis_client, keyspace)


@pytest.fixture
async def api(
    settings: ApiSettings, redis_client: Redis, keyspace: Keyspace
) -> AsyncIterator[httpx.AsyncClient]:
    await load_shop(RedisStore(redis_client, keyspace), settings)
    async with serve(settings, clock) as client:
        yield client


async def recommendations(
    api: httpx.AsyncClient, settings: ApiSettings, **body: Any
) -> dict[str, Any]:
    response = await api.post(RECS, json={"limit": 20, **body}, headers=bearer(settings, "u-me"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def served_by(
    api: httpx.AsyncClient, settings: ApiSettings, ranker: str, **body: Any
) -> dict[str, Any]:
    """The recommendations once ``ranker`` serves them: one poll interval, or a few."""
    found: dict[str, Any] = {}

    async def serving() -> bool:
        found.update(await recommendations(api, settings, **body))
        return bool(found["ranker"] == ranker)

    await wait_until(serving, 10 * POLL_SECONDS + 1.0, f"recommendations ranked by {ranker}")
    return found


async def test_a_published_model_is_served_then_replaced_then_withdrawn(
    api: httpx.AsyncClient, settings: ApiSettings, registry: RankerRegistry
) -> None:
    blend = await recommendations(api, settings)
    assert (blend["ranker"], ids(blend)) == ("blend", BLEND_ORDER)

    await registry.publish("v1", V1.to_bytes())
    first = await served_by(api, settings, "v1", include_reasons=True)
    assert ids(first) == LEAST_POPULAR_FIRST, "the model's order, not the blend's"
    [reason] = first["items"][0]["reasons"]
    assert reason["feature"] == "popular_score"
    assert reason["contribution"] > 0

    await registry.publish("v2", V2.to_bytes())  # a second version, activated: hot swap
    second = await served_by(api, settings, "v2")
    assert ids(second) == GROUPS_FIRST
    assert all(item["reasons"] == [] for item in second["items"]), "reasons only on request"
    assert await registry.versions() == ["v1", "v2"]

    await registry.deactivate()
    assert ids(await served_by(api, settings, "blend")) == BLEND_ORDER

    await registry.activate("v1")  # rolling back is one activate
    assert ids(await served_by(api, settings, "v1")) == LEAST_POPULAR_FIRST
    await registry.remove("v1")
    assert ids(await served_by(api, settings, "blend")) == BLEND_ORDER

    scrape = (await api.get("/metrics")).text
    assert 'recstream_api_ranker_info{version="blend"} 1.0' in scrape
    assert 'recstream_api_recommendations_total{ranker="learned"}' in scrape


async def test_a_corrupt_active_artifact_leaves_the_blend_serving_and_health_says_why(
    api: httpx.AsyncClient, settings: ApiSettings, registry: RankerRegistry
) -> None:
    await registry.publish("v1", V1.to_bytes())
    await served_by(api, settings, "v1")

    await registry.publish("broken", corrupt_artifact("broken"))
    blend = await served_by(api, settings, "blend")
    assert ids(blend) == BLEND_ORDER
    health = await api.get(HEALTH)
    assert health.status_code == 200, "a model that does not load does not make the API unready"
    ranker = health.json()["ranker"]
    assert (ranker["active"], ranker["failed_version"]) == ("blend", "broken")
    assert "model broken not loaded" in ranker["error"]
    assert "does not load" in ranker["error"]
    scrape = (await api.get("/metrics")).text
    assert 'recstream_api_ranker_load_failures_total{reason="invalid"} 1.0' in scrape

    await registry.activate("v1")
    await served_by(api, settings, "v1")
    assert (await api.get(HEALTH)).json()["ranker"]["error"] is None


async def test_admins_activate_and_deactivate_through_the_api(
    api: httpx.AsyncClient, settings: ApiSettings, registry: RankerRegistry
) -> None:
    await registry.publish("v1", V1.to_bytes(), activate=False)
    unknown = await api.put(ACTIVE, json={"version": "nope"}, headers=ADMIN)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["details"]["published"] == ["v1"]

    activated = await api.put(ACTIVE, json={"version": "v1"}, headers=ADMIN)
    assert activated.status_code == 200, activated.text
    assert activated.json()["serving"]["active"] == "v1"
    assert await registry.active_version() == "v1"
    assert (await recommendations(api, settings))["ranker"] == "v1"

    listing = (await api.get(f"{PREFIX}/rankers", headers=ADMIN)).json()
    assert (listing["versions"], listing["active"]) == (["v1"], "v1")

    deactivated = await api.put(ACTIVE, json={"version": None}, headers=ADMIN)
    assert deactivated.status_code == 200, deactivated.text
    assert await registry.active_version() is None
    assert (await recommendations(api, settings))["ranker"] == "blend"
