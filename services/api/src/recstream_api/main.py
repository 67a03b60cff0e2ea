"""The composition root of the query API: ``create_app()`` builds the app; its lifespan
builds the Redis client, the store, the Kafka producer and the holder of the learned
ranker (which loads the active model and polls the registry), and closes them.

Run it with ``uvicorn --factory recstream_api.main:create_app``: without arguments
``create_app()`` reads the settings from the environment and sets up the process's
log lines (:mod:`recstream_api.logconfig`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from recstream.platform.redis import is_cluster, redis_client
from recstream.readmodel.items_cache import ItemsCache
from recstream.readmodel.outcomes import load_outcomes
from recstream.store.eviction import EvictionPolicyError, check_eviction
from recstream.store.rankers import RankerRegistry
from recstream.store.redis import RedisClient, RedisStore
from recstream_api.admin_routes import router as admin_router
from recstream_api.auth import Authenticator
from recstream_api.catalog_routes import router as catalog_router
from recstream_api.demo import install_demo
from recstream_api.deps import QueryStore, Resources
from recstream_api.errors import install_error_handlers
from recstream_api.experiments import ArmCounters
from recstream_api.identity_routes import router as identity_router
from recstream_api.impressions import ImpressionWriter
from recstream_api.item_routes import router as item_router
from recstream_api.limits import BodySizeLimit, single_query_values
from recstream_api.logconfig import configure_api_logging
from recstream_api.metrics import ApiMetrics, CountingRedis, CountingRedisCluster, RequestMetrics
from recstream_api.openapi import BehavioralApi
from recstream_api.outcome_routes import router as outcome_router
from recstream_api.publisher import EventPublisher
from recstream_api.rankers import RankerCatalog, RankerHolder
from recstream_api.ratelimit import RateLimiter
from recstream_api.recommendation_routes import router as recommendation_router
from recstream_api.recommendation_views import session_scoring
from recstream_api.redis_packing import packing_options
from recstream_api.requestlog import REQUEST_ID_HEADER, RequestLog
from recstream_api.routes import PREFIX, router
from recstream_api.settings import ApiSettings
from recstream_api.shared_reads import SharedReads

# A request waits for Redis at most a few short retries, then answers 503. On a cluster a
# failed command is not retried by the client: its recovery, a slot-map refresh that asks
# the nodes one after the other, already takes up to one socket timeout per node named
# in the URL (3 nodes, 2 s: 6 s), about what the retries take on one primary.
REDIS_RETRIES = 2
REDIS_BACKOFF = ExponentialWithJitterBackoff(base=0.02, cap=0.2)

DESCRIPTION = """Real-time behavioural profiles, implicit ratings and recommendations of a
group-buying platform.

