"""Benchmark 2: freshness, from the producer's send to the state being visible in Redis.

A consumer process runs on its own topic; its group is settled (one probe
record per partition applied) before anything is measured. Its maximum rate
is measured first by draining a backlog of realistic events. Then, per
steady rate (1k, 80% of that maximum, 5k events/s), a paced producer process
sends live clicks open-loop while an observer process polls the partition
watermarks (:mod:`bench.observer`); a record is fresh when the watermark of
its partition reaches its offset. Both use ``time.monotonic()``, the clock
processes on one host share, and neither is the consumer.

The limit: the same rates through :mod:`bench.bare_consumer` (the same
polling, decoding and commits, one ``HSET`` per batch instead of the fold and
the state script) on a topic of its own.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from bench.charts import line_chart, scatter_chart
from bench.context import PARTITIONS, BenchContext
from bench.drain import applied, send_probes, wait_applied, watch
from bench.ingest import produce
from bench.results import BenchResult, Figure, Table
from bench.stack import Child, Rig
from bench.workload import generate
from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore
from recstream_consumer.topics import TopicSpec, ensure_topics

WARMUP_SECONDS = 1.0
LIVE_USERS = 20_000
PROBE = (
    b'{"event_id":"__ID__","event_type":"page_view","user_id":"__USER__",'
    b'"occurred_at":"2026-01-01T00:00:00+00:00"}'
)


@dataclass
class Freshness:
    rate: float
    sent: int
    seen: int
    latencies_ms: list[float]  # per record seen, in send order (after the warm-up)
    sent_offsets: list[float]  # seconds since the first send, for each latency
    producer_lag_ms: float  # the latest send after its due time
    poll_period_ms: float

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def match(produced: dict[str, Any], observed: dict[str, Any], rate: float) -> Freshness:
    marks = {int(p): rows for p, rows in observed["marks"].items()}
    times = {p: [t for t, _ in rows] for p, rows in marks.items()}
    offsets = {p: [o for _, o in rows] for p, rows in marks.items()}
    first = produced["sent"][0] if produced["sent"] else 0.0
    latencies, at, seen = [], [], 0
    for sent, p, o in zip(produced["sent"], produced["partition"], produced["offset"], strict=True):
        i = bisect.bisect_left(offsets.get(p, []), o)
        if i == len(offsets.get(p, [])):
            continue
        seen += 1
        if sent - first >= WARMUP_SECONDS:
            latencies.append((times[p][i] - sent) * 1000)
            at.append(sent - first)
    lag = max((s - d for d, s in zip(produced["due"], produced["sent"], strict=True)), default=0.0)
    return Freshness(
        rate, len(produced["sent"]), seen, latencies, at, lag * 1000, observed["poll_period"] * 1000
    )


async def steady(
    ctx: BenchContext, rig: Rig, topic: str, key: str, rate: float, name: str
) -> Freshness:
    """One run at ``rate``: observer, paced producer, wait for the consumer, collect."""
    workdir = rig.workdir
    seconds = ctx.pick(3.0, 10.0)
    observer = rig.spawn_module(
        f"observer-{name}",
        "bench.observer",
        {"redis_url": rig.redis_url, "key": key, "out": str(workdir / f"observed-{name}.json")},
    )
    await asyncio.sleep(0.5)
    producer = rig.spawn_module(
        f"producer-{name}",
        "bench.paced_producer",
        {
            "bootstrap": rig.bootstrap,
            "topic": topic,
            "rate": rate,
            "seconds": seconds,
            "users": LIVE_USERS,
            "user_prefix": f"live{name}-",
            "datasets": str(ctx.datasets),
            "out": str(workdir / f"produced-{name}.json"),
        },
    )
    status = await producer.wait(seconds + 120)
    if status != 0:
        raise RuntimeError(f"paced producer failed: {producer.log_tail()}")
    produced = json.loads((workdir / f"produced-{name}.json").read_text())
    await _caught_up(rig, key, produced, within=ctx.pick(30.0, 60.0), observer=observer)
    await asyncio.sleep(0.1)
    observer.stop()
    observed = json.loads((workdir / f"observed-{name}.json").read_text())
    return match(produced, observed, rate)


async def _caught_up(
    rig: Rig, key: str, produced: dict[str, Any], within: float, observer: Child
) -> None:
    last: dict[int, int] = {}
    for p, o in zip(produced["partition"], produced["offset"], strict=True):
        last[p] = max(last.get(p, -1), o)
    redis = Redis.from_url(rig.redis_url)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            observer.check()
            marks = {int(p): int(o) for p, o in (await redis.hgetall(key)).items()}
            if all(marks.get(p, -1) >= o for p, o in last.items()):
                return
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


async def max_rate(ctx: BenchContext, rig: Rig, topic: str, prefix: str, consumer: Child) -> float:
    """Events/s of the running consumer draining a backlog of realistic events."""
    workload = generate(ctx.sessions, ctx.pick(2_000, 6_000), end=time.time(), user_prefix="b")
    redis = Redis.from_url(rig.redis_url)
    before = await applied(RedisStore(redis, Keyspace(prefix=prefix)), topic)
    await redis.aclose()
    _, records = await produce(rig.bootstrap, topic, workload.keyed())
    drain = await watch(rig, [consumer], topic, prefix, before + len(records), start_at=before)
    return drain.rate


async def run(ctx: BenchContext) -> BenchResult:
    result = BenchResult("freshness", "Freshness: producer send to state visible in Redis")
    runs: dict[str, list[Freshness]] = {"consumer": [], "bare": []}
    with ctx.rig("freshness") as rig:
        topic, bare_topic = f"fresh-{uuid.uuid4().hex[:8]}", f"bare-{uuid.uuid4().hex[:8]}"
        prefix, bare_prefix = f"f{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"
        specs = [TopicSpec(t, PARTITIONS, 1) for t in (topic, bare_topic)]
        await ensure_topics(rig.bootstrap, specs)
        consumer = rig.consumer("consumer", topic, prefix, f"g-{prefix}")
        rig.spawn_module(
            "bare-consumer",
            "bench.bare_consumer",
            {
                "bootstrap": rig.bootstrap,
                "topic": bare_topic,
                "group": f"g-{bare_prefix}",
                "redis_url": rig.redis_url,
                "key": Keyspace(prefix=bare_prefix).partition_watermarks(bare_topic),
            },
        )
        for t, p in ((topic, prefix), (bare_topic, bare_prefix)):
            await send_probes(rig.bootstrap, t, PARTITIONS, PROBE)
            await wait_applied(rig, p, t, PARTITIONS, within=60)
        best = await max_rate(ctx, rig, topic, prefix, consumer)
        print(f"  consumer max {best:,.0f} events/s (backlog drain)", flush=True)
        rates = sorted({1000.0, round(0.8 * best, -1), 5000.0})
        for rate in rates:
            for kind, t, p in (("consumer", topic, prefix), ("bare", bare_topic, bare_prefix)):
                key = Keyspace(prefix=p).partition_watermarks(t)
                fresh = await steady(ctx, rig, t, key, rate, f"{kind}-{rate:.0f}")
                runs[kind].append(fresh)
                print(
                    f"  {kind} at {rate:,.0f}/s: p50 {fresh.quantile(0.5):.1f} ms, "
                    f"p99 {fresh.quantile(0.99):.1f} ms, max {fresh.quantile(1.0):.1f} ms "
                    f"({fresh.seen}/{fresh.sent} seen)",
                    flush=True,
                )
    _report(ctx, result, runs, best)
    return result


def _report(
    ctx: BenchContext, result: BenchResult, runs: dict[str, list[Freshness]], best: float
) -> None:
    rows = []
    for fresh, bare in zip(runs["consumer"], runs["bare"], strict=True):
        label = f"{fresh.rate:,.0f} events/s"
        for q, name in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            target, met = "", None
            if fresh.rate == 5000 and name in ("p50", "p99"):
                bound = 10.0 if name == "p50" else 50.0
                target, met = f"<= {bound:.0f} ms", fresh.quantile(q) <= bound
            result.add(
                Figure(
                    f"freshness {name} at {label}",
                    fresh.quantile(q),
                    "ms",
                    bare.quantile(q),
                    "bare consumer (poll, decode, one HSET)",
                    target,
                    met,
                )
            )
        rows.append(
            [
                label,
                f"{fresh.seen:,}/{fresh.sent:,}",
                f"{fresh.quantile(0.5):.1f}",
                f"{fresh.quantile(0.99):.1f}",
                f"{fresh.quantile(1.0):.1f}",
                f"{bare.quantile(0.5):.1f}",
                f"{bare.quantile(0.99):.1f}",
                f"{bare.quantile(1.0):.1f}",
                f"{fresh.producer_lag_ms:.1f}",
                f"{fresh.poll_period_ms:.2f}",
            ]
        )
    result.tables.append(
        Table(
            f"Freshness in ms (consumer max rate measured here: {best:,.0f} events/s)",
            [
                "rate",
                "seen/sent",
                "p50",
                "p99",
                "max",
                "bare p50",
                "bare p99",
                "bare max",
                "producer lag max",
                "observer poll",
            ],
            rows,
        )
    )
    path, rel = ctx.plot("freshness_percentiles")
    series = {}
    for kind, values in runs.items():
        for q, name in ((0.5, "p50"), (0.99, "p99")):
            series[f"{kind} {name}"] = ([f.rate for f in values], [f.quantile(q) for f in values])
    line_chart(
        path,
        series,
        "events/s",
        "ms",
        "Freshness percentiles by rate",
        logy=True,
        hlines={"p99 target 50 ms": 50.0, "p50 target 10 ms": 10.0},
    )
    result.plots.append(rel)
    path, rel = ctx.plot("freshness_over_time")
    scatter_chart(
        path,
        {f"{f.rate:,.0f}/s": (f.sent_offsets, f.latencies_ms) for f in runs["consumer"]},
        "seconds since the first send",
        "ms",
        "Freshness of every record (consumer)",
    )
    result.plots.append(rel)
    result.notes.append(
        "Freshness = first observation of the partition watermark at or past the record's "
        "offset minus the producer's send() call; an upper bound, late by at most one observer "
        "poll. The first second of each run is left out (producer start)."
    )
