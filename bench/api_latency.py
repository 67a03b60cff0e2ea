"""Benchmark 3: API latency under open-loop load, with and without ingest, next to a bare route.

The stack: Redis, the broker, one consumer process and the API process
(:mod:`bench.app`: the production app plus ``/bench/bare``, one Redis read).
Users are populated through the real pipeline (a realistic workload ending
now, produced to the topic and applied by the consumer), so sessions are
current. Each point is one :mod:`bench.loadgen` process at a constant
arrival rate against one endpoint, every request with its own user's token.
With ingest, a paced producer sends live clicks of the same users at
:data:`INGEST_RATE` events/s for the whole phase, and the consumer applies them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from bench.app import BARE_PATH
from bench.charts import line_chart
from bench.context import PARTITIONS, BenchContext
from bench.drain import send_probes, wait_applied, watch
from bench.freshness import PROBE
from bench.ingest import produce
from bench.results import BenchResult, Figure, Table
from bench.stack import (
    ApiProcess,
    Rig,
    command_calls,
    monitor_latency,
    script_stats,
)
from bench.workload import (
    LARGE_CLONES,
    LARGE_USERS,
    Workload,
    apply_catalog,
    catalog_records,
    generate,
)
from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore
from recstream_api.auth import issue_token
from recstream_api.settings import ApiSettings
from recstream_consumer.topics import TopicSpec, ensure_topics

API = "/api/behavioral-ml"
INGEST_RATE = 2000.0
TOKEN_USERS = 500
ENDPOINTS = ("bare", "profile", "recommendations", "session", "next-products")
GRID = (100.0, 250.0, 500.0, 1000.0)
# Read commands only the API sends (the consumer's batch reads are HMGET and HGET, so the
# API's HMGETs, one per user state and one per statistic shard of item categories, are left out).
READ_COMMANDS = ("get", "mget", "zrevrange")
TARGETS = {  # endpoint -> (rate, with ingest, p99 bound in ms)
    "recommendations": (500.0, True, 10.0),
    "profile": (1000.0, False, 5.0),
}


@dataclass
class Point:
    endpoint: str
    rate: float
    ingest: bool
    latencies_ms: list[float]
    errors: int
    api_cpu_ms: float  # API CPU per request
    send_lag_p99_ms: float  # the generator's own delay (a large one: the point is not valid)
    loadgen_cpu_share: float
    connections: int
    reads: float  # GET + MGET + ZREVRANGE commands per request (see READ_COMMANDS)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def raw_request(method: str, path: str, token: str | None, body: bytes = b"") -> str:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    if method == "POST":
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    return base64.b64encode(raw).decode()


def request_sets(workload: Workload, prefix: str) -> dict[str, list[str]]:
    settings = ApiSettings(environment="dev")  # the bench API runs in dev: its tokens
    keys = Keyspace(prefix=prefix)
    last_item: dict[str, str] = {}
    for user, value in workload.events:
        event = json.loads(value)
        if "product_id" in event:
            last_item[user] = event["product_id"]
    users = [u for u in workload.users if u in last_item][:TOKEN_USERS]
    tokens = {u: issue_token(settings, u, ttl=timedelta(hours=2)) for u in users}
    body = b'{"limit": 10}'
    return {
        "bare": [raw_request("GET", f"{BARE_PATH}?key={keys.user_state(u)}", None) for u in users],
        "profile": [raw_request("GET", f"{API}/user-profile/behavioral", tokens[u]) for u in users],
        "recommendations": [
            raw_request("POST", f"{API}/recommendations", tokens[u], body) for u in users
        ],
        "session": [
            raw_request("GET", f"{API}/session/recommendations?limit=10", tokens[u]) for u in users
        ],
        "next-products": [
            raw_request(
                "GET",
                f"{API}/sequential/next-products?product_id={last_item[u]}&limit=10",
                tokens[u],
            )
            for u in users
        ],
    }


async def point(
    ctx: BenchContext,
    rig: Rig,
    api: ApiProcess,
    requests: list[str],
    endpoint: str,
    rate: float,
    ingest: bool,
    seconds: float,
) -> Point:
    name = f"load-{endpoint}-{rate:.0f}-{'ingest' if ingest else 'idle'}"
    out = rig.workdir / f"{name}.out.json"
    config = {
        "host": "127.0.0.1",
        "port": api.port,
        "rate": rate,
        "seconds": seconds,
        "requests": requests,
        "timeout": 2.0,
        "connections": 16,
        "max_connections": 256,
        "out": str(out),
    }
    loadgen = rig.spawn_module(name, "bench.loadgen", config)
    await asyncio.sleep(0.3)  # its imports and connections, before the API CPU is counted
    cpu0 = api.cpu()
    reads0 = await command_calls(rig.redis_url, READ_COMMANDS)
    status = await loadgen.wait(seconds + 60)
    await settle(api)  # the CPU of requests still queued when the generator stopped counts too
    api_cpu = api.cpu() - cpu0
    reads = await command_calls(rig.redis_url, READ_COMMANDS) - reads0
    api.child.check()
    if status != 0:
        raise RuntimeError(f"load generator failed: {loadgen.log_tail()}")
    data: dict[str, Any] = json.loads(out.read_text())
    warm = 0.5
    kept = [
        (lat, st)
        for due, lat, st in zip(data["due"], data["latency_ms"], data["status"], strict=True)
        if due >= warm
    ]
    errors = sum(1 for _, st in kept if not 200 <= st < 300)
    n = len(data["status"])
    return Point(
        endpoint,
        rate,
        ingest,
        [lat for lat, _ in kept],
        errors,
        api_cpu * 1000 / max(n, 1),
        sorted(data["lag_ms"])[int(0.99 * (n - 1))] if n else 0.0,
        data["cpu_seconds"] / max(data["elapsed"], 1e-9),
        data["connections"],
        reads / max(n, 1),
    )


async def settle(api: ApiProcess, within: float = 90.0) -> None:
    """Wait until the API has worked off what an overloaded point left queued."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = api.cpu()
        await asyncio.sleep(0.5)
        if api.cpu() - before < 0.05:
            return


