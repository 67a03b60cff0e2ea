"""The recommendation endpoints in process on the memory store: the API's logic in seconds.

The shop of ``tests/integration/test_api_recommend.py`` (its ``shop_events`` and
``CATALOG``, folded by its ``load_shop`` with ``apply_batch`` as the consumer folds
them) is loaded into a ``MemoryStore``, and the app is built with
``create_app(store=..., publisher=..., rankers=...)``: no Redis, no broker. The publisher
is an in-memory one (an ``EventPublisher`` that keeps what it is given and never starts a
producer), so the lifespan reaches for no broker at start; the ranker registry is an
in-memory one (``tests/unit/ranker_models.py``), empty unless a test publishes a model.
The Redis client the lifespan builds is pointed at a closed port and is never used by
these routes (it connects only on use). The integration tier runs the same shop on a real
Redis and a real broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from recstream.apply.batch import RawRecord, apply_batch
from recstream.contract.keyspace import Keyspace, Stat
from recstream.scoring.experiments import Experiment, assign
from recstream.store.memory import MemoryStore
from recstream_api.main import create_app
from recstream_api.publisher import Delivered, EventPublisher, OutgoingRecord
from recstream_api.settings import ApiSettings

from ..integration.test_api import (
    ADMIN_KEY,
    PREFIX,
    TRACK_KEY,
    api_settings,
    bearer,
    closed_address,
)
from ..integration.test_api_recommend import (
    ME_LAST,
    NOW,
    PARTITION,
    RECS,
    clock,
    ids,
    load_shop,
)
from .ranker_models import MemoryRankers

SESSION = f"{PREFIX}/session/recommendations"
NEXT = f"{PREFIX}/sequential/next-products"
EXPLAIN = f"{RECS}/explain"
TRACK = f"{PREFIX}/track-interaction"
TOPIC = "interactions"


class MemoryPublisher(EventPublisher):
    """A publisher without a broker: it keeps the records it is given, one partition."""

    def __init__(self, settings: ApiSettings) -> None:
        super().__init__(settings.kafka, 0, 1.0)
        self.records: list[OutgoingRecord] = []

    async def start(self) -> None:
        pass

    async def publish(self, records: Sequence[OutgoingRecord]) -> list[Delivered]:
        first = len(self.records)
        self.records += records
        return [Delivered(0, first + i) for i in range(len(records))]

    async def ping(self, timeout_seconds: float) -> float:
        return 0.0


@pytest.fixture
def settings() -> ApiSettings:
    unused = closed_address()
    return api_settings(f"redis://{unused}/0", unused, Keyspace(), "interactions")


@pytest.fixture
def publisher(settings: ApiSettings) -> MemoryPublisher:
    return MemoryPublisher(settings)


@asynccontextmanager
async def serve_memory(
    settings: ApiSettings,
    store: MemoryStore,
    publisher: EventPublisher,
    rankers: MemoryRankers | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on ``store`` with its lifespan running, and a client talking to it in process;
    the ranker registry is ``rankers`` (default: an empty one, the blend serves)."""
    registry = rankers if rankers is not None else MemoryRankers()
    app = create_app(settings, clock=clock, store=store, publisher=publisher, rankers=registry)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        yield client


@pytest.fixture
async def api(
    settings: ApiSettings, publisher: MemoryPublisher
) -> AsyncIterator[httpx.AsyncClient]:
    store = MemoryStore(settings.redis.keyspace())
    await load_shop(store, settings)
    async with serve_memory(settings, store, publisher) as client:
        yield client


async def post(api: httpx.AsyncClient, settings: ApiSettings, user: str, **body: Any) -> Any:
    response = await api.post(RECS, json={"limit": 20, **body}, headers=bearer(settings, user))
    assert response.status_code == 200, response.text
    return response.json()


async def get(
    api: httpx.AsyncClient, settings: ApiSettings, url: str, user: str, **params: Any
) -> Any:
    response = await api.get(url, params=params, headers=bearer(settings, user))
    assert response.status_code == 200, response.text
    return response.json()


def seen_flags(body: dict[str, Any]) -> dict[str, bool]:
    """id -> seen_in_session of every listed item."""
    return {i.get("id", i.get("product_id")): i["seen_in_session"] for i in body["items"]}


