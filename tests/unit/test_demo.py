"""The demo: its catalog from the dataset (pure), and its routes existing in dev mode only."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import SecretStr

from recstream.contract.catalog import decode_catalog_record
from recstream.contract.events import Event, encode_event
from recstream.offline.datasets import diginetica_events
from recstream_api.demo_catalog import (
    PRODUCTS_PER_DEPARTMENT,
    SEED_END_BEFORE_NOW,
    SEED_SPAN,
    build_catalog,
    catalog_records,
    seed_events,
)
from recstream_api.main import create_app
from recstream_api.settings import ApiSettings, AuthSettings

NOW = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
SECRET = "unit-demo-secret-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def events(datasets: Path) -> list[Event]:
    path = datasets / "diginetica-sample" / "events.csv"
    with path.open(encoding="utf-8", newline="") as lines:
        return list(diginetica_events(lines, bad_rows=[]))


def test_catalog_has_real_items_of_the_busiest_categories(events: list[Event]) -> None:
    catalog = build_catalog(events, NOW)
    assert len(catalog.products) == 6 * PRODUCTS_PER_DEPARTMENT
    assert len(catalog.groups) == 12
    seen = {(e.product_id, e.category) for e in events}
    assert all((p.product_id, p.category) in seen for p in catalog.products)
    assert len({p.name for p in catalog.products}) == len(catalog.products)
    assert all(0 < p.price < 400 for p in catalog.products)
    assert len({p.department for p in catalog.products}) == 6
    for group in catalog.groups:
        assert group.product_id in catalog.product_ids
        assert 1 <= group.current_size < group.target_size
        assert NOW + timedelta(hours=2) <= group.closes_at <= NOW + timedelta(hours=49)
        assert group.group_price < group.price


def test_catalog_is_the_same_on_every_start(events: list[Event]) -> None:
    assert build_catalog(events, NOW) == build_catalog(list(events), NOW)


def test_catalog_records_are_valid_catalog_topic_records(events: list[Event]) -> None:
    records = catalog_records(build_catalog(events, NOW), NOW)
    for record in records:
        decoded = decode_catalog_record(record.model_dump_json(exclude_none=True).encode())
        assert decoded == record
    assert {r.kind for r in records} == {"product", "group"}


def test_seeded_sessions_are_recent_ordered_and_on_catalog_items(events: list[Event]) -> None:
    catalog = build_catalog(events, NOW)
    seeded = seed_events(events, catalog, NOW)
    assert len(seeded) > 100
    assert all(e.product_id in catalog.product_ids for e in seeded)
    assert all(
        NOW - SEED_SPAN - SEED_END_BEFORE_NOW <= e.occurred_at <= NOW - SEED_END_BEFORE_NOW
        for e in seeded
    )
    per_user: dict[str, list[datetime]] = defaultdict(list)
    for event in seeded:
        per_user[event.user_id].append(event.occurred_at)
        encode_event(event)  # still a valid contract event
    assert all(times == sorted(times) for times in per_user.values())
    original = {e.event_id for e in events}
    assert {e.event_id for e in seeded} <= original, "dataset ids: seeding twice is deduplicated"


def _app(environment: str) -> httpx.AsyncClient:
    settings = ApiSettings(environment=environment, auth=AuthSettings(jwt_secret=SecretStr(SECRET)))
    app = create_app(settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_dev_mode_serves_the_page_the_client_and_demo_tokens() -> None:
    async with _app("dev") as client:
        page = await client.get("/demo")
        script = await client.get("/demo/recstream.js")
        style = await client.get("/demo/static/app.css")
        minted = await client.post("/demo/token", json={"user_id": "demo-ana"})
        refused = await client.post("/demo/token", json={"user_id": "dev-admin"})
    assert page.status_code == 200
    assert 'src="/demo/static/app.js"' in page.text
    assert script.status_code == 200
    assert "export class RecstreamClient" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200
    assert minted.status_code == 200, minted.text
    claims = jwt.decode(minted.json()["token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == "demo-ana"
    assert "roles" not in claims, "demo tokens are never admin tokens"
    assert claims["exp"] - claims["iat"] == minted.json()["expires_in"] == 3600
    assert refused.status_code == 422


async def test_prod_has_no_demo_and_mints_no_tokens() -> None:
    async with _app("prod") as client:
        for path in ("/demo", "/demo/recstream.js", "/demo/static/app.js", "/demo/catalog.json"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.post("/demo/token", json={"user_id": "demo-ana"})).status_code == 404