def matrix(ctx: BenchContext, capacity: dict[str, float]) -> list[tuple[str, float, bool]]:
    """The points to run: each endpoint's target rate, and (full runs) the grid rates it can
    sustain (at most 80% of its measured capacity); the bare route at every rate used."""
    if ctx.quick:
        chosen = [("profile", 1000.0, False), ("recommendations", 500.0, True)]
    else:
        chosen = []
        for endpoint in ENDPOINTS[1:]:
            fits = [r for r in GRID if r <= 0.8 * capacity[endpoint]] or [GRID[0]]
            chosen += [(endpoint, r, False) for r in fits]
            chosen.append((endpoint, fits[-1], True))
        for endpoint, (rate, _, _) in TARGETS.items():
            chosen += [(endpoint, rate, False), (endpoint, rate, True)]
    unique = sorted(set(chosen), key=lambda p: (p[2], p[1], ENDPOINTS.index(p[0])))
    out: list[tuple[str, float, bool]] = []
    for ingest in (False, True):
        for rate in sorted({r for _, r, i in unique if i == ingest}):
            out.append(("bare", rate, ingest))
            out += [(e, r, i) for e, r, i in unique if i == ingest and r == rate]
    return out


async def run(ctx: BenchContext) -> BenchResult:
    result = BenchResult("api", "API latency under open-loop load")
    seconds = ctx.pick(3.0, 8.0)
    points: list[Point] = []
    with ctx.rig("api") as rig:
        topic, prefix = f"api-{uuid.uuid4().hex[:8]}", f"a{uuid.uuid4().hex[:8]}"
        await ensure_topics(rig.bootstrap, [TopicSpec(topic, PARTITIONS, 1)])
        rig.consumer("consumer", topic, prefix, f"g-{prefix}")
        await send_probes(rig.bootstrap, topic, PARTITIONS, PROBE)
        await wait_applied(rig, prefix, topic, PARTITIONS, within=60)
        users, clones = ctx.pick((2_000, 8), (LARGE_USERS, LARGE_CLONES))
        workload = generate(
            ctx.sessions, users, end=time.time(), span_seconds=3 * 3600.0, clones=clones
        )
        catalog = catalog_records(workload)
        redis = Redis.from_url(rig.redis_url)
        try:
            await apply_catalog(RedisStore(redis, Keyspace(prefix=prefix)), catalog)
        finally:
            await redis.aclose()
        result.notes.append(
            f"{users:,} users in {clones} catalogue copies: {len(catalog):,} items, every one "
            "in the catalog (written through the consumer's core before the events)"
        )
        _, records = await produce(rig.bootstrap, topic, workload.keyed())
        await watch(
            rig, rig.children[:1], topic, prefix, PARTITIONS + len(records), start_at=PARTITIONS
        )
        print(f"  {len(records):,} events of {users:,} users applied", flush=True)
        api = rig.api("api", prefix, server=ctx.api_server, workers=ctx.api_workers)
        result.notes.append(f"API server: {ctx.api_server}, {ctx.api_workers} worker(s)")
        await api.ready()
        await monitor_latency(rig.redis_url)
        requests = request_sets(workload, prefix)
        capacity = {}
        calibrated = ENDPOINTS[:3] if ctx.quick else ENDPOINTS
        calm_cpu = {}
        for endpoint in calibrated:  # warm-up and capacity: CPU per request at a low rate
            calm = await point(ctx, rig, api, requests[endpoint], endpoint, 100.0, False, 2.0)
            calm_cpu[endpoint] = calm.api_cpu_ms
            capacity[endpoint] = 1000.0 / max(calm.api_cpu_ms, 1e-3)
        result.add(
            Figure(
                "recommendations (the blend): API CPU per request over HTTP at 100 rps",
                calm_cpu["recommendations"],
                "ms",
                calm_cpu["bare"],
                "bare route, same rate",
                "<= 3 ms",
                calm_cpu["recommendations"] <= 3.0,
            )
        )
        print(
            "  capacity (requests/s per API core): "
            + ", ".join(f"{e} {c:,.0f}" for e, c in capacity.items()),
            flush=True,
        )
        ctx.shared["api_capacity"] = capacity
        producer = None
        for endpoint, rate, ingest in matrix(ctx, capacity):
            if ingest and producer is None:
                await monitor_latency(rig.redis_url)
                producer = rig.spawn_module(
                    "ingest-producer",
                    "bench.paced_producer",
                    {
                        "bootstrap": rig.bootstrap,
                        "topic": topic,
                        "rate": INGEST_RATE,
                        "seconds": 3600,
                        "users": users,
                        "user_prefix": "u",
                        "datasets": str(ctx.datasets),
                        "out": str(rig.workdir / "ingest.json"),
                    },
                )
                await asyncio.sleep(3.0)
            overload = rate > 1.2 * capacity[endpoint]  # queues grow: a short run shows it
            length = min(seconds, ctx.pick(2.0, 4.0)) if overload else seconds
            p = await point(ctx, rig, api, requests[endpoint], endpoint, rate, ingest, length)
            points.append(p)
            print(
                f"  {endpoint} {rate:,.0f} rps{' +ingest' if ingest else ''}: "
                f"p50 {p.quantile(0.5):.2f} p99 {p.quantile(0.99):.2f} "
                f"p99.9 {p.quantile(0.999):.2f} ms, errors {p.errors}, "
                f"API CPU {p.api_cpu_ms:.2f} ms/request",
                flush=True,
            )
        result.notes.append(f"API RSS after the load: {api.rss() / 2**20:.0f} MiB")
        ctx.shared["api_rss"] = api.rss()
        if producer is not None:
            producer.stop()
            calls, mean_ms, longest_ms = await script_stats(rig.redis_url)
            result.notes.append(
                f"While ingesting: {calls:,} consumer batch scripts in Redis, {mean_ms:.2f} ms on "
                f"average; the longest Redis command took {longest_ms:.0f} ms (readers wait "
                "behind it)."
            )
    _report(ctx, result, points)
    result.tables.append(
        Table(
            "Capacity of one API process: 1000 / CPU ms per request, measured at 100 requests/s",
            ["endpoint", "requests/s per core"],
            [[e, f"{c:,.0f}"] for e, c in capacity.items()],
        )
    )
    return result


