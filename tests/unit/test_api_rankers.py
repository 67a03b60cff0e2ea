"""The learned ranker in the API, in process: the holder that follows the registry (swaps,
fallbacks, failures remembered, Redis errors survived), and the endpoints that serve it
(which ranker served, reasons on request, a reordered list, explanations, health,
metrics, the admin routes), on the memory store and an in-memory registry."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from recstream.store.memory import MemoryStore
from recstream_api.metrics import ApiMetrics
from recstream_api.rankers import RankerHolder
from recstream_api.settings import ApiSettings, RankerSettings

from ..integration.test_api import ADMIN_KEY, PREFIX, bearer
from ..integration.test_api_recommend import RECS, ids, load_shop
from .ranker_models import MemoryRankers, corrupt_artifact, one_feature_artifact
from .test_api_memory_store import (
    EXPLAIN,
    SESSION,
    MemoryPublisher,
    post,
    publisher,
    serve_memory,
    settings,
)

__all__ = ["publisher", "settings"]  # fixtures

RANKERS = f"{PREFIX}/rankers"
ACTIVE = f"{RANKERS}/active"
HEALTH = f"{PREFIX}/health"
ADMIN = {"X-API-Key": ADMIN_KEY}

# the shop's three recommendable items for u-me, as each ranker orders them
BLEND_ORDER = ["p-B", "g-1", "p-C"]
# v1: popular_score, lowest first; g-1, a deal of p-B, has p-B's popularity: the blend's
# components order that tie, and they put the product first
LEAST_POPULAR_FIRST = ["p-C", "p-B", "g-1"]
GROUPS_FIRST = ["g-1", "p-B", "p-C"]  # v2: is_group first

V1 = one_feature_artifact("v1", "popular_score", prefer="low")
V2 = one_feature_artifact("v2", "is_group", prefer="high")


def holder_of(registry: MemoryRankers, metrics: ApiMetrics | None = None) -> RankerHolder:
    return RankerHolder(registry, poll_seconds=60.0, metrics=metrics)


def series(metrics: ApiMetrics, name: str) -> dict[str, float]:
    """version -> value of every series of the gauge ``name``."""
    return {
        s.labels["version"]: s.value
        for family in metrics.registry.collect()
        if family.name == name
        for s in family.samples
    }


def info(metrics: ApiMetrics) -> dict[str, float]:
    return series(metrics, "recstream_api_ranker_info")


def trained_at(metrics: ApiMetrics) -> dict[str, float]:
    return series(metrics, "recstream_api_ranker_created_timestamp_seconds")


def failures(metrics: ApiMetrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "recstream_api_ranker_load_failures_total", {"reason": reason}
    )
    return value or 0.0


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "recstream_api.rankers" and r.levelno == logging.WARNING
    ]


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``condition`` until it holds, for at most a few seconds (a passing test waits
    one poll interval of 20 ms or so)."""
    deadline = time.monotonic() + 5.0
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# --- the holder -----------------------------------------------------------------------


async def test_the_holder_serves_the_active_version_and_swaps_to_the_next() -> None:
    registry, metrics = MemoryRankers(), ApiMetrics()
    holder = holder_of(registry, metrics)
    await holder.refresh()
    assert holder.current is None
    assert holder.status.serving == "blend"
    assert info(metrics) == {"blend": 1.0}

    await registry.publish("v1", V1.to_bytes())
    await holder.refresh()
    first = holder.current
    assert first is not None
    assert first.version == "v1"
    assert (holder.status.serving, holder.status.error) == ("v1", None)
    assert info(metrics) == {"v1": 1.0}, "the blend's series is gone"

    await holder.refresh()
    assert holder.current is first, "the same version is not loaded again"
    assert registry.artifact_reads["v1"] == 1

    await registry.publish("v2", V2.to_bytes())
    await holder.refresh()
    assert holder.current is not None
    assert holder.current.version == "v2"
    assert info(metrics) == {"v2": 1.0}
    assert holder.status.checked_at is not None


