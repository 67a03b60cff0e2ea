"""The live demo at ``/demo``: a storefront that sends events with the JS client and shows
the profile, the session's intent and the recommendations react. Development only.

:func:`install_demo` adds the routes when ``environment == "dev"``; in ``prod``
neither the page nor the token minting exists (404). The routes:

- ``GET /demo``: the page (``static/index.html``, plain HTML/JS/CSS, no build step);
- ``GET /demo/static/*``: its script and style sheet;
- ``GET /demo/recstream.js``: the tracking client, ``clients/js/recstream.js``;
- ``GET /demo/catalog.json``: the storefront's items and the demo users;
- ``POST /demo/token``: a one-hour token for a demo user (ids ``demo-...`` only);
- ``GET /demo/outcomes``: every variant's lists shown and clicked (the page's panel).

The catalog comes from the Diginetica sample of the shared datasets folder
(``shared/datasets/`` in this directory or one above it, as in a checkout next
to the datasets; the client file is found the same way). It is built on the
first demo request, once per process, and published to the ``catalog`` topic
(so the consumer applies it like any catalog feed); when Redis has no demo
catalog yet, the dataset's sessions on those items are also published to the
interactions topic, re-timed into the last day (:mod:`recstream_api.demo_catalog`).
That first request answers once the consumer has applied both (30 s at most).
Nothing is built or published by an app whose demo is never opened.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Body, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from recstream.contract.catalog import GroupRecord, ProductRecord
from recstream.contract.events import Event, encode_event
from recstream.offline.datasets import diginetica_events
from recstream.platform.kafka import client_options, start_client
from recstream.platform.settings import KafkaSettings
from recstream.readmodel.outcomes import load_outcomes
from recstream_api.auth import issue_token
from recstream_api.demo_catalog import DemoCatalog, build_catalog, catalog_records, seed_events
from recstream_api.deps import Resources, ResourcesDep
from recstream_api.exceptions import InvalidRequestError
from recstream_api.settings import ApiSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
DATASET = Path("shared/datasets/diginetica-sample/events.csv")
CLIENT = Path("clients/js/recstream.js")
DEMO_USERS = ("demo-ana", "demo-ben", "demo-chen", "demo-dara")
DEMO_USER = re.compile(r"^demo-[a-z0-9][a-z0-9-]{0,40}$")
TOKEN_TTL = timedelta(hours=1)
PUBLISH_TIMEOUT_SECONDS = 60.0
APPLY_TIMEOUT_SECONDS = 30.0  # is the consumer running? the page works without, only emptier
APPLY_POLL_SECONDS = 0.1


def find_upwards(relative: Path, starts: list[Path]) -> Path | None:
    """The first ``<dir>/<relative>`` that is a file, for each start folder and its parents."""
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / relative
            if candidate.is_file():
                return candidate
    return None


def _starts() -> list[Path]:
    return [Path.cwd(), Path(__file__).resolve().parent]


@dataclass(frozen=True, slots=True)
class DemoState:
    """The demo's catalog as published, or why there is none."""

    catalog: DemoCatalog | None
    published_items: int = 0
    seeded_events: int = 0
    problem: str | None = None


