"""Cross-origin access: none by default; a listed origin gets its preflight answered and
its responses readable, any other origin gets no CORS header; "*" only in dev."""

from __future__ import annotations

import pydantic
import pytest

from recstream.contract.keyspace import Keyspace
from recstream.store.memory import MemoryStore
from recstream_api.settings import ApiSettings, CorsSettings

from ..integration.test_api import api_settings, bearer, closed_address
from ..integration.test_api_recommend import RECS, load_shop
from .test_api_memory_store import MemoryPublisher, serve_memory

SHOP = "https://shop.example"


def settings_with(origins: tuple[str, ...]) -> ApiSettings:
    unused = closed_address()
    return api_settings(
        f"redis://{unused}/0", unused, Keyspace(), "interactions",
        cors=CorsSettings(allowed_origins=origins),
    )  # fmt: skip


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_a_listed_origin_is_answered_and_others_are_not() -> None:
    settings = settings_with((SHOP,))
    store = MemoryStore(settings.redis.keyspace())
    await load_shop(store, settings)
    async with serve_memory(settings, store, MemoryPublisher(settings)) as api:
        allowed = await api.options(RECS, headers=preflight(SHOP))
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == SHOP
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert allowed.headers["access-control-max-age"] == "600"

        refused = await api.options(RECS, headers=preflight("https://evil.example"))
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

        headers = {**bearer(settings, "u-me"), "Origin": SHOP}
        answered = await api.post(RECS, json={"limit": 3}, headers=headers)
        assert answered.status_code == 200, answered.text
        assert answered.headers["access-control-allow-origin"] == SHOP
        assert "x-request-id" in answered.headers["access-control-expose-headers"].lower()


async def test_without_allowed_origins_no_cors_header_is_sent() -> None:
    settings = settings_with(())
    store = MemoryStore(settings.redis.keyspace())
    await load_shop(store, settings)
    async with serve_memory(settings, store, MemoryPublisher(settings)) as api:
        response = await api.options(RECS, headers=preflight(SHOP))
        assert "access-control-allow-origin" not in response.headers
        headers = {**bearer(settings, "u-me"), "Origin": SHOP}
        answered = await api.post(RECS, json={"limit": 3}, headers=headers)
        assert answered.status_code == 200
        assert "access-control-allow-origin" not in answered.headers


def test_origins_are_checked_and_any_origin_is_for_dev_only() -> None:
    with pytest.raises(pydantic.ValidationError, match="is not an origin"):
        CorsSettings(allowed_origins=("https://shop.example/path",))
    assert ApiSettings(environment="dev", cors=CorsSettings(allowed_origins=("*",)))
    with pytest.raises(pydantic.ValidationError, match="development only"):
        ApiSettings(
            environment="prod",
            cors=CorsSettings(allowed_origins=("*",)),
            auth={"jwt_secret": "a-production-secret-of-enough-length-0123456789"},
        )