async def test_the_served_models_training_time_is_a_metric_while_it_serves() -> None:
    """An alert on ``time() - recstream_api_ranker_created_timestamp_seconds`` catches a
    scheduled training that stopped publishing; the blend and an undated model give no
    series, so nothing fires for them."""
    registry, metrics = MemoryRankers(), ApiMetrics()
    holder = holder_of(registry, metrics)
    trained = datetime(2026, 12, 1, 3, 17, 42, tzinfo=UTC)
    dated = dataclasses.replace(V2, created_at=trained.isoformat(timespec="seconds"))
    await registry.publish("v2", dated.to_bytes())
    await holder.refresh()
    assert trained_at(metrics) == {"v2": trained.timestamp()}
    await registry.publish("v1", V1.to_bytes())  # no created_at
    await holder.refresh()
    assert (info(metrics), trained_at(metrics)) == ({"v1": 1.0}, {})
    await registry.activate("v2")
    await holder.refresh()
    assert trained_at(metrics) == {"v2": trained.timestamp()}
    await registry.deactivate()
    await holder.refresh()
    assert (info(metrics), trained_at(metrics)) == ({"blend": 1.0}, {})


async def test_deactivation_and_removal_fall_back_to_the_blend() -> None:
    registry = MemoryRankers()
    holder = holder_of(registry)
    await registry.publish("v1", V1.to_bytes())
    await holder.refresh()
    assert holder.status.serving == "v1"
    await registry.deactivate()
    await holder.refresh()
    assert holder.current is None
    assert holder.status.serving == "blend"

    await registry.activate("v1")
    await holder.refresh()
    assert holder.status.serving == "v1"
    await registry.remove("v1")
    await holder.refresh()
    assert holder.current is None


async def test_a_broken_artifact_serves_the_blend_and_is_not_loaded_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="recstream_api.rankers")
    registry, metrics = MemoryRankers(), ApiMetrics()
    holder = holder_of(registry, metrics)
    await registry.publish("v1", V1.to_bytes())
    await holder.refresh()
    assert holder.status.serving == "v1"

    await registry.publish("bad", corrupt_artifact("bad"))
    for _ in range(5):
        await holder.refresh()
    assert holder.current is None, "a broken model never serves; the blend does"
    status = holder.status
    assert (status.serving, status.failed_version) == ("blend", "bad")
    assert status.error is not None
    assert "bad" in status.error
    assert "does not load" in status.error
    assert registry.artifact_reads["bad"] == 1, "fetched and parsed once, not every poll"
    assert registry.polls == 6
    assert failures(metrics, "invalid") == 1
    [warning] = warnings_of(caplog)
    assert "model bad not loaded" in warning
    assert "the blend serves (was v1)" in warning
    assert info(metrics) == {"blend": 1.0}

    await registry.activate("v1")  # another version: served, the failure forgotten
    await holder.refresh()
    assert (holder.status.serving, holder.status.error, holder.status.failed_version) == (
        "v1",
        None,
        None,
    )
    await registry.activate("bad")  # activated again: tried again
    await holder.refresh()
    assert registry.artifact_reads["bad"] == 2
    assert holder.current is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"format": "something-else/1"}', "not a recstream-ranker/1 artifact"),
        (V1.to_bytes(), "published as 'v9', but the artifact names version 'v1'"),
    ],
)
async def test_every_kind_of_broken_artifact_is_refused(data: bytes, message: str) -> None:
    registry = MemoryRankers()
    holder = holder_of(registry)
    await registry.publish("v9", data)
    await holder.refresh()
    assert holder.current is None
    assert holder.status.failed_version == "v9"
    assert message in (holder.status.error or "")


async def test_an_active_version_without_its_artifact_is_retried_every_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="recstream_api.rankers")
    registry = MemoryRankers()
    holder = holder_of(registry)
    registry.active = "v1"  # as a registry edited by hand would say
    await holder.refresh()
    await holder.refresh()
    assert holder.current is None
    assert "v1 not loaded: it is active but not published" in (holder.status.error or "")
    assert holder.status.failed_version is None
    assert registry.artifact_reads["v1"] == 2, "a missing artifact may appear: read again"
    assert len(warnings_of(caplog)) == 1, "logged once, not every poll"
    registry.models["v1"] = V1.to_bytes()
    await holder.refresh()
    assert holder.status.serving == "v1"
    assert holder.status.error is None


