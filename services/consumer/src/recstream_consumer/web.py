"""The consumer's status port (aiohttp, in the consumer's own event loop; faust-streaming
depends on aiohttp already, so the port costs no dependency of its own).

- ``GET /metrics``: the Prometheus exposition of the consumer's registry;
- ``GET /healthz``: liveness. The answer comes from the event loop that runs
  the consumer, so it proves the loop is not stuck; 200 ``ok``;
- ``GET /readyz``: readiness. 200 once the member owns partitions (it joined
  the group and got an assignment) and Redis answered within
  ``ready_redis_seconds``; else 503. The JSON body says which holds.

The port needs no credentials: like any Prometheus target it is meant to be
reachable from the cluster network only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from recstream_consumer.metrics import ConsumerMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    partitions: int
    redis_age_seconds: float | None


def readiness(partitions: int, redis_age: float | None, window: float) -> Readiness:
    """Ready: owns at least one partition and Redis answered within ``window`` seconds."""
    fresh = redis_age is not None and redis_age <= window
    age = None if redis_age is None else round(redis_age, 3)
    return Readiness(partitions > 0 and fresh, partitions, age)


class StatusServer:
    def __init__(self, metrics: ConsumerMetrics, check: Callable[[], Readiness]) -> None:
        self._metrics = metrics
        self._check = check
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int | None:
        """Listen on ``host:port``; the bound port, or None when the port is taken."""
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        app.router.add_get("/readyz", self._serve_ready)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            log.error("status port %s:%d not available (%s): no metrics or probes", host, port, exc)
            return None
        self._runner = runner
        self.port = _bound_port(runner, port)
        log.info("status port listening on %s:%d", host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _serve_health(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _serve_ready(self, _: web.Request) -> web.Response:
        state = self._check()
        return web.json_response(asdict(state), status=200 if state.ready else 503)


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked
