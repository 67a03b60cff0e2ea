"""GET /items/similar and /items/trending through the API, on a small shop in Redis."""

from __future__ import annotations

import httpx
import pytest

from recstream_api.settings import ApiSettings

from .test_api import PREFIX, TRACK_KEY, bearer
from .test_api_recommend import api, settings  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

SIMILAR = f"{PREFIX}/items/similar"
TRENDING = f"{PREFIX}/items/trending"


def ids(body: dict[str, object]) -> list[str]:
    return [item["id"] for item in body["items"]]  # type: ignore[attr-defined]


async def test_similar_items_are_what_shoppers_did_around_the_item(
    api: httpx.AsyncClient,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    response = await api.get(SIMILAR, params={"product_id": "p-A"}, headers=bearer(settings, "x"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item"] == {"kind": "product", "id": "p-A"}
    found = ids(body)
    assert found[0] == "p-B", "viewed with A in two sessions and next after it twice"
    assert "p-C" in found
    assert "p-A" not in found, "never the item itself"
    assert "p-OUT" not in found, "out of stock"
    by_id = {i["id"]: i for i in body["items"]}
    assert by_id["p-B"]["components"]["viewed_together"] == 1.0
    assert by_id["p-B"]["components"]["viewed_next"] == 1.0
    assert by_id["p-B"]["category"] == "kitchen"
    assert [i["rank"] for i in body["items"]] == list(range(1, len(found) + 1))
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)

    groups = await api.get(
        SIMILAR, params={"product_id": "p-A", "kind": "groups"}, headers=bearer(settings, "y")
    )
    assert groups.status_code == 200, groups.text
    assert all(i["kind"] == "group" for i in groups.json()["items"])


async def test_trending_is_popularity_now_overall_or_in_a_category(
    api: httpx.AsyncClient,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    headers = bearer(settings, "x")
    overall = await api.get(TRENDING, params={"limit": 20}, headers=headers)
    assert overall.status_code == 200, overall.text
    found = ids(overall.json())
    assert found[0] == "p-B", "three views and a cart add"
    assert {"p-A", "p-Z", "p-C", "g-1"} <= set(found)
    assert "p-OUT" not in found
    assert overall.json()["items"][0]["components"]["popularity"] == 1.0
    garden = await api.get(TRENDING, params={"category": "garden"}, headers=headers)
    assert garden.status_code == 200, garden.text
    assert ids(garden.json()) == ["p-C"]
    assert garden.json()["category"] == "garden"


@pytest.mark.parametrize(
    "params", [{}, {"product_id": "p-A", "group_id": "g-1"}, {"product_id": "p-A", "limit": 0}]
)
async def test_a_similar_request_names_one_item(
    api: httpx.AsyncClient,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
    params: dict[str, object],
) -> None:
    response = await api.get(SIMILAR, params=params, headers=bearer(settings, "x"))
    assert response.status_code == 422, response.text


async def test_both_lists_need_credentials_that_may_read(api: httpx.AsyncClient) -> None:  # noqa: F811
    for url in (f"{SIMILAR}?product_id=p-A", TRENDING):
        assert (await api.get(url)).status_code == 401
        assert (await api.get(url, headers={"X-API-Key": TRACK_KEY})).status_code == 403