async def test_a_redis_error_while_polling_keeps_the_model_being_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="recstream_api.rankers")
    registry, metrics = MemoryRankers(), ApiMetrics()
    holder = holder_of(registry, metrics)
    await registry.publish("v1", V1.to_bytes())
    await holder.refresh()
    served = holder.current

    registry.unreachable = True
    for _ in range(3):
        await holder.refresh()
    assert holder.current is served, "a transient outage does not change the ranking"
    assert holder.status.serving == "v1"
    assert "cannot be read" in (holder.status.error or "")
    assert failures(metrics, "redis") == 3
    [warning] = warnings_of(caplog)
    assert "still serving v1" in warning

    registry.unreachable = False
    await holder.refresh()
    assert holder.current is served
    assert holder.status.error is None
    assert any("readable again" in r.getMessage() for r in caplog.records)


async def test_the_holder_polls_and_hot_swaps_without_a_restart() -> None:
    registry = MemoryRankers()
    await registry.publish("v1", V1.to_bytes())
    holder = RankerHolder(registry, poll_seconds=0.02)
    await holder.start()
    try:
        assert holder.status.serving == "v1", "loaded before the first request"
        await registry.publish("v2", V2.to_bytes())

        async def swapped() -> bool:
            return holder.status.serving == "v2"

        await eventually(swapped, "v2 served")
        await registry.deactivate()

        async def blend() -> bool:
            return holder.current is None

        await eventually(blend, "the blend served")
    finally:
        await holder.stop()


class SwallowingRankers(MemoryRankers):
    """A registry whose read, once ``hang`` is set, waits and swallows a cancellation, as
    a client call in flight can."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = False
        self.reading = asyncio.Event()

    async def active_version(self) -> str | None:
        if self.hang:
            self.reading.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(30)
        return await super().active_version()


async def test_stopping_the_holder_ends_the_poll_even_when_a_read_swallows_the_cancel() -> None:
    registry = SwallowingRankers()
    holder = RankerHolder(registry, poll_seconds=0.01)
    await holder.start()
    registry.hang = True
    await asyncio.wait_for(registry.reading.wait(), 5)  # the poll is inside a read
    task = holder._task
    assert task is not None
    await asyncio.wait_for(holder.stop(), 10)  # the API's shutdown waits for this
    await asyncio.wait_for(task, 1)  # and the poll did end, at its next turn


async def test_a_disabled_holder_never_reads_the_registry() -> None:
    registry = MemoryRankers()
    await registry.publish("v1", V1.to_bytes())
    holder = RankerHolder(registry, poll_seconds=0.01, enabled=False)
    await holder.start()
    await holder.refresh()
    await holder.stop()
    assert holder.current is None
    assert registry.polls == 0
    assert (holder.status.enabled, holder.status.serving) == (False, "blend")


# --- the endpoints --------------------------------------------------------------------


@pytest.fixture
def rankers() -> MemoryRankers:
    return MemoryRankers()


@pytest.fixture
def fast_settings(settings: ApiSettings) -> ApiSettings:
    return settings.model_copy(update={"ranker": RankerSettings(poll_seconds=0.02)})


@pytest.fixture
async def api(
    fast_settings: ApiSettings, publisher: MemoryPublisher, rankers: MemoryRankers
) -> AsyncIterator[httpx.AsyncClient]:
    store = MemoryStore(fast_settings.redis.keyspace())
    await load_shop(store, fast_settings)
    async with serve_memory(fast_settings, store, publisher, rankers) as client:
        yield client


async def served_by(
    api: httpx.AsyncClient, settings: ApiSettings, ranker: str, **body: Any
) -> dict[str, Any]:
    """The caller's recommendations once ``ranker`` serves them (within a poll or so)."""
    found: dict[str, Any] = {}

    async def serving() -> bool:
        found.update(await post(api, settings, "u-me", **body))
        return bool(found["ranker"] == ranker)

    await eventually(serving, f"recommendations ranked by {ranker}")
    return found


