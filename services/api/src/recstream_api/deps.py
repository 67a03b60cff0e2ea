"""FastAPI dependencies: the app's resources and the authenticated caller (whose request
also takes a token from the caller's rate-limit bucket, :mod:`recstream_api.ratelimit`,
and names the caller in its access line, :mod:`recstream_api.requestlog`)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Protocol, cast

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from recstream.readmodel.items_cache import ItemsCache
from recstream.scoring.config import ScoringConfig
from recstream.store.port import StateStore
from recstream.store.reads import StatsReader
from recstream.store.redis import RedisClient
from recstream_api.auth import Authenticator, Principal
from recstream_api.experiments import ArmCounters
from recstream_api.impressions import ImpressionWriter
from recstream_api.metrics import ApiMetrics
from recstream_api.publisher import EventPublisher
from recstream_api.rankers import RankerCatalog, RankerHolder
from recstream_api.ratelimit import RateLimiter, route_kind
from recstream_api.requestlog import note_subject
from recstream_api.settings import ApiSettings


class QueryStore(StateStore, StatsReader, Protocol):
    """What the API needs of a store: the state port and the batched reads. The lifespan
    gives it the Redis store; a test may give it the memory store (``create_app(store=...)``)."""


@dataclass(frozen=True, slots=True)
class Resources:
    """Everything a request needs, built by the lifespan of one app."""

    settings: ApiSettings
    redis: RedisClient
    store: QueryStore
    # the store's reads for recommendations, with the shared answers cached (shared_reads)
    reads: StatsReader
    # the candidates' catalog entries and categories, decoded, cached (readmodel.items_cache)
    items: ItemsCache
    publisher: EventPublisher
    authenticator: Authenticator
    clock: Callable[[], datetime]
    version: str
    session_scoring: ScoringConfig  # the blend of the session endpoint: no content component
    rate_limiter: RateLimiter
    rankers: RankerHolder  # the learned model this process serves (or the blend)
    registry: RankerCatalog  # the published models (the admin routes)
    metrics: ApiMetrics
    impressions: ImpressionWriter  # the impression records of the lists returned
    arm_counters: ArmCounters  # the bandits' arm counters, cached
    rng: random.Random  # the bandits' draws


async def get_resources(request: Request) -> Resources:
    """The app's resources. ``async`` although it awaits nothing: FastAPI runs a plain
    function dependency in its thread pool, a thread hand-off on every request."""
    return cast(Resources, request.app.state.resources)


ResourcesDep = Annotated[Resources, Depends(get_resources)]

bearer_scheme = HTTPBearer(
    bearerFormat="JWT",
    description="OAuth2 access token; `sub` is the user id, the role claim marks admins",
    auto_error=False,
)
_api_key = APIKeyHeader(
    name="X-API-Key",
    description="server-side producer key (scope `track` or `admin`)",
    auto_error=False,
)


async def get_principal(
    request: Request,
    resources: ResourcesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    token = bearer.credentials if bearer is not None else None
    principal = await resources.authenticator.authenticate(token, api_key)
    note_subject(request.scope, principal.subject)
    resources.rate_limiter.check(principal, route_kind(request.scope.get("route")))
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
