"""Reachability of Redis and the broker, for ``GET /health`` and the readiness probe, and
which ranker this process serves (reported; a model that does not load does not make the
API unready, since the blend serves)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Literal

from redis.exceptions import RedisError

from recstream.store.redis import RedisClient
from recstream_api.exceptions import BrokerUnavailableError
from recstream_api.publisher import EventPublisher
from recstream_api.rankers import RankerStatus
from recstream_api.schemas import ComponentHealth, HealthResponse, RankerHealth


async def redis_health(redis: RedisClient, timeout_seconds: float) -> ComponentHealth:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_seconds):
            await redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        return ComponentHealth(ok=False, error=f"redis ping failed: {exc!r}")
    return ComponentHealth(ok=True, latency_ms=(time.perf_counter() - started) * 1000.0)


async def broker_health(publisher: EventPublisher, timeout_seconds: float) -> ComponentHealth:
    try:
        latency = await publisher.ping(timeout_seconds)
    except BrokerUnavailableError as exc:
        return ComponentHealth(ok=False, error=exc.message)
    return ComponentHealth(ok=True, latency_ms=latency)


def ranker_health(status: RankerStatus) -> RankerHealth:
    checked = status.checked_at
    return RankerHealth(
        enabled=status.enabled,
        active=status.serving,
        error=status.error,
        failed_version=status.failed_version,
        checked_at=datetime.fromtimestamp(checked, UTC) if checked is not None else None,
    )


async def check_health(
    redis: RedisClient,
    publisher: EventPublisher,
    timeout_seconds: float,
    version: str,
    ranker: RankerStatus,
    *,
    readiness: bool = False,
) -> HealthResponse:
    """Both checks run concurrently, each bounded by the timeout. For ``readiness`` only
    Redis decides: without the broker the API still serves every read (``degraded``)."""
    redis_report, broker_report = await asyncio.gather(
        redis_health(redis, timeout_seconds), broker_health(publisher, timeout_seconds)
    )
    status: Literal["ok", "degraded", "unavailable"] = "ok"
    if not redis_report.ok or (not broker_report.ok and not readiness):
        status = "unavailable"
    elif not broker_report.ok:
        status = "degraded"
    return HealthResponse(
        status=status,
        version=version,
        redis=redis_report,
        broker=broker_report,
        ranker=ranker_health(ranker),
    )