async def test_the_response_names_the_ranker_and_the_model_reorders_the_list(
    api: httpx.AsyncClient, fast_settings: ApiSettings, rankers: MemoryRankers
) -> None:
    blend = await post(api, fast_settings, "u-me")
    assert blend["ranker"] == "blend"
    assert ids(blend) == BLEND_ORDER
    assert all(item["reasons"] == [] for item in blend["items"])

    await rankers.publish("v1", V1.to_bytes())
    learned = await served_by(api, fast_settings, "v1")
    assert ids(learned) == LEAST_POPULAR_FIRST, "the model's order, not the blend's"
    assert set(ids(learned)) == set(BLEND_ORDER), "the same filters hold"
    assert all(item["reasons"] == [] for item in learned["items"]), "reasons only on request"
    assert learned["weights"] == {"content": 0.0, "sequential": 0.0, "session": 0.0}
    scores = [item["score"] for item in learned["items"]]
    assert scores == sorted(scores, reverse=True)

    await rankers.publish("v2", V2.to_bytes())
    assert ids(await served_by(api, fast_settings, "v2")) == GROUPS_FIRST

    await rankers.deactivate()
    assert ids(await served_by(api, fast_settings, "blend")) == BLEND_ORDER


async def test_reasons_come_only_on_request_and_name_the_deciding_feature(
    api: httpx.AsyncClient, fast_settings: ApiSettings, rankers: MemoryRankers
) -> None:
    without_model = await post(api, fast_settings, "u-me", include_reasons=True)
    assert all(item["reasons"] == [] for item in without_model["items"]), "the blend has none"

    await rankers.publish("v1", V1.to_bytes())
    body = await served_by(api, fast_settings, "v1", include_reasons=True)
    first = body["items"][0]
    assert first["id"] == "p-C"
    [reason] = first["reasons"]
    assert reason["feature"] == "popular_score", "the only feature the model splits on"
    assert reason["contribution"] > 0
    # the popular items are pushed down by popular_score: no feature raised them
    assert [item["reasons"] for item in body["items"][1:]] == [[], []]


async def test_a_weight_override_and_the_session_list_are_ranked_by_the_blend(
    api: httpx.AsyncClient, fast_settings: ApiSettings, rankers: MemoryRankers
) -> None:
    await rankers.publish("v1", V1.to_bytes())
    await served_by(api, fast_settings, "v1")
    override = await api.post(
        RECS,
        json={"limit": 20, "user_id": "u-me", "weights": {"content": 1, "sequential": 1}},
        headers=ADMIN,
    )
    assert override.status_code == 200, override.text
    assert override.json()["ranker"] == "blend"
    session = await api.get(SESSION, params={"limit": 5}, headers=bearer(fast_settings, "u-me"))
    assert session.status_code == 200, session.text
    assert session.json()["ranker"] == "blend"


async def test_an_explanation_names_the_features_that_placed_the_item(
    api: httpx.AsyncClient, fast_settings: ApiSettings, rankers: MemoryRankers
) -> None:
    headers = bearer(fast_settings, "u-me")
    before = (await api.get(EXPLAIN, params={"product_id": "p-C"}, headers=headers)).json()
    assert (before["ranker"], before["features"], before["rank"]) == ("blend", [], 3)
    assert "model" not in before["reason"]

    await rankers.publish("v1", V1.to_bytes())
    await served_by(api, fast_settings, "v1")
    after = (await api.get(EXPLAIN, params={"product_id": "p-C"}, headers=headers)).json()
    assert (after["ranker"], after["rank"], after["recommended"]) == ("v1", 1, True)
    [feature] = after["features"]
    assert feature["feature"] == "popular_score"
    assert feature["contribution"] > 0
    assert "model v1 ranks it for popular_score (+" in after["reason"]
    assert after["triggers"], "the user's own events still back it"

    pushed_down = (await api.get(EXPLAIN, params={"product_id": "p-B"}, headers=headers)).json()
    assert (pushed_down["rank"], pushed_down["features"]) == (2, [])  # of LEAST_POPULAR_FIRST
    assert "none of its features raised its score" in pushed_down["reason"]


