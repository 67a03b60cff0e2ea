"""Prometheus metrics of the query API, served at ``GET /metrics``.

- ``recstream_api_request_duration_seconds{method,route,status}`` (histogram): time
  from the request to the end of the response;
- ``recstream_api_errors_total{route,status,code}`` (counter): answers with status
  >= 400, by the ``code`` of the error body (``http_<status>`` without one);
- ``recstream_api_redis_round_trips{route}`` (histogram): Redis round trips of one
  request (a command or a pipeline execution counts once);
- ``recstream_api_requests_in_flight`` (gauge): requests being served now;
- ``recstream_api_ranker_info{version}`` (gauge): 1 for the ranker this process serves,
  a learned model's version or ``blend`` (:mod:`recstream_api.rankers`);
- ``recstream_api_ranker_created_timestamp_seconds{version}`` (gauge): when the served
  model was trained (its artifact's ``created_at``, Unix seconds); no series while the
  blend serves or when the artifact does not say. ``time()`` minus it is the served
  model's age: an alert on it catches a scheduled training that stopped publishing
  (docs/ranker.md);
- ``recstream_api_ranker_load_failures_total{reason}`` (counter): failed attempts to
  follow the ranker registry: ``invalid`` (an artifact that cannot serve), ``missing``
  (an active version that is not published), ``redis`` (the registry could not be read);
- ``recstream_api_recommendations_total{ranker}`` (counter): lists answered by
  ``POST /recommendations``, by what ranked them: ``learned`` or ``blend`` (a cold start
  or a weight override is ranked by the blend while a model is active);
- ``recstream_api_impressions_total{outcome}`` (counter): impression records of the lists
  returned (:mod:`recstream_api.impressions`), ``published`` to the interactions topic or
  ``dropped`` (the queue was full while the broker was away, or the process stopped);
- ``recstream_outcomes{variant,counter}`` (gauge): the outcome counters the consumer keeps
  per variant (``impressions``, ``items``, ``click``, ``cart``, ``join``, ``purchase``,
  ``revenue_cents``, ``revenue_squares``, ``revenue_capped_cents``; docs/events.md,
  attribution), read from Redis every
  ``RECSTREAM_OUTCOMES_REFRESH_SECONDS`` by a background task. Every replica exports the
  same values: aggregate with ``max by (variant, counter)``, and a CTR is
  ``recstream_outcomes{counter="click"} / recstream_outcomes{counter="impressions"}``;

plus the client library's ``process_*`` and ``python_*`` collectors. ``route`` is
the route template (``/api/behavioral-ml/recommendations``), never the raw path,
and ``<unmatched>`` for paths no route serves, so the label set stays bounded.

Every app has a registry of its own (no module-level metric objects), and the
endpoint needs no credentials: like any Prometheus target it is meant to be
reachable from the cluster network only (it lives outside the public
``/api/behavioral-ml`` prefix, so an ingress that routes the prefix does not
expose it). One uvicorn worker per process is assumed; scale with replicas.

Redis round trips are counted by :class:`CountingRedis`, the client the app
builds: each command and each pipeline execution adds one to a counter that
the middleware puts in a context variable for the duration of one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recstream.model.attribution import OUTCOME_NAMES
from recstream.platform.redis import ClusterClient, ClusterClientPipeline
from recstream.readmodel.outcomes import VariantOutcomes

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUND_TRIP_BUCKETS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50)
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_ERROR_BODY = 4096

_round_trips: ContextVar[list[int] | None] = ContextVar("recstream_redis_round_trips", default=None)


def count_round_trip() -> None:
    """One more Redis round trip for the request being served (no-op outside a request)."""
    counter = _round_trips.get()
    if counter is not None:
        counter[0] += 1


class CountingPipeline(Pipeline):
    """A pipeline whose execution counts as one round trip."""

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self.command_stack or self.watching:
            count_round_trip()
        return await super().execute(raise_on_error)

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        count_round_trip()
        # redis-py leaves this method unannotated
        return await super().immediate_execute_command(*args, **options)  # type: ignore[no-untyped-call]


class CountingRedis(Redis):
    """``redis.asyncio.Redis`` that counts its round trips (see :func:`count_round_trip`)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        count_round_trip()
        # redis-py leaves this method unannotated
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return CountingPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


