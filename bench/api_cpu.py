"""The API's CPU and Redis commands per request, in process: ``python -m bench.api_cpu``.

The noise-resistant companion of :mod:`bench.api_latency`. A fresh Redis is filled
through the consumer's core (``apply_batch`` into the production store) with that
benchmark's workload: users whose sessions fall in the last 3 hours, then live clicks of
the same users in the last minute, as the paced producer sends them while ingesting, so
every requested user has a current session. The production app (plus the bare route of
:mod:`bench.app`) is then driven through ASGI in this process, one request after another,
with its clock fixed at the end of the workload (the sessions stay current however long
the run takes). Per endpoint it prints:

- CPU time per request (user and system, ``getrusage``): the API's work without the
  HTTP parsing of uvicorn, without a load generator competing for the cores;
- every Redis command per request, from ``INFO commandstats`` of that Redis (exact:
  nothing else talks to it).

Every request carries its user's token, and each token is sent many times, so after the
first request the API's verified-token cache answers for it: the figures are those of a
client that reuses its token (the signature check, about 70 µs with HS256, is left out).

``--compare NAME A B`` is an A/B of one API setting (a field of ``ApiSettings``, e.g.
``shared_reads_cache_seconds 0 2``; a value that is JSON is decoded, so a section takes an
object: ``ranker '{"enabled": false}' '{"enabled": true}'``): one app per value on the same
filled Redis, their blocks of requests alternated (``--blocks``, each ``--requests`` long)
so that the machine's noise falls on both alike; it prints each value's median CPU per
request and the ratio.

``--model ARTIFACT`` publishes and activates a learned ranker (``recstream train``'s
``ranker-*.json``) in that Redis before the apps start, so recommendations are ranked by it
(the learned path end to end: candidates read from Redis, features, the model); without it
the hand-tuned blend serves.

``--profile DIR`` also writes a pyinstrument profile of each endpoint when pyinstrument
is importable (``uv run --with pyinstrument python -m bench.api_cpu --profile DIR``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import random
import resource
import statistics
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.types import Message

from bench.app import BARE_PATH, add_bare_route
from bench.context import DEFAULT_DATASETS, PARTITIONS, BenchContext
from bench.results import BenchResult, Figure, Table
from bench.workload import (
    LARGE_CLONES,
    LARGE_USERS,
    RealSession,
    apply_catalog,
    catalog_records,
    generate,
    live_event,
    load_sessions,
)
from recstream.apply.batch import RawRecord, apply_batch
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.scoring.learned import RankerArtifact
from recstream.store.rankers import RankerRegistry
from recstream.store.redis import RedisStore
from recstream_api.auth import issue_token
from recstream_api.main import create_app
from recstream_api.settings import ApiSettings
from recstream_cli.localstack import start_redis

API = "/api/behavioral-ml"
PREFIX = "cpu"
ENDPOINTS = ("bare", "profile", "recommendations", "session", "next-products")
Scope = dict[str, Any]


async def fill(
    redis_url: str,
    sessions: list[RealSession],
    users: int,
    live: int,
    now: float,
    clones: int = 8,
) -> tuple[dict[str, str], int]:
    """Apply the workload, every product of it in the catalog; the last product each user
    clicked (for next-products), and the catalogue's size."""
    workload = generate(sessions, users, end=now - 120.0, span_seconds=3 * 3600.0, clones=clones)
    rng = random.Random(7)
    names = [f"u{n}" for n in range(users)]
    plan = {u: (sessions[rng.randrange(len(sessions))], 0) for u in names}
    events = [(u.encode(), v) for u, v in workload.events]
    for i in range(live):
        user = names[rng.randrange(users)]
        session, position = plan[user]
        plan[user] = (session, position + 1)
        events.append(live_event(rng, user, session, position, now - 60.0 + 60.0 * i / live, i))
    by_partition: dict[int, list[RawRecord]] = {p: [] for p in range(PARTITIONS)}
    last_item: dict[str, str] = {}
    for key, value in events:
        partition = zlib.crc32(key) % PARTITIONS
        rows = by_partition[partition]
        rows.append(RawRecord("t", partition, len(rows), int(now * 1000), key, value))
        product = json.loads(value).get("product_id")
        if product is not None:
            last_item[key.decode()] = product
    redis = Redis.from_url(redis_url)
    store = RedisStore(redis, Keyspace(prefix=PREFIX))
    config = CoreConfig()
    catalog = catalog_records(workload)
    try:
        await apply_catalog(store, catalog)
        for rows in by_partition.values():
            for start in range(0, len(rows), 500):
                await apply_batch(store, rows[start : start + 500], config)
    finally:
        await redis.aclose()
    return last_item, len(catalog)


