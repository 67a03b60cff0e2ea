"""What a list may contain, through the API: never the item on screen or the anchor; items
seen in the session only with ``include_seen`` (and marked); products in the cart only when
the filter is off. The shop is the one of ``test_api_recommend.py``: ``u-me`` viewed p-A five
minutes ago (the current session) and bought p-Z hours ago; ``v4`` put p-B in the cart."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from recstream_api.settings import ApiSettings

from .test_api import PREFIX, bearer
from .test_api_recommend import RECS, api, settings

pytestmark = pytest.mark.integration

__all__ = ["api", "settings"]  # fixtures

EXPLAIN = f"{RECS}/explain"
SESSION = f"{PREFIX}/session/recommendations"
NEXT = f"{PREFIX}/sequential/next-products"


async def post(api: httpx.AsyncClient, user: str, settings: ApiSettings, **body: Any) -> Any:
    response = await api.post(RECS, json={"limit": 20, **body}, headers=bearer(settings, user))
    assert response.status_code == 200, response.text
    return response.json()


async def get(
    api: httpx.AsyncClient, url: str, user: str, settings: ApiSettings, **params: Any
) -> Any:
    response = await api.get(url, params=params, headers=bearer(settings, user))
    assert response.status_code == 200, response.text
    return response.json()


def listed(body: dict[str, Any]) -> dict[str, bool]:
    """id -> seen_in_session of every listed item."""
    return {i.get("id", i.get("product_id")): i["seen_in_session"] for i in body["items"]}


async def test_the_blended_list_leaves_out_what_the_session_saw_unless_asked(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    default = listed(await post(api, "u-me", settings))
    assert default, "the list is back-filled, not empty"
    assert "p-A" not in default
    assert not any(default.values())
    seen = listed(await post(api, "u-me", settings, include_seen=True))
    assert seen["p-A"] is True, "a seen item comes back marked"
    assert not any(v for k, v in seen.items() if k != "p-A")


async def test_the_item_on_screen_and_the_other_shown_items_never_come_back(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    assert "p-B" in listed(await post(api, "u-me", settings))
    context = {"product_id": "p-B", "shown_product_ids": ["p-C"], "shown_group_ids": ["g-1"]}
    for include_seen in (False, True):
        body = await post(api, "u-me", settings, context=context, include_seen=include_seen)
        assert {"p-B", "p-C", "g-1"}.isdisjoint(listed(body)), include_seen
    on_the_seen_page = await post(
        api, "u-me", settings, context={"product_id": "p-A"}, include_seen=True
    )
    assert "p-A" not in listed(on_the_seen_page)


async def test_session_recommendations_take_the_item_on_screen(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    default = listed(await get(api, SESSION, "u-me", settings))
    assert "p-A" not in default
    assert "p-B" in default
    on_b = listed(await get(api, SESSION, "u-me", settings, product_id="p-B"))
    assert "p-B" not in on_b
    on_deal = listed(await get(api, SESSION, "u-me", settings, group_id="g-1"))
    assert "g-1" not in on_deal
    seen = listed(await get(api, SESSION, "u-me", settings, include_seen="true"))
    assert seen.get("p-A") is True


async def test_next_products_never_return_their_anchor(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    for user in ("u-me", "v1", "newcomer"):
        for include_seen in ("false", "true"):
            body = await get(api, NEXT, user, settings, product_id="p-A", include_seen=include_seen)
            assert "p-A" not in listed(body), (user, include_seen)
    from_session = listed(await get(api, NEXT, "u-me", settings))
    assert "p-A" not in from_session, "seen in the session"
    assert from_session
    assert not any(from_session.values())


async def test_products_in_the_cart_are_left_out_unless_the_filter_is_off(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    assert "p-B" not in listed(await post(api, "v4", settings))
    kept = await post(api, "v4", settings, filters={"exclude_in_cart": False})
    assert "p-B" in listed(kept)
    why = await get(api, EXPLAIN, "v4", settings, product_id="p-B")
    assert (why["filtered_by"], why["recommended"]) == ("in_cart", False)


async def test_explanations_follow_the_same_rules(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    seen = await get(api, EXPLAIN, "u-me", settings, product_id="p-A")
    assert (seen["filtered_by"], seen["recommended"]) == ("seen_in_session", False)
    assert "already saw it" in seen["reason"]
    allowed = await get(api, EXPLAIN, "u-me", settings, product_id="p-A", include_seen="true")
    assert allowed["filtered_by"] is None


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("POST", RECS, {"json": {"context": {"shown_product_ids": ["a b"]}}}),
        ("POST", RECS, {"json": {"context": {"shown_group_ids": "g-1"}}}),
        ("POST", RECS, {"json": {"include_seen": "yes"}}),
        ("GET", SESSION, {"params": {"product_id": "a b"}}),
        ("GET", SESSION, {"params": {"include_seen": "maybe"}}),
        ("GET", NEXT, {"params": {"include_seen": "maybe"}}),
    ],
)
async def test_bad_on_screen_parameters_are_422_with_the_field(
    api: httpx.AsyncClient, settings: ApiSettings, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    response = await api.request(method, url, headers=bearer(settings, "u-me"), **kwargs)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"]