class CountingClusterPipeline(ClusterClientPipeline):
    """A cluster pipeline whose execution counts as one round trip (its nodes answer in
    parallel)."""

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        count_round_trip()
        return await super().execute(raise_on_error, allow_redirections)


class CountingRedisCluster(ClusterClient):
    """:class:`CountingRedis` for a Redis Cluster."""

    pipeline_class = CountingClusterPipeline

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        count_round_trip()
        return await super().execute_command(*args, **kwargs)


OUTCOMES_READ_TIMEOUT_SECONDS = 1.0  # one read of the outcome counters for the gauge


class ApiMetrics:
    """The API's metric families, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.latency = Histogram(
            "recstream_api_request_duration_seconds",
            "Time from the request to the end of the response",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "recstream_api_errors",
            "Answers with status >= 400, by the code of the error body",
            ["route", "status", "code"],
            registry=self.registry,
        )
        self.round_trips = Histogram(
            "recstream_api_redis_round_trips",
            "Redis round trips of one request (a pipeline counts once)",
            ["route"],
            buckets=ROUND_TRIP_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "recstream_api_requests_in_flight", "Requests being served", registry=self.registry
        )
        self.ranker_info = Gauge(
            "recstream_api_ranker_info",
            "The ranker this process serves (1): a learned model's version, or blend",
            ["version"],
            registry=self.registry,
        )
        self.ranker_created = Gauge(
            "recstream_api_ranker_created_timestamp_seconds",
            "When the served learned model was trained (Unix seconds)",
            ["version"],
            registry=self.registry,
        )
        self.ranker_load_failures = Counter(
            "recstream_api_ranker_load_failures",
            "Failed attempts to follow the ranker registry, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.recommendations = Counter(
            "recstream_api_recommendations",
            "Recommendation lists answered, by what ranked them (learned or blend)",
            ["ranker"],
            registry=self.registry,
        )
        self.impressions = Counter(
            "recstream_api_impressions",
            "Impression records of the recommendations returned: published or dropped",
            ["outcome"],
            registry=self.registry,
        )
        self.outcomes = Gauge(
            "recstream_outcomes",
            "Outcome counters of the recommendations each variant ranked, as the consumer "
            "keeps them in Redis (the same on every replica: aggregate with max)",
            ["variant", "counter"],
            registry=self.registry,
        )
        self._outcomes_task: asyncio.Task[None] | None = None  # follow_outcomes
        # every series exists from the start, at 0: a rate() over it is defined at once
        for reason in ("invalid", "missing", "redis"):
            self.ranker_load_failures.labels(reason)
        for ranker in ("learned", "blend"):
            self.recommendations.labels(ranker)
        for outcome in ("published", "dropped"):
            self.impressions.labels(outcome)
        self._latency_children: dict[tuple[str, str, int], Any] = {}
        self._round_trip_children: dict[str, Any] = {}

    def observe(
        self, method: str, route: str, status: int, seconds: float, round_trips: int
    ) -> None:
        key = (method, route, status)
        latency = self._latency_children.get(key)
        if latency is None:
            latency = self.latency.labels(method, route, str(status))
            self._latency_children[key] = latency
        latency.observe(seconds)
        trips = self._round_trip_children.get(route)
        if trips is None:
            trips = self.round_trips.labels(route)
            self._round_trip_children[route] = trips
        trips.observe(round_trips)

    def follow_outcomes(
        self, source: Callable[[], Awaitable[Sequence[VariantOutcomes]]], every: float
    ) -> None:
        """Keep the outcome gauge fresh from ``source`` in a background task, every ``every``
        seconds: a scrape only serves what was read (Redis away: the last values stay)."""
        task = self._follow(source, every)
        self._outcomes_task = asyncio.create_task(task, name="outcome-gauge")

    async def stop_following(self) -> None:
        task, self._outcomes_task = self._outcomes_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=OUTCOMES_READ_TIMEOUT_SECONDS)

    async def _follow(
        self, source: Callable[[], Awaitable[Sequence[VariantOutcomes]]], every: float
    ) -> None:
        while True:
            read = asyncio.ensure_future(source())
            # asyncio.wait, not wait_for: a read that swallows its cancellation (redis-py's
            # cluster client on a dead primary) is left behind, and the loop goes on
            done, _ = await asyncio.wait({read}, timeout=OUTCOMES_READ_TIMEOUT_SECONDS)
            if read in done and read.exception() is None:
                self._set_outcomes(read.result())
            else:
                read.cancel()
            await asyncio.sleep(every)

    def _set_outcomes(self, found: Sequence[VariantOutcomes]) -> None:
        for variant in found:
            total = variant.total
            values = {"impressions": total.impressions, "items": total.items}
            values |= {o: total.counts.get(o, 0) for o in OUTCOME_NAMES}
            values["revenue_cents"] = total.revenue_cents
            values["revenue_squares"] = total.revenue_squares
            values["revenue_capped_cents"] = total.revenue_capped_cents
            for counter, value in values.items():
                self.outcomes.labels(variant.variant, counter).set(value)

    def count_impressions(self, outcome: str, n: int = 1) -> None:
        self.impressions.labels(outcome).inc(n)

    def count_error(self, route: str, status: int, code: str) -> None:
        self.errors.labels(route, str(status), code).inc()

    def serving_ranker(self, version: str, created_at: str = "") -> None:
        """``ranker_info``: 1 for ``version`` only (a swap removes the old version's series);
        ``ranker_created``: the model's training time (ISO 8601), absent when unknown."""
        self.ranker_info.clear()
        self.ranker_info.labels(version).set(1)
        self.ranker_created.clear()
        with contextlib.suppress(ValueError):  # an artifact that does not say: no series
            trained = datetime.fromisoformat(created_at)
            self.ranker_created.labels(version).set(trained.timestamp())

    def ranker_load_failed(self, reason: str) -> None:
        self.ranker_load_failures.labels(reason).inc()

    def count_recommendations(self, ranker: str) -> None:
        """One list ranked by ``ranker`` (a model's version, or ``blend``)."""
        self.recommendations.labels("blend" if ranker == "blend" else "learned").inc()

    async def endpoint(self, request: Request) -> Response:
        """``GET /metrics``: the text format, or OpenMetrics when the scraper asks for it."""
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(self.registry), media_type=content_type)


