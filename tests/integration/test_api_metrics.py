"""``GET /metrics`` of the API in process, on a real Redis and a real broker: a few requests,
then a scrape, parsed with the Prometheus client's own parser."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from recstream.contract.keyspace import Keyspace
from recstream_api.metrics import ApiMetrics, RequestMetrics
from recstream_api.settings import ApiSettings

from .test_api import (
    PREFIX,
    api_settings,
    bearer,
    closed_address,
    create_topic,
    event,
    serve,
)

pytestmark = pytest.mark.integration

Labels = tuple[tuple[str, str], ...]
PROFILE = f"{PREFIX}/user-profile/behavioral"
TRACK = f"{PREFIX}/track-interaction"
RECOMMEND = f"{PREFIX}/recommendations"
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "recstream.json"


def samples(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of a scrape, by name and sorted labels."""
    found: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(scrape: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


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


async def test_requests_are_counted_by_route_template_status_and_error_code(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    user = bearer(settings, "u-metrics")
    for _ in range(3):
        assert (await client.get(PROFILE, headers=user)).status_code == 200
    assert (await client.get(PROFILE)).status_code == 401
    assert (await client.post(TRACK, json=event("u-metrics"), headers=user)).status_code == 202
    bad = event("u-metrics", occurred_at="yesterday")
    assert (await client.post(TRACK, json=bad, headers=user)).status_code == 422
    recommended = await client.post(RECOMMEND, json={"limit": 5}, headers=user)
    assert recommended.status_code == 200, recommended.text
    assert (await client.get("/no/such/path/u-secret-123")).status_code == 404

    response = await client.get("/metrics")  # no credentials needed
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    scrape = samples(response.text)

    latency = "recstream_api_request_duration_seconds_count"
    assert value(scrape, latency, method="GET", route=PROFILE, status="200") == 3
    assert value(scrape, latency, method="GET", route=PROFILE, status="401") == 1
    assert value(scrape, latency, method="POST", route=TRACK, status="202") == 1
    assert value(scrape, latency, method="POST", route=TRACK, status="422") == 1
    assert value(scrape, latency, method="GET", route="<unmatched>", status="404") == 1
    assert "u-secret-123" not in response.text, "raw paths never become labels"
    buckets = [
        v
        for (name, labels), v in scrape.items()
        if name == "recstream_api_request_duration_seconds_bucket"
        and ("route", PROFILE) in labels
        and ("status", "200") in labels
    ]
    assert buckets == sorted(buckets), "cumulative buckets"
    assert buckets[-1] == 3  # le="+Inf"

    errors = "recstream_api_errors_total"
    assert value(scrape, errors, route=PROFILE, status="401", code="not_authenticated") == 1
    assert value(scrape, errors, route=TRACK, status="422", code="invalid_events") == 1
    assert value(scrape, errors, route="<unmatched>", status="404", code="not_found") == 1
    assert not any(name == errors and ("status", "200") in labels for name, labels in scrape), (
        "successes are not errors"
    )

    trips = "recstream_api_redis_round_trips"
    # a profile is one read; tracking only produces to the broker; recommendations are
    # loaded in a few pipelined round trips (four at most: state, neighbours, sessions, items)
    assert value(scrape, f"{trips}_count", route=PROFILE) == 4
    assert value(scrape, f"{trips}_sum", route=PROFILE) == 3  # the 401 never reads Redis
    assert value(scrape, f"{trips}_sum", route=TRACK) == 0
    assert value(scrape, f"{trips}_count", route=RECOMMEND) == 1
    assert 1 <= value(scrape, f"{trips}_sum", route=RECOMMEND) <= 4
    assert value(scrape, f"{trips}_bucket", route=PROFILE, le="0.0") == 1

    assert value(scrape, "recstream_api_requests_in_flight") == 1  # the scrape itself
    assert any(name == "process_cpu_seconds_total" for name, _ in scrape)


async def test_the_dashboard_queries_only_metrics_the_api_exports(
    client: httpx.AsyncClient,
) -> None:
    await client.get(PROFILE)  # a 401: every API family has a sample now
    exported = {name for name, _ in samples((await client.get("/metrics")).text)}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\brecstream_api_\w+", e)}
    assert len(used) >= 4
    assert not used - exported, sorted(used - exported)
    consumer = {m for e in exprs for m in re.findall(r"\brecstream_(?:consumer|quality)_\w+", e)}
    assert len(consumer) >= 7  # ingest, freshness, lag, DLQ, rebalances and quality panels


async def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


async def test_a_redis_outage_is_counted_as_store_unavailable(
    kafka_bootstrap: str, keyspace: Keyspace, topic_name: str
) -> None:
    settings = api_settings(f"redis://{closed_address()}/0", kafka_bootstrap, keyspace, topic_name)
    async with serve(settings) as api:
        response = await api.get(PROFILE, headers=bearer(settings, "u-1"))
        scrape = samples((await api.get("/metrics")).text)
    assert response.status_code == 503
    code = "store_unavailable"
    assert value(scrape, "recstream_api_errors_total", route=PROFILE, status="503", code=code) == 1
    assert value(scrape, "recstream_api_redis_round_trips_sum", route=PROFILE) >= 1


async def test_an_unhandled_error_is_counted_as_a_500() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    metrics = ApiMetrics()
    app = Starlette(routes=[Route("/broken/{item}", broken)])
    app.add_middleware(RequestMetrics, metrics=metrics)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/broken/x")).status_code == 500
    scrape = samples(bytes((await metrics.endpoint(_request())).body).decode())
    labels = {"route": "/broken/{item}", "status": "500", "code": "internal_error"}
    assert value(scrape, "recstream_api_errors_total", **labels) == 1
    assert value(scrape, "recstream_api_requests_in_flight") == 0


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/metrics", "headers": []})
