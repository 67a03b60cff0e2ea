"""Explanations, session recommendations and next-product predictions, in process on Redis."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from recstream_api.settings import ApiSettings

from .test_api import PREFIX, bearer
from .test_api_recommend import ME_LAST, NOW, PARTITION, RECS, api, settings

pytestmark = pytest.mark.integration

__all__ = ["api", "settings"]  # fixtures

EXPLAIN = f"{RECS}/explain"
SESSION = f"{PREFIX}/session/recommendations"
NEXT = f"{PREFIX}/sequential/next-products"


async def get(api: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any) -> Any:
    response = await api.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- GET /recommendations/explain -------------------------------------------------------


async def test_explanation_of_a_recommended_item_cites_the_users_events(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    headers = bearer(settings, "u-me")
    recommended = (await api.post(RECS, json={"limit": 10}, headers=headers)).json()
    rank = next(i["rank"] for i in recommended["items"] if i["id"] == "p-B")

    body = await get(api, EXPLAIN, headers, product_id="p-B")
    assert body["item"] == {"kind": "product", "id": "p-B"}
    assert (body["recommended"], body["rank"], body["filtered_by"]) == (True, rank, None)
    assert body["limit"] == 10
    assert body["components"]["sequential"] > 0
    assert sum(body["components"].values()) == pytest.approx(body["score"])
    assert body["intent"] == recommended["intent"]
    triggers = {t["event_id"]: t for t in body["triggers"]}
    assert "me-3" in triggers, "the view of p-A a few minutes ago"
    assert triggers["me-3"]["event_type"] == "product_view"
    assert triggers["me-3"]["item"] == {"kind": "product", "id": "p-A"}
    assert datetime.fromisoformat(triggers["me-3"]["occurred_at"]) < NOW
    assert body["reason"]
    assert body["watermark"] == {"partition": PARTITION, "offset": ME_LAST}


async def test_explanation_of_a_filtered_item_names_the_filter(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    headers = bearer(settings, "u-me")
    bought = await get(api, EXPLAIN, headers, product_id="p-Z")
    assert (bought["recommended"], bought["filtered_by"]) == (False, "already_purchased")
    assert bought["reason"]
    out = await get(api, EXPLAIN, headers, product_id="p-OUT")
    assert (out["recommended"], out["filtered_by"]) == (False, "out_of_stock")
    unknown = await get(api, EXPLAIN, headers, group_id="g-unknown")
    assert unknown["recommended"] is False
    assert unknown["item"] == {"kind": "group", "id": "g-unknown"}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"product_id": "p-A", "group_id": "g-1"},
        {"product_id": "a b"},
        {"product_id": "p-A", "limit": 0},
    ],
)
async def test_explain_needs_exactly_one_valid_item(
    api: httpx.AsyncClient, settings: ApiSettings, params: dict[str, Any]
) -> None:
    response = await api.get(EXPLAIN, params=params, headers=bearer(settings, "u-me"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


# --- GET /session/recommendations -------------------------------------------------------


async def test_session_recommendations_show_the_session_and_its_intent(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    body = await get(api, SESSION, bearer(settings, "u-me"), limit=5)
    session = body["session"]
    assert session is not None
    assert session["items"] == [{"kind": "product", "id": "p-A"}]
    assert session["counts"] == {"product_view": 1, "product_search": 1}
    assert session["events"] == 2
    assert session["categories"] == {"kitchen": 1}
    assert datetime.fromisoformat(session["last_event_at"]) < NOW
    assert body["weights"]["content"] == 0.0, "the session endpoint blends session signals only"
    assert body["intent"]["kind"] == "research"
    assert body["intent"]["signals"]["searches"] == 1
    after_a = [i["id"] for i in body["items"] if i["id"] != "p-A"]  # a reminder may lead
    assert after_a[0] in {"p-B", "g-1"}
    assert "p-Z" not in [i["id"] for i in body["items"]]
    assert body["watermark"] == {"partition": PARTITION, "offset": ME_LAST}


async def test_without_a_current_session_the_answer_is_popular(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    past = await get(api, SESSION, bearer(settings, "v1"), limit=3)  # last event 4 hours ago
    assert past["session"] is None
    assert past["source"] == "popular"
    assert past["intent"]["kind"] == "unknown"
    assert len(past["items"]) == 3
    assert {i["source"] for i in past["items"]} == {"popular"}
    newcomer = await get(api, SESSION, bearer(settings, "newcomer"), limit=3, kind="products")
    assert (newcomer["session"], newcomer["source"]) == (None, "cold_start")
    assert all(i["kind"] == "product" for i in newcomer["items"])


# --- GET /sequential/next-products ------------------------------------------------------


async def test_next_products_after_a_product(api: httpx.AsyncClient, settings: ApiSettings) -> None:
    body = await get(api, NEXT, bearer(settings, "v4"), product_id="p-A", limit=5)
    assert body["product_id"] == "p-A"
    assert body["anchors"] == [{"kind": "product", "id": "p-A"}]
    products = [i["product_id"] for i in body["items"]]
    assert "p-A" not in products, "the anchor is never predicted to follow itself"
    assert products[0] == "p-B", "two of three sessions went from A to B"
    assert products.index("p-B") < products.index("p-C")
    assert [i["rank"] for i in body["items"]] == list(range(1, len(products) + 1))
    assert len(products) <= 5
    assert "p-OUT" not in products


async def test_next_products_from_the_users_session(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    body = await get(api, NEXT, bearer(settings, "u-me"))
    assert body["product_id"] is None
    assert body["anchors"] == [{"kind": "product", "id": "p-A"}]
    following = body["items"]
    assert "p-A" not in [i["product_id"] for i in following], "seen in the session"
    assert following[0]["product_id"] == "p-B"
    assert following[0]["components"]["sequential"] > 0
    cold = await get(api, NEXT, bearer(settings, "newcomer"), limit=2)
    assert cold["anchors"] == []
    assert len(cold["items"]) == 2
    assert {i["source"] for i in cold["items"]} == {"cold_start"}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"product_id": "x y"}])
async def test_bad_next_product_queries_are_422(
    api: httpx.AsyncClient, settings: ApiSettings, params: dict[str, Any]
) -> None:
    response = await api.get(NEXT, params=params, headers=bearer(settings, "u-me"))
    assert response.status_code == 422


async def test_openapi_documents_the_recommendation_endpoints(api: httpx.AsyncClient) -> None:
    document = (await api.get(f"{PREFIX}/openapi.json")).json()
    paths = document["paths"]
    post = paths[RECS]["post"]
    assert {"200", "401", "403", "422", "503"} <= set(post["responses"])
    assert "examples" in post["requestBody"]["content"]["application/json"]
    for path in (EXPLAIN, SESSION, NEXT):
        assert {"200", "401", "403", "422"} <= set(paths[path]["get"]["responses"]), path
    for model in ("RecommendationsResponse", "ExplanationResponse", "NextProductsResponse"):
        assert "examples" in document["components"]["schemas"][model], model