async def test_recommendations_are_ranked_and_follow_the_session(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    body = await post(api, settings, "u-me")
    assert (body["user_id"], body["cold_start"]) == ("u-me", False)
    assert body["watermark"] == {"partition": PARTITION, "offset": ME_LAST}
    assert body["computed_at"].startswith(NOW.date().isoformat())
    assert body["intent"]["kind"] == "research", "a search in the current session"
    found = ids(body)
    assert "p-B" in found, "A was followed by B in other sessions"
    assert {"p-Z", "p-OUT"}.isdisjoint(found), "already purchased, out of stock"
    assert [i["rank"] for i in body["items"]] == list(range(1, len(found) + 1))
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    for item in body["items"]:
        assert sum(item["components"].values()) == pytest.approx(item["score"])
    assert next(i for i in body["items"] if i["id"] == "p-B")["components"]["sequential"] > 0


async def test_filters_and_kinds(api: httpx.AsyncClient, settings: ApiSettings) -> None:
    assert "p-Z" in ids(await post(api, settings, "u-me", filters={"exclude_purchased": False}))
    assert ids(await post(api, settings, "u-me", kind="groups")) == ["g-1"]
    garden = await post(api, settings, "u-me", filters={"include_categories": ["garden"]})
    assert ids(garden) == ["p-C"]
    assert len((await post(api, settings, "u-me", limit=1))["items"]) == 1


async def test_the_item_on_screen_and_the_shown_items_never_come_back(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    context = {"product_id": "p-B", "shown_product_ids": ["p-C"], "shown_group_ids": ["g-1"]}
    for include_seen in (False, True):
        body = await post(api, settings, "u-me", context=context, include_seen=include_seen)
        assert {"p-B", "p-C", "g-1"}.isdisjoint(ids(body)), include_seen
    on_the_seen_page = await post(
        api, settings, "u-me", context={"product_id": "p-A"}, include_seen=True
    )
    assert "p-A" not in ids(on_the_seen_page)
    on_b = await get(api, settings, SESSION, "u-me", product_id="p-B")
    assert "p-B" not in seen_flags(on_b)
    for user in ("u-me", "newcomer"):
        after_a = await get(api, settings, NEXT, user, product_id="p-A", include_seen="true")
        assert "p-A" not in seen_flags(after_a), user


async def test_seen_items_come_back_only_with_include_seen_and_marked(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    default = seen_flags(await post(api, settings, "u-me"))
    assert default, "the list is back-filled, not empty"
    assert "p-A" not in default
    assert not any(default.values())
    seen = seen_flags(await post(api, settings, "u-me", include_seen=True))
    assert seen["p-A"] is True
    assert not any(flag for item, flag in seen.items() if item != "p-A")
    session = seen_flags(await get(api, settings, SESSION, "u-me", include_seen="true"))
    assert session.get("p-A") is True
    why = await get(api, settings, EXPLAIN, "u-me", product_id="p-A")
    assert (why["filtered_by"], why["recommended"]) == ("seen_in_session", False)


async def test_a_cold_start_user_gets_popular_items(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    body = await post(api, settings, "newcomer", limit=3)
    assert (body["source"], body["cold_start"], body["watermark"]) == ("cold_start", True, None)
    assert ids(body)[0] in {"p-A", "p-B"}, "the most viewed products"
    assert "p-OUT" not in ids(body)


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("POST", RECS, {"json": {"limit": 0}}),
        ("POST", RECS, {"json": {"kind": "everything"}}),
        ("POST", RECS, {"json": {"surprise": 1}}),
        ("POST", RECS, {"json": {"context": {"product_id": "p-A", "group_id": "g-1"}}}),
        ("POST", RECS, {"json": {"filters": {"exclude_product_ids": ["has space"]}}}),
        ("POST", RECS, {"json": {"include_seen": "yes"}}),
        ("GET", SESSION, {"params": {"product_id": "a b"}}),
        ("GET", NEXT, {"params": {"include_seen": "maybe"}}),
        ("GET", EXPLAIN, {"params": {}}),
    ],
)
async def test_bad_requests_are_422(
    api: httpx.AsyncClient, settings: ApiSettings, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    response = await api.request(method, url, headers=bearer(settings, "u-me"), **kwargs)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


async def test_callers_are_authenticated_and_read_only_their_own(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    assert (await api.post(RECS, json={})).status_code == 401
    other = await api.post(RECS, json={"user_id": "u-me"}, headers=bearer(settings, "v1"))
    assert other.status_code == 403
    admin = await api.post(RECS, json={"user_id": "u-me"}, headers={"X-API-Key": ADMIN_KEY})
    assert admin.status_code == 200
    assert admin.json()["user_id"] == "u-me"


async def test_tracking_goes_to_the_injected_publisher(
    api: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    event = {
        "event_id": "t-1",
        "event_type": "product_view",
        "user_id": "u-me",
        "occurred_at": NOW.isoformat(),
        "product_id": "p-C",
    }
    response = await api.post(TRACK, json=event, headers={"X-API-Key": TRACK_KEY})
    assert response.status_code == 202, response.text
    assert response.json()["events"] == [{"event_id": "t-1", "partition": 0, "offset": 0}]
    [record] = publisher.records
    assert record.key == b"u-me"
    assert orjson.loads(record.value)["product_id"] == "p-C"


OUTCOMES = f"{PREFIX}/recommendation-outcomes"


async def published(
    publisher: MemoryPublisher, event_type: str, count: int = 1
) -> list[dict[str, Any]]:
    """The records of ``event_type`` the publisher got, once the background writer sent
    ``count`` of them (within a second)."""
    for _ in range(100):
        found = [orjson.loads(r.value) for r in publisher.records]
        if sum(f["event_type"] == event_type for f in found) >= count:
            return [f for f in found if f["event_type"] == event_type]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {event_type} record published")


async def click(
    api: httpx.AsyncClient, event_id: str, listed: dict[str, Any], item: dict[str, Any]
) -> None:
    """u-me views ``item`` of the list ``listed``, naming the list (tracked by the shop)."""
    event = {
        "event_id": event_id,
        "event_type": f"{item['kind']}_view",
        "user_id": "u-me",
        "occurred_at": NOW.isoformat(),
        f"{item['kind']}_id": item["id"],
        "recommendation_id": listed["recommendation_id"],
    }
    response = await api.post(TRACK, json=event, headers={"X-API-Key": TRACK_KEY})
    assert response.status_code == 202, response.text


def as_topic(publisher: MemoryPublisher) -> list[RawRecord]:
    """What the publisher got, as the consumer reads it from the topic."""
    stamp = int(NOW.timestamp() * 1000)
    return [
        RawRecord(TOPIC, PARTITION, 1_000 + i, stamp, r.key, r.value)
        for i, r in enumerate(publisher.records)
    ]


async def test_a_click_on_a_recommended_item_is_counted_once_for_the_variant(
    settings: ApiSettings, publisher: MemoryPublisher
) -> None:
    """The list's id and variant come back; its impression record goes to the topic; a
    click that names the id, applied as the consumer applies the topic, shows in the
    outcomes report once, however often the records are delivered."""
    settings = settings.model_copy(update={"outcomes_refresh_seconds": 0.02})
    store = MemoryStore(settings.redis.keyspace())
    await load_shop(store, settings)
    async with serve_memory(settings, store, publisher) as api:
        body = await post(api, settings, "u-me", context={"product_id": "p-B"})
        assert body["variant"] == "blend"
        assert len(body["recommendation_id"]) == 32
        [shown] = await published(publisher, "recommendation_shown")
        assert (shown["recommendation_id"], shown["variant"]) == (
            body["recommendation_id"],
            "blend",
        )
        assert (shown["user_id"], shown["product_id"]) == ("u-me", "p-B")
        assert [(i["id"], i["position"]) for i in shown["items"]] == [
            (i["id"], i["rank"]) for i in body["items"]
        ]
        await click(api, "click-1", body, body["items"][1])
        records = as_topic(publisher)
        for _ in range(2):  # a redelivery changes nothing
            assert not (await apply_batch(store, records, settings.core)).dead_letters
        report = await api.get(OUTCOMES, params={"days": 1}, headers={"X-API-Key": ADMIN_KEY})
        await asyncio.sleep(0.1)  # the gauge's background read
        scraped = (await api.get("/metrics")).text
    assert 'recstream_outcomes{counter="click",variant="blend"} 1.0' in scraped
    assert 'recstream_api_impressions_total{outcome="published"} 1.0' in scraped
    assert report.status_code == 200, report.text
    [blend] = report.json()["variants"]
    assert blend["variant"] == "blend"
    total = blend["total"]
    assert (total["impressions"], total["items"]) == (1, len(body["items"]))
    assert total["click"]["count"] == 1
    assert total["click"]["rate"] == 1.0
    assert total["click"]["by_position"] == {"2": 1}
    assert 0.2 < total["click"]["ci95"][0] < 1.0 == total["click"]["ci95"][1]
    assert total["purchase"]["count"] == 0
    [today] = blend["days"]
    assert today["day"] == NOW.date().isoformat()
    assert today["click"]["count"] == 1


async def test_similar_and_trending_lists_are_counted_for_the_user_who_saw_them(
    settings: ApiSettings, publisher: MemoryPublisher
) -> None:
    """With a user's token the shared lists get an id and an impression record (the item
    on screen included); with an API key nobody saw them: no id, no record. A click that
    names the id counts under the list's variant."""
    store = MemoryStore(settings.redis.keyspace())
    await load_shop(store, settings)
    async with serve_memory(settings, store, publisher) as api:
        similar = await get(api, settings, f"{PREFIX}/items/similar", "u-me", product_id="p-A")
        trending = await get(api, settings, f"{PREFIX}/items/trending", "u-me")
        keyed = await api.get(f"{PREFIX}/items/trending", headers={"X-API-Key": ADMIN_KEY})
        assert keyed.status_code == 200, keyed.text
        assert (keyed.json()["recommendation_id"], keyed.json()["variant"]) == (None, "trending")
        assert (similar["variant"], trending["variant"]) == ("similar-items", "trending")
        records = await published(publisher, "recommendation_shown", count=2)
        shown = {r["recommendation_id"]: r for r in records}
        assert shown.keys() == {similar["recommendation_id"], trending["recommendation_id"]}
        on_screen = shown[similar["recommendation_id"]]
        assert (on_screen["variant"], on_screen["user_id"], on_screen["product_id"]) == (
            "similar-items",
            "u-me",
            "p-A",
        )
        assert [i["id"] for i in on_screen["items"]] == [i["id"] for i in similar["items"]]
        await click(api, "click-similar", similar, similar["items"][0])
        assert not (await apply_batch(store, as_topic(publisher), settings.core)).dead_letters
        report = await api.get(OUTCOMES, headers={"X-API-Key": ADMIN_KEY})
    assert report.status_code == 200, report.text
    by_variant = {v["variant"]: v["total"] for v in report.json()["variants"]}
    assert by_variant["similar-items"]["click"]["count"] == 1
    assert by_variant["trending"]["click"]["count"] == 0
    assert by_variant["trending"]["impressions"] == 1


async def test_explaining_an_experiments_list_needs_the_experiment(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    params = {"product_id": "p-B", "variant": "tune:bandit.0"}
    response = await api.get(EXPLAIN, params=params, headers=bearer(settings, "u-me"))
    assert response.status_code == 422, response.text
    assert "no experiment runs now" in response.text
    blend = await api.get(
        EXPLAIN, params={"product_id": "p-B", "variant": "blend"}, headers=bearer(settings, "u-me")
    )
    assert blend.status_code == 200, blend.text


async def test_the_api_writes_the_impression_records_itself(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    event = {
        "event_id": "fake-1",
        "event_type": "recommendation_shown",
        "user_id": "u-me",
        "occurred_at": NOW.isoformat(),
        "recommendation_id": "r-1",
        "variant": "blend",
        "items": [{"kind": "product", "id": "p-A", "position": 1}],
    }
    response = await api.post(TRACK, json=event, headers={"X-API-Key": TRACK_KEY})
    assert response.status_code == 422, response.text
    [problem] = response.json()["error"]["details"][0]["errors"]
    assert problem["type"] == "written_by_the_api"
    assert "written by the API" in problem["msg"]


async def test_the_outcomes_report_is_for_admins(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    assert (await api.get(OUTCOMES, headers=bearer(settings, "u-me"))).status_code == 403
    empty = await api.get(OUTCOMES, headers={"X-API-Key": ADMIN_KEY})
    assert empty.status_code == 200
    assert empty.json()["variants"] == []
    too_far = await api.get(OUTCOMES, params={"days": 91}, headers={"X-API-Key": ADMIN_KEY})
    assert too_far.status_code == 422


async def test_an_experiment_splits_users_and_its_report_compares_the_variants(
    settings: ApiSettings, publisher: MemoryPublisher
) -> None:
    """Users get their variant's ranking and name (the ranker variant ranks with the blend
    while no model is active: intention to treat); a click counts for the user's variant,
    and the experiment's report compares it with the control."""
    experiment = Experiment.model_validate(
        {
            "id": "ab",
            "variants": [
                {"name": "control", "share": 0.5},
                {
                    "name": "sequential",
                    "share": 0.5,
                    "weights": {"content": 0, "sequential": 1, "session": 0},
                },
            ],
        }
    )
    configured = settings.model_copy(update={"experiments": (experiment,)})
    users = ["u-me", *(f"u-x{n}" for n in range(12))]
    store = MemoryStore(configured.redis.keyspace())
    await load_shop(store, configured)
    async with serve_memory(configured, store, publisher) as api:
        names = {u: (await post(api, configured, u))["variant"] for u in users}
        assert names == {u: f"ab:{assign(experiment, u).name}" for u in users}
        assert len(set(names.values())) == 2, "both variants among a dozen users"
        me = await post(api, configured, "u-me")
        if names["u-me"] == "ab:sequential":
            assert me["weights"] == {"content": 0.0, "sequential": 1.0, "session": 0.0}
        unknown = await api.get(
            OUTCOMES, params={"experiment": "nope"}, headers={"X-API-Key": ADMIN_KEY}
        )
        assert unknown.status_code == 404
        assert unknown.json()["error"]["details"] == {"known": ["ab"]}
        report = await api.get(
            OUTCOMES, params={"experiment": "ab", "days": 0}, headers={"X-API-Key": ADMIN_KEY}
        )
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["experiment"]["shares"] == {"ab:control": 0.5, "ab:sequential": 0.5}
    assert body["experiment"]["control"] == "ab:control"
    control, treated = body["variants"]
    assert (control["variant"], treated["variant"]) == ("ab:control", "ab:sequential")
    assert control["vs_control"] is None
    assert set(treated["vs_control"]) == {"click", "purchase", "revenue_per_impression"}


async def test_a_bandit_serves_the_arm_its_counters_favour(
    settings: ApiSettings, publisher: MemoryPublisher
) -> None:
    """The arms' counters in the store (as the consumer keeps them) say arm 1's lists are
    clicked twenty times as often: with no exploration, every bandit user gets arm 1."""
    arms = [
        {"content": 1, "sequential": 0, "session": 0},
        {"content": 0, "sequential": 1, "session": 0},
    ]
    experiment = Experiment.model_validate(
        {
            "id": "tune",
            "exploration": 0.0,
            "variants": [
                {"name": "fixed", "share": 0.5},
                {"name": "bandit", "share": 0.5, "arms": arms},
            ],
        }
    )
    configured = settings.model_copy(update={"experiments": (experiment,)})
    store = MemoryStore(configured.redis.keyspace())
    await load_shop(store, configured)
    for arm, clicks in ((0, 2), (1, 40)):
        key = store.keyspace.stat(Stat.OUTCOMES, f"tune:bandit.{arm}")
        store.hashes[key] = {"impressions": "200", "click": str(clicks)}
    candidates = (f"u-b{n}" for n in range(60))
    users = [u for u in candidates if assign(experiment, u).name == "bandit"][:8]
    async with serve_memory(configured, store, publisher) as api:
        served = [(await post(api, configured, u))["variant"] for u in users]
        # explaining a list arm 0 ranked (it explored): as arm 0 ranks, not a new draw
        assert assign(experiment, "v1").name == "bandit"  # a shopper with a history
        explained = {}
        for arm in ("tune:bandit.0", "tune:bandit.1"):
            response = await api.get(
                EXPLAIN,
                params={"product_id": "p-Z", "variant": arm},
                headers=bearer(configured, "v1"),
            )
            assert response.status_code == 200, response.text
            explained[arm] = response.json()
        other = await api.get(
            EXPLAIN,
            params={"product_id": "p-A", "variant": "tune:fixed"},
            headers=bearer(configured, users[0]),
        )
    assert served == ["tune:bandit.1"] * len(users)
    scores = {arm: body["score"] for arm, body in explained.items()}
    assert scores["tune:bandit.0"] != scores["tune:bandit.1"], "each arm's own weights"
    assert other.status_code == 422, other.text
    assert "does not rank this user's lists" in other.text


async def test_a_request_with_its_own_weights_is_counted_apart(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    weights = {"content": 1, "sequential": 0, "session": 0}
    own = await api.post(
        RECS, json={"user_id": "u-me", "weights": weights}, headers={"X-API-Key": ADMIN_KEY}
    )
    assert own.status_code == 200, own.text
    assert own.json()["variant"] == "override"
    assert (await post(api, settings, "u-me"))["variant"] == "blend"