def _report(ctx: BenchContext, result: BenchResult, points: list[Point]) -> None:
    bare = {(p.rate, p.ingest): p for p in points if p.endpoint == "bare"}
    rows = []
    for p in points:
        ref = bare.get((p.rate, p.ingest))
        label = (
            f"{p.endpoint} at {p.rate:,.0f} rps{' while ingesting 2k events/s' if p.ingest else ''}"
        )
        if p.endpoint != "bare":
            target, met = "", None
            goal = TARGETS.get(p.endpoint)
            if goal is not None and goal[:2] == (p.rate, p.ingest):
                limit = ref.quantile(0.99) if ref else float("inf")
                target = f"<= {goal[2]:.0f} ms and <= 3x bare"
                met = (
                    p.quantile(0.99) <= goal[2] and p.quantile(0.99) <= 3 * limit and p.errors == 0
                )
            result.add(
                Figure(
                    f"{label}: p99",
                    p.quantile(0.99),
                    "ms",
                    ref.quantile(0.99) if ref else None,
                    "bare route p99, same rate",
                    target,
                    met,
                )
            )
        rows.append(
            [
                p.endpoint,
                f"{p.rate:,.0f}",
                "yes" if p.ingest else "no",
                f"{p.quantile(0.5):.2f}",
                f"{p.quantile(0.99):.2f}",
                f"{p.quantile(0.999):.2f}",
                f"{max(p.latencies_ms, default=0):.1f}",
                str(p.errors),
                f"{p.api_cpu_ms:.2f}",
                f"{1000 / p.api_cpu_ms:,.0f}" if p.api_cpu_ms else "-",
                f"{p.send_lag_p99_ms:.1f}",
                f"{p.reads:,.0f}",
                str(p.connections),
            ]
        )
    result.tables.append(
        Table(
            "Latency in ms from the intended send time (open loop)",
            [
                "endpoint",
                "rps",
                "ingest",
                "p50",
                "p99",
                "p99.9",
                "max",
                "errors",
                "API CPU ms/req",
                "rps per API core",
                "send lag p99",
                "Redis reads/req (GET, MGET, ZREVRANGE)",
                "connections",
            ],
            rows,
        )
    )
    for ingest in (False, True):
        series = {}
        for endpoint in ENDPOINTS:
            chosen = sorted(
                (p for p in points if p.endpoint == endpoint and p.ingest == ingest),
                key=lambda p: p.rate,
            )
            if chosen:
                series[endpoint] = ([p.rate for p in chosen], [p.quantile(0.99) for p in chosen])
        if series:
            path, rel = ctx.plot(f"api_p99_{'ingest' if ingest else 'idle'}")
            title = "API p99 by rate" + (" while ingesting 2k events/s" if ingest else "")
            line_chart(
                path,
                series,
                "requests/s",
                "p99 ms",
                title,
                logy=True,
                hlines={"10 ms": 10.0, "5 ms": 5.0},
            )
            result.plots.append(rel)
    result.notes.append(
        "Latency is measured from each request's intended send time (constant arrival rate), "
        "so queueing behind a slow request counts. 'API CPU ms/req' is the API process's CPU "
        "time over the point divided by the requests sent; 1000 / it bounds the rate one API "
        "process can serve on one core. 'send lag p99' is the generator's own delay between a "
        "request's due time and its write (waiting for a free connection included): when it is "
        "large while the API's CPU per request is not, the machine, not the API, was short of CPU. "
        "'Redis reads/req' counts the GET, MGET and ZREVRANGE commands Redis served over the "
        "point per request (an MGET of many keys counts once); the API's HMGETs (one per user "
        "state, one per statistic shard of item categories) are not in it, since the "
        "consumer's batch reads are HMGETs too."
    )
