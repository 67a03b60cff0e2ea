"""The API as production builds it, plus one benchmark-only route: the web stack's limit.

``uvicorn bench.app:create_bench_app --factory``: :func:`recstream_api.main.create_app`
with the same settings, middleware and lifespan, and ``GET /bench/bare?key=...``,
which reads one field of one Redis hash (``HGET key st``: a user's state, the
value the profile endpoint reads) through the app's own Redis client and
answers its size. No authentication, no decoding, no scoring: what is left
is uvicorn, the middleware, FastAPI routing and one Redis round trip. The
route exists only in this wrapper, never in the production app.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from recstream_api.main import create_app

BARE_PATH = "/bench/bare"


def create_bench_app() -> FastAPI:
    return add_bare_route(create_app())


def add_bare_route(app: FastAPI) -> FastAPI:
    """Mount ``GET /bench/bare?key=...`` on ``app``."""

    @app.get(BARE_PATH, include_in_schema=False)
    async def bare(request: Request, key: str) -> dict[str, int]:
        value = await request.app.state.resources.redis.hget(key, "st")
        return {"bytes": len(value) if value is not None else 0}

    return app