def scope(method: str, path: str, query: str = "", token: str | None = None) -> Scope:
    headers = [(b"host", b"127.0.0.1")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if method == "POST":
        headers += [(b"content-type", b"application/json"), (b"content-length", b"13")]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


def requests_of(settings: ApiSettings, last_item: dict[str, str], n: int) -> dict[str, list[Scope]]:
    users = [u for u in sorted(last_item, key=lambda u: int(u[1:]))][:n]
    tokens = {u: issue_token(settings, u, ttl=timedelta(hours=2)) for u in users}
    keys = Keyspace(prefix=PREFIX)
    return {
        "bare": [scope("GET", BARE_PATH, f"key={keys.user_state(u)}") for u in users],
        "profile": [scope("GET", f"{API}/user-profile/behavioral", "", tokens[u]) for u in users],
        "recommendations": [scope("POST", f"{API}/recommendations", "", tokens[u]) for u in users],
        "session": [
            scope("GET", f"{API}/session/recommendations", "limit=10", tokens[u]) for u in users
        ],
        "next-products": [
            scope(
                "GET",
                f"{API}/sequential/next-products",
                f"product_id={last_item[u]}&limit=10",
                tokens[u],
            )
            for u in users
        ],
    }


async def call(app: FastAPI, request: Scope) -> int:
    body = b'{"limit": 10}' if request["method"] == "POST" else b""
    status = [0]

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(request, receive, send)
    return status[0]


def bench_app(settings: ApiSettings, now: datetime) -> FastAPI:
    return add_bare_route(create_app(settings, clock=lambda: now))


async def measure(
    app: FastAPI, redis: Redis, requests: list[Scope], count: int, wrap: Callable[..., Any]
) -> dict[str, Any]:
    for request in requests[:200]:  # warm-up: imports, connections, caches
        status = await call(app, request)
        if status != 200:
            raise RuntimeError(f"{request['path']} answered {status}")
    before = await redis.info("commandstats")
    usage0 = resource.getrusage(resource.RUSAGE_SELF)

    async def loop() -> None:
        for i in range(count):
            await call(app, requests[i % len(requests)])

    await wrap(loop)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    after = await redis.info("commandstats")
    commands = {
        name.removeprefix("cmdstat_"): (stats["calls"] - before.get(name, {"calls": 0})["calls"])
        / count
        for name, stats in after.items()
        if name != "cmdstat_info"
    }
    return {
        "user_ms": 1000 * (usage1.ru_utime - usage0.ru_utime) / count,
        "system_ms": 1000 * (usage1.ru_stime - usage0.ru_stime) / count,
        "commands": {name: calls for name, calls in sorted(commands.items()) if calls > 0},
    }


def profiler(enabled: bool, texts: dict[str, str], name: str) -> Callable[..., Any]:
    """Runs a loop, under pyinstrument when ``enabled`` (its text report lands in ``texts``)."""

    async def plain(loop: Callable[[], Awaitable[None]]) -> None:
        await loop()

    if not enabled:
        return plain
    pyinstrument = importlib.import_module("pyinstrument")  # optional: only with --profile

    async def profiled(loop: Callable[[], Awaitable[None]]) -> None:
        with pyinstrument.Profiler(async_mode="disabled") as profile:
            await loop()
        texts[name] = profile.output_text()

    return profiled


async def publish_model(redis_url: str, data: bytes) -> str:
    """Publish and activate an artifact in the bench's keyspace; its version."""
    version = RankerArtifact.from_bytes(data).version
    redis = Redis.from_url(redis_url)
    try:
        await RankerRegistry(redis, Keyspace(prefix=PREFIX)).publish(version, data, activate=True)
    finally:
        await redis.aclose()
    return version


def setting_value(text: str) -> Any:
    """A --compare value: JSON when it is JSON (a number, an object), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def bench_settings(redis_url: str, **overrides: Any) -> ApiSettings:
    os.environ["RECSTREAM_RATE_LIMITS__ENABLED"] = "false"
    return ApiSettings(
        environment="dev",  # the bench signs its tokens with the development secret
        redis={"url": redis_url, "key_prefix": PREFIX},
        kafka={"bootstrap_servers": "127.0.0.1:9"},  # the read routes never publish
        **overrides,
    )


async def prepare(
    args: argparse.Namespace, redis_url: str, now: float
) -> tuple[dict[str, str], int]:
    """Fill the Redis with the command line's workload and publish its model, if any; what
    :func:`fill` returns."""
    print(
        f"filling Redis: {args.users:,} users in {args.clones} catalogue copies, "
        f"{args.live:,} live clicks",
        flush=True,
    )
    filled = await fill(
        redis_url, load_sessions(args.datasets), args.users, args.live, now, args.clones
    )
    if args.model is not None:
        print(f"learned ranker {await publish_model(redis_url, args.model_bytes)}")
    return filled


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Alternated blocks of each endpoint's requests against one app per setting value."""
    name, values = args.compare[0], args.compare[1:]
    redis_server = start_redis()
    try:
        now = time.time()
        last_item, _ = await prepare(args, redis_server.address, now)
        apps = {
            v: bench_app(
                bench_settings(redis_server.address, **{name: setting_value(v)}),
                datetime.fromtimestamp(now, UTC),
            )
            for v in values
        }
        requests = requests_of(bench_settings(redis_server.address), last_item, 500)
        redis = Redis.from_url(redis_server.address)
        results: dict[str, Any] = {}
        async with contextlib.AsyncExitStack() as stack:
            for app in apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            for endpoint in args.endpoints:
                spent: dict[str, list[float]] = {v: [] for v in values}
                for block in range(args.blocks):
                    order = values if block % 2 == 0 else values[::-1]
                    for v in order:
                        figures = await measure(
                            apps[v], redis, requests[endpoint], args.requests, _plain
                        )
                        spent[v].append(figures["user_ms"] + figures["system_ms"])
                medians = {v: statistics.median(ms) for v, ms in spent.items()}
                results[endpoint] = {"median_ms": medians, "blocks_ms": spent}
                shown = ", ".join(f"{name}={v}: {ms:.3f} ms" for v, ms in medians.items())
                ratio = medians[values[-1]] / medians[values[0]]
                print(
                    f"{endpoint}: CPU per request, medians of {args.blocks} blocks: {shown}; "
                    f"ratio last/first {ratio:.3f}",
                    flush=True,
                )
        await redis.aclose()
        return results
    finally:
        redis_server.stop()


async def _plain(loop: Callable[[], Awaitable[None]]) -> None:
    await loop()


async def standalone(args: argparse.Namespace, profiles: dict[str, str]) -> dict[str, Any]:
    redis_server = start_redis()
    try:
        now = time.time()
        last_item, items = await prepare(args, redis_server.address, now)
        settings = bench_settings(redis_server.address)
        app = bench_app(settings, datetime.fromtimestamp(now, UTC))
        requests = requests_of(settings, last_item, 500)
        results: dict[str, Any] = {"workload": {"users": args.users, "items": items}}
        redis = Redis.from_url(redis_server.address)
        async with app.router.lifespan_context(app):
            for endpoint in args.endpoints:
                wrap = profiler(args.profile is not None, profiles, endpoint)
                figures = await measure(app, redis, requests[endpoint], args.requests, wrap)
                results[endpoint] = figures
                commands = ", ".join(f"{n} {c:.1f}" for n, c in figures["commands"].items())
                print(
                    f"{endpoint}: CPU {figures['user_ms'] + figures['system_ms']:.3f} ms/request "
                    f"(user {figures['user_ms']:.3f}, system {figures['system_ms']:.3f}); "
                    f"Redis commands/request: {commands}",
                    flush=True,
                )
        await redis.aclose()
        return results
    finally:
        redis_server.stop()


async def run(ctx: BenchContext) -> BenchResult:
    """``recstream bench --only api-cpu``: :func:`standalone` on the real-size catalogue (a small
    one with ``--quick``), in a process of its own, as the API runs: without the benchmark
    runner's collector settings."""
    users, clones = ctx.pick((2_000, 8), (LARGE_USERS, LARGE_CLONES))
    out = ctx.workdir / "api-cpu.json"
    command = [sys.executable, "-m", "bench.api_cpu", "--datasets", str(ctx.datasets)]
    command += ["--users", str(users), "--clones", str(clones)]
    command += ["--requests", str(ctx.pick(400, 2_000)), "--out", str(out)]
    process = await asyncio.create_subprocess_exec(*command)
    if await process.wait() != 0:
        raise RuntimeError(f"python -m bench.api_cpu exited {process.returncode}")
    figures = json.loads(out.read_text())
    items = figures.pop("workload")["items"]
    result = BenchResult("api-cpu", f"API CPU per request in process, {items:,}-item catalogue")
    cpu = {e: f["user_ms"] + f["system_ms"] for e, f in figures.items()}
    for endpoint in ENDPOINTS[1:]:
        blended = endpoint == "recommendations"
        result.add(
            Figure(
                f"{endpoint}{' (the blend)' if blended else ''}: API CPU per request in process",
                cpu[endpoint],
                "ms",
                cpu["bare"],
                "bare route (one HGET), same app",
                "<= 1.5 ms" if blended else "",
                cpu[endpoint] <= 1.5 if blended else None,
            )
        )
    rows = [
        [e, f"{cpu[e]:.3f}", ", ".join(f"{n} {c:.1f}" for n, c in f["commands"].items())]
        for e, f in figures.items()
    ]
    result.tables.append(
        Table(
            "CPU and Redis commands per request (ASGI in process, one request at a time)",
            ["endpoint", "CPU ms", "Redis commands per request"],
            rows,
        )
    )
    result.notes.append(
        f"{users:,} users in {clones} catalogue copies ({items:,} items, every one in the "
        "catalog), applied through the consumer's core; 20,000 live clicks of theirs in the last "
        "minute; the app driven through ASGI with its clock at the workload's end, each user's "
        "token reused (the verified-token cache answers). Recommendations are the blend's: no "
        "learned ranker is published (docs/quality.md#cost has the ranker's stages)."
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_cpu", description=__doc__)
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument(
        "--clones",
        type=int,
        default=8,
        help=f"catalogue copies (--clones {LARGE_CLONES} --users {LARGE_USERS:,}: 40,448 items)",
    )
    parser.add_argument("--live", type=int, default=20_000, help="live clicks in the last minute")
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint")
    parser.add_argument("--endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile per endpoint")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument(
        "--compare", nargs="+", metavar="SETTING VALUE", help="an A/B of one API setting"
    )
    parser.add_argument("--blocks", type=int, default=8, help="alternated blocks per value")
    parser.add_argument("--model", type=Path, help="a learned ranker artifact to serve")
    args = parser.parse_args()
    profiles: dict[str, str] = {}
    if args.compare is not None and len(args.compare) < 3:
        parser.error("--compare takes a setting and at least two values")
    args.model_bytes = args.model.read_bytes() if args.model is not None else None
    results = asyncio.run(compare(args) if args.compare else standalone(args, profiles))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        for endpoint, text in profiles.items():
            (args.profile / f"{endpoint}.txt").write_text(text)


if __name__ == "__main__":
    main()