async def test_health_reports_the_ranker_and_a_model_that_does_not_load(
    api: httpx.AsyncClient, fast_settings: ApiSettings, rankers: MemoryRankers
) -> None:
    start = (await api.get(HEALTH)).json()["ranker"]
    assert start["enabled"] is True
    assert (start["active"], start["error"], start["failed_version"]) == ("blend", None, None)
    assert start["checked_at"] is not None

    await rankers.publish("v1", V1.to_bytes())
    await served_by(api, fast_settings, "v1")
    assert (await api.get(HEALTH)).json()["ranker"]["active"] == "v1"

    await rankers.publish("bad", corrupt_artifact("bad"))
    blend = await served_by(api, fast_settings, "blend")
    assert ids(blend) == BLEND_ORDER
    ranker = (await api.get(HEALTH)).json()["ranker"]
    assert (ranker["active"], ranker["failed_version"]) == ("blend", "bad")
    assert "model bad not loaded" in ranker["error"]


async def test_metrics_show_the_ranker_and_count_lists_by_what_ranked_them(
    api: httpx.AsyncClient, fast_settings: ApiSettings, rankers: MemoryRankers
) -> None:
    await post(api, fast_settings, "u-me")
    await rankers.publish("v1", V1.to_bytes())
    await served_by(api, fast_settings, "v1")
    await post(api, fast_settings, "u-me")
    text = (await api.get("/metrics")).text
    assert 'recstream_api_ranker_info{version="v1"} 1.0' in text
    assert 'recstream_api_ranker_info{version="blend"}' not in text
    assert 'recstream_api_recommendations_total{ranker="blend"}' in text
    learned = next(
        line
        for line in text.splitlines()
        if line.startswith('recstream_api_recommendations_total{ranker="learned"}')
    )
    assert float(learned.split()[-1]) >= 2


async def test_admins_list_activate_and_deactivate_models(
    api: httpx.AsyncClient, fast_settings: ApiSettings, rankers: MemoryRankers
) -> None:
    await rankers.publish("v1", V1.to_bytes(), activate=False)
    await rankers.publish("v2", V2.to_bytes(), activate=False)
    await rankers.publish("bad", corrupt_artifact("bad"), activate=False)
    listing = await api.get(RANKERS, headers=ADMIN)
    assert listing.status_code == 200, listing.text
    assert listing.json()["versions"] == ["bad", "v1", "v2"]
    assert listing.json()["active"] is None
    assert listing.json()["serving"]["active"] == "blend"

    unknown = await api.put(ACTIVE, json={"version": "v7"}, headers=ADMIN)
    assert unknown.status_code == 404, unknown.text
    error = unknown.json()["error"]
    assert error["code"] == "not_found"
    assert "no published ranker model 'v7'" in error["message"]
    assert error["details"]["published"] == ["bad", "v1", "v2"]

    broken = await api.put(ACTIVE, json={"version": "bad"}, headers=ADMIN)
    assert broken.status_code == 422, broken.text
    assert "model bad cannot serve" in broken.json()["error"]["message"]
    assert rankers.active is None, "a model that does not load is never activated"

    activated = await api.put(ACTIVE, json={"version": "v2"}, headers=ADMIN)
    assert activated.status_code == 200, activated.text
    assert activated.json()["active"] == "v2"
    assert activated.json()["serving"]["active"] == "v2", "this process follows at once"
    assert (await post(api, fast_settings, "u-me"))["ranker"] == "v2"

    deactivated = await api.put(ACTIVE, json={"version": None}, headers=ADMIN)
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["active"] is None
    assert deactivated.json()["serving"]["active"] == "blend"
    assert (await post(api, fast_settings, "u-me"))["ranker"] == "blend"


async def test_only_admins_manage_models(
    api: httpx.AsyncClient, fast_settings: ApiSettings, rankers: MemoryRankers
) -> None:
    await rankers.publish("v1", V1.to_bytes(), activate=False)
    user = bearer(fast_settings, "u-me")
    assert (await api.get(RANKERS, headers=user)).status_code == 403
    assert (await api.put(ACTIVE, json={"version": "v1"}, headers=user)).status_code == 403
    assert (await api.put(ACTIVE, json={"version": None}, headers=user)).status_code == 403
    assert (await api.get(RANKERS)).status_code == 401
    assert rankers.active is None


async def test_an_unreachable_registry_answers_503_on_the_admin_routes(
    api: httpx.AsyncClient, rankers: MemoryRankers
) -> None:
    rankers.unreachable = True
    response = await api.get(RANKERS, headers=ADMIN)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