def error_code(status: int, body: bytes) -> str:
    """The ``error.code`` of an error body, or ``http_<status>`` when there is none."""
    try:
        parsed = json.loads(body)
        code = parsed["error"]["code"]
    except (ValueError, TypeError, KeyError):
        return f"http_{status}"
    return code if isinstance(code, str) and code.isidentifier() else f"http_{status}"


def route_of(scope: Scope, request_path: str, routes: Sequence[BaseRoute] = ()) -> str:
    """The template of the route that served ``scope``, or :data:`UNMATCHED`.

    FastAPI puts its own routes in ``scope["route"]``; plain Starlette routes and
    mounts (``/metrics``, static files) are matched against ``routes`` instead,
    with the path the request came with (a mount rewrites the scope's).
    """
    path = getattr(scope.get("route"), "path_format", None)
    if isinstance(path, str):
        return path
    probe = {"type": "http", "path": request_path, "root_path": "", "method": scope["method"]}
    for route in routes:
        if isinstance(route, Route | Mount) and route.matches(probe)[0] is Match.FULL:
            return route.path_format
    return UNMATCHED


class RequestMetrics:
    """Pure ASGI middleware: latency, errors and Redis round trips of every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        status = 500
        error_body: list[bytes] = []

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif (
                status >= 400
                and message["type"] == "http.response.body"
                and sum(len(c) for c in error_body) < MAX_ERROR_BODY
            ):
                error_body.append(message.get("body", b""))
            await send(message)

        request_path = scope["path"]
        counter = [0]
        token = _round_trips.set(counter)
        metrics.in_flight.inc()
        started = time.perf_counter()
        crashed = False
        try:
            await self.app(scope, receive, send_counted)
        except Exception:
            crashed = True
            raise
        finally:
            elapsed = time.perf_counter() - started
            metrics.in_flight.dec()
            _round_trips.reset(token)
            status = 500 if crashed else status
            route = route_of(scope, request_path, self.routes)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            metrics.observe(method, route, status, elapsed, counter[0])
            if status >= 400:
                code = "internal_error" if crashed else error_code(status, b"".join(error_body))
                metrics.count_error(route, status, code)