Authenticate with `Authorization: Bearer <JWT>` (`sub` is the user id) or, for
server-side producers, `X-API-Key`. Every error answers
`{"error": {"code", "message", "details", "request_id"}}`; every answer has an
`X-Request-ID` header (the caller's, when it is a token of up to 128 characters of
letters, digits and `._:-`, else a new one).
"""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def package_version() -> str:
    try:
        return version("recstream-api")
    except PackageNotFoundError:
        return "0+unknown"


def build_redis(settings: ApiSettings) -> RedisClient:
    """A client that counts its round trips for the request metrics, commands packed in C."""
    timeout = settings.redis.socket_timeout_seconds
    return redis_client(
        settings.redis.url,
        CountingRedis,
        CountingRedisCluster,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(REDIS_BACKOFF, 0 if is_cluster(settings.redis.url) else REDIS_RETRIES),
        **packing_options(settings.redis.url),
    )


def build_publisher(settings: ApiSettings) -> EventPublisher:
    return EventPublisher(
        settings.kafka, settings.producer_linger_ms, settings.produce_timeout_seconds
    )


def create_app(
    settings: ApiSettings | None = None,
    *,
    clock: Callable[[], datetime] = _utc_now,
    configure_logs: bool | None = None,
    store: QueryStore | None = None,
    publisher: EventPublisher | None = None,
    rankers: RankerCatalog | None = None,
) -> FastAPI:
    """The API app. ``settings`` default to the environment; ``clock`` is the server time.

    ``configure_logs`` sets up the process's log lines from the settings; by default
    only when the settings come from the environment (the server process), so that a
    caller that passes settings (tests, an embedding app) keeps its own logging.

    ``store``, ``publisher`` and ``rankers`` replace the Redis store, the Kafka producer
    and the Redis registry of learned rankers the lifespan builds (the in-process test
    tier passes a memory store, a publisher without a broker and an in-memory registry);
    the server passes none. The lifespan still builds the Redis client, which connects
    only when a route uses it (health, the user scan, the demo).
    """
    if configure_logs is None:
        configure_logs = settings is None
    settings = settings if settings is not None else ApiSettings()
    if configure_logs:
        configure_api_logging(settings)
    authenticator = Authenticator(settings.auth)  # a bad key fails here, not on a request
    app_version = package_version()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = build_redis(settings)
        if store is None:  # the server: its Redis must not evict (an in-process store has none)
            try:
                await check_eviction(redis, allow_eviction=settings.redis.allow_eviction)
            except EvictionPolicyError:
                await redis.aclose()
                raise
        state = store if store is not None else RedisStore(redis, settings.redis.keyspace())
        events = publisher if publisher is not None else build_publisher(settings)
        registry = (
            rankers if rankers is not None else RankerRegistry(redis, settings.redis.keyspace())
        )
        holder = RankerHolder(
            registry,
            poll_seconds=settings.ranker.poll_seconds,
            enabled=settings.ranker.enabled,
            metrics=metrics,
        )
        impressions = ImpressionWriter(
            events,
            metrics,
            capacity=settings.impressions.queue_size,
            enabled=settings.impressions.enabled,
        )
        try:
            await events.start()
            await holder.start()
            await impressions.start()
            metrics.follow_outcomes(lambda: load_outcomes(state), settings.outcomes_refresh_seconds)
            app.state.resources = Resources(
                settings=settings,
                redis=redis,
                store=state,
                reads=SharedReads(state, settings.shared_reads_cache_seconds),
                items=ItemsCache(settings.item_cache_seconds),
                publisher=events,
                authenticator=authenticator,
                clock=clock,
                version=app_version,
                session_scoring=session_scoring(settings.scoring),
                rate_limiter=RateLimiter(settings.rate_limits),
                rankers=holder,
                registry=registry,
                metrics=metrics,
                impressions=impressions,
                arm_counters=ArmCounters(state, settings.bandit_counters_seconds),
                rng=random.Random(),
            )
            yield
        finally:
            await metrics.stop_following()
            await impressions.stop()
            await holder.stop()
            # bounded: a producer start left behind by the impression writer may hold the
            # publisher's lock (aiokafka's start can swallow its cancellation)
            await asyncio.wait({asyncio.ensure_future(events.stop())}, timeout=10.0)
            await redis.aclose()

    app = BehavioralApi(
        title="recstream behavioural API",
        description=DESCRIPTION,
        version=app_version,
        lifespan=lifespan,
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        openapi_url=f"{PREFIX}/openapi.json",
        dependencies=[Depends(single_query_values)],
    )
    app.state.retry_after_seconds = settings.store_retry_after_seconds
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(recommendation_router)
    app.include_router(item_router)
    app.include_router(catalog_router)
    app.include_router(admin_router)
    app.include_router(outcome_router)
    app.include_router(identity_router)
    install_demo(app, settings)
    app.add_route("/metrics", metrics.endpoint, include_in_schema=False)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics, routes=app.router.routes)
    if settings.cors.allowed_origins:
        # answers preflights itself, before authentication; a request from an origin not
        # listed gets no Access-Control-Allow-Origin header, and the browser drops it
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors.allowed_origins),
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After"],
            allow_credentials=False,
            max_age=settings.cors.max_age_seconds,
        )
    # outermost: every answer carries the request id, every line about a request too
    app.add_middleware(RequestLog, routes=app.router.routes)
    return app