async def publish(
    kafka: KafkaSettings, records: list[ProductRecord | GroupRecord], events: list[Event]
) -> dict[str, tuple[int, int]]:
    """Catalog records to the catalog topic (keyed by item), events to the interactions topic.

    Returns the user and (partition, offset) of the last event of every partition.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=f"{kafka.client_id}-demo",
        acks="all",
        linger_ms=20,
        **client_options(kafka.security),
    )
    await start_client(producer, kafka.bootstrap_servers, kafka.security)
    try:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            futures = [
                await producer.send(
                    kafka.catalog_topic,
                    key=r.item.encode(),
                    value=r.model_dump_json(exclude_none=True).encode(),
                )
                for r in records
            ]
            futures += [
                await producer.send(
                    kafka.interactions_topic, key=e.user_id.encode(), value=encode_event(e)
                )
                for e in events
            ]
            delivered = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    last: dict[int, tuple[str, int]] = {}
    for event, meta in zip(events, delivered[len(records) :], strict=True):
        last[meta.partition] = (event.user_id, meta.offset)
    return {user: (partition, offset) for partition, (user, offset) in last.items()}


async def wait_applied(
    resources: Resources, items: list[str], last: dict[str, tuple[int, int]]
) -> None:
    """Wait until the consumer has applied the catalog and the last seeded event of each
    partition (the user's watermark reached its offset). The caller bounds the wait."""
    keys = [resources.store.keyspace.catalog_item(item) for item in items]
    pending = dict(last)
    while True:
        if await resources.redis.exists(*keys) == len(keys):
            for user, (partition, offset) in list(pending.items()):
                state = await resources.store.get_user(user)
                mark = state.watermark if state is not None else None
                if mark is not None and mark.partition == partition and mark.offset >= offset:
                    del pending[user]
            if not pending:
                return
        await asyncio.sleep(APPLY_POLL_SECONDS)


class DemoSite:
    """Builds and publishes the demo catalog once, on first use."""

    def __init__(self, settings: ApiSettings) -> None:
        self._settings = settings
        self._state: DemoState | None = None
        self._lock = asyncio.Lock()

    async def state(self, resources: Resources) -> DemoState:
        async with self._lock:
            if self._state is None or self._state.problem is not None:
                self._state = await self._prepare(resources)
            return self._state

    async def _prepare(self, resources: Resources) -> DemoState:
        dataset = find_upwards(DATASET, _starts())
        if dataset is None:
            return DemoState(None, problem=f"no {DATASET} in this folder or one above it")
        now = resources.clock()
        events = await asyncio.to_thread(_read_events, dataset)
        catalog = build_catalog(events, now)
        records = catalog_records(catalog, now)
        first = resources.store.keyspace.catalog_item(records[0].item)
        seeded = [] if await resources.redis.exists(first) else seed_events(events, catalog, now)
        try:
            last = await publish(self._settings.kafka, records, seeded)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("demo catalog not published: %r", exc)
            return DemoState(catalog, problem=f"the broker did not take the demo catalog: {exc!r}")
        try:
            async with asyncio.timeout(APPLY_TIMEOUT_SECONDS):
                await wait_applied(resources, [r.item for r in records], last)
        except TimeoutError:
            log.warning("demo catalog published, not applied within %ss", APPLY_TIMEOUT_SECONDS)
        log.info("demo catalog: %d items published, %d events seeded", len(records), len(seeded))
        return DemoState(catalog, len(records), len(seeded))


def _read_events(path: Path) -> list[Event]:
    with path.open(encoding="utf-8", newline="") as lines:
        return list(diginetica_events(lines, bad_rows=[]))


def _catalog_body(state: DemoState) -> dict[str, Any]:
    catalog = state.catalog
    return {
        "ready": state.problem is None and catalog is not None,
        "problem": state.problem,
        "users": list(DEMO_USERS),
        "published_items": state.published_items,
        "seeded_events": state.seeded_events,
        "products": [asdict(p) for p in catalog.products] if catalog else [],
        "groups": [{**asdict(g), "closes_at": g.closes_at.isoformat()} for g in catalog.groups]
        if catalog
        else [],
    }


def demo_router(site: DemoSite, settings: ApiSettings, client_file: Path | None) -> APIRouter:
    router = APIRouter(prefix="/demo", include_in_schema=False)

    @router.get("")
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @router.get("/recstream.js")
    async def client() -> FileResponse:
        if client_file is None:
            raise HTTPException(404, f"{CLIENT} was not found next to the API")
        return FileResponse(client_file, media_type="text/javascript")

    @router.get("/catalog.json")
    async def catalog(resources: ResourcesDep) -> JSONResponse:
        return JSONResponse(_catalog_body(await site.state(resources)))

    @router.get("/outcomes")
    async def outcomes(resources: ResourcesDep) -> list[dict[str, Any]]:
        """Every variant's lists shown and clicked (the demo's panel; the admin report is
        GET /recommendation-outcomes)."""
        found = await load_outcomes(resources.store)
        return [
            {
                "variant": v.variant,
                "impressions": v.total.impressions,
                "clicks": v.total.counts.get("click", 0),
                "ctr": v.total.rate("click").value,
            }
            for v in found
        ]

    @router.post("/token")
    async def token(user_id: str = Body(embed=True)) -> dict[str, Any]:
        if not DEMO_USER.match(user_id):
            raise InvalidRequestError("demo tokens are for user ids 'demo-<letters, digits, ->'")
        minted = issue_token(settings, user_id, ttl=TOKEN_TTL)
        return {"user_id": user_id, "token": minted, "expires_in": int(TOKEN_TTL.total_seconds())}

    return router


def install_demo(app: FastAPI, settings: ApiSettings) -> None:
    """Mount the demo, only in development."""
    if settings.environment != "dev":
        return
    site = DemoSite(settings)
    app.include_router(demo_router(site, settings, find_upwards(CLIENT, _starts())))
    app.mount("/demo/static", StaticFiles(directory=STATIC), name="demo-static")
