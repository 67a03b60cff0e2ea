"""Benchmark 1: ingest throughput of one consumer process, next to the Kafka and Redis limits.

The topic (12 partitions) is filled with realistic events first
(:mod:`bench.workload`). Then, on the same records:

- **raw consume** (the limit of the Kafka path): each runtime's source reads the
  topic in this process with a handler that only decodes and validates
  (``bench.ingest.CountingHandler``), and with one that only counts (fetch);
- **fold only**: the batch-apply core into the in-memory store (no I/O);
- **Redis limit**: the commits the core produced, written by a minimal Lua
  script (and, for reference, by the production store: read + checked commit);
- **end to end**: ``python -m recstream_consumer`` as its own process, timed
  from outside by the watermarks it advances in Redis, with its CPU seconds.
"""

from __future__ import annotations

import time
import uuid

from bench.charts import bar_chart
from bench.context import PARTITIONS, BenchContext
from bench.drain import Drain, watch
from bench.ingest import in_process, produce
from bench.limits import fold_only, lua_write, store_write
from bench.results import BenchResult, Figure, Table
from bench.stack import monitor_latency, script_stats
from bench.workload import generate
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream_consumer.settings import ConsumerSettings, Runtime
from recstream_consumer.topics import TopicSpec, ensure_topics

TARGET_RATE = 30_000
TARGET_SHARE = 0.4


def raw_settings(runtime: str, redis_url: str, bootstrap: str, topic: str) -> ConsumerSettings:
    """The consumer's default settings (the dev broker's group timing) for an in-process source."""
    return ConsumerSettings(
        redis={"url": redis_url},
        kafka={
            "bootstrap_servers": bootstrap,
            "interactions_topic": topic,
            "dead_letter_topic": f"{topic}.dlq",
            "catalog_topic": f"{topic}.catalog",
            "partitions": PARTITIONS,
        },
        consumer={
            "runtime": runtime,
            "group_id": f"raw-{runtime}-{uuid.uuid4().hex[:8]}",
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 300,
            "log_level": "WARNING",
        },
    )


async def run(ctx: BenchContext) -> BenchResult:
    result = BenchResult("throughput", "Ingest throughput of one consumer process")
    users = ctx.pick(3_000, 12_000)
    with ctx.rig("throughput") as rig:
        workload = generate(ctx.sessions, users, end=time.time())
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        await ensure_topics(rig.bootstrap, [TopicSpec(topic, PARTITIONS, 1)])
        produce_rate, records = await produce(rig.bootstrap, topic, workload.keyed())
        total = len(records)
        print(
            f"  {total:,} events of {users:,} users produced at {produce_rate:,.0f}/s", flush=True
        )
        config = CoreConfig()
        batch = ConsumerSettings().consumer.max_batch_records
        folded = await fold_only(records, batch, config, Keyspace(prefix=f"fold{topic[6:]}"))
        lua = await lua_write(rig.redis_url, folded.commits, total, rig.redis_pid)
        lua_rate = lua.rate
        store_rate = await store_write(
            rig.redis_url, folded.commits, total, Keyspace(prefix=f"store{topic[6:]}")
        )
        rows: list[list[object]] = []
        raw: dict[str, float] = {}
        drains: dict[str, Drain] = {}
        scripts: dict[str, tuple[int, float, float]] = {}
        for runtime in ctx.runtimes:
            rt: Runtime = "faust" if runtime == "faust" else "aiokafka"
            fetch = await in_process(
                rt, False, raw_settings(rt, rig.redis_url, rig.bootstrap, topic), total
            )
            decode = await in_process(
                rt, True, raw_settings(rt, rig.redis_url, rig.bootstrap, topic), total
            )
            raw[runtime] = decode.rate
            prefix = f"e2e{uuid.uuid4().hex[:8]}"
            await monitor_latency(rig.redis_url)
            consumer = rig.consumer(
                f"consumer-{runtime}", topic, prefix, f"e2e-{prefix}", runtime=runtime
            )
            drains[runtime] = drain = await watch(rig, [consumer], topic, prefix, total)
            consumer.stop()
            calls, mean_ms, longest_ms = await script_stats(rig.redis_url)
            scripts[runtime] = (calls, mean_ms, longest_ms)
            rows += [
                [runtime, "fetch only (in process)", f"{fetch.rate:,.0f}", "", ""],
                [runtime, "decode only (in process)", f"{decode.rate:,.0f}", "", ""],
                [
                    runtime,
                    "end to end (consumer process -> Redis)",
                    f"{drain.rate:,.0f}",
                    f"{drain.per_cpu_second:,.0f}",
                    f"{drain.consumer_cpu / drain.seconds:.2f}",
                ],
            ]

    fold_per_cpu = folded.events / folded.cpu_seconds if folded.cpu_seconds else 0.0
    rows += [
        [
            "-",
            "fold only (core, in-memory store)",
            f"{folded.rate:,.0f}",
            f"{fold_per_cpu:,.0f}",
            "",
        ],
        ["-", "Redis: minimal Lua batch write", f"{lua_rate:,.0f}", "", ""],
        ["-", "Redis: same, per redis-server CPU-second", f"{lua.per_redis_cpu:,.0f}", "", ""],
        ["-", "Redis: production store (read + checked commit)", f"{store_rate:,.0f}", "", ""],
    ]
    for runtime, drain in drains.items():
        result.add(
            Figure(
                f"ingest, one {runtime} consumer process",
                drain.rate,
                "events/s",
                raw[runtime],
                f"raw consume with decode, {runtime}",
                f">= {TARGET_RATE:,} events/s and >= {TARGET_SHARE:.0%} of raw consume",
                drain.rate >= TARGET_RATE and drain.rate >= TARGET_SHARE * raw[runtime],
            )
        )
        result.add(
            Figure(
                f"ingest ({runtime}) vs the Redis limit",
                drain.rate,
                "events/s",
                lua_rate,
                "minimal Lua batch write of the same keys",
            )
        )
        result.add(
            Figure(
                f"ingest ({runtime}) per consumer CPU-second",
                drain.per_cpu_second,
                "events/s",
                fold_per_cpu,
                "fold only, per CPU-second",
                note="the consumer's CPU time over the drain, from /proc",
            )
        )
    result.add(
        Figure(
            "fold only (no Kafka, no Redis)",
            folded.rate,
            "events/s",
            lua_rate,
            "minimal Lua batch write",
        )
    )
    best = max((d.rate for d in drains.values()), default=0.0)
    ctx.shared["max_ingest_rate"] = best
    result.tables.append(
        Table(
            f"{total:,} events, {users:,} users, {workload.items:,} items, "
            f"{PARTITIONS} partitions, batches of {batch}",
            ["runtime", "path", "events/s", "events per CPU-s", "consumer CPU share"],
            rows,
        )
    )
    path, rel = ctx.plot("throughput")
    labels = [f"{r[0]} {r[1]}".strip("- ") for r in rows]
    bar_chart(
        path,
        labels,
        [float(str(r[2]).replace(",", "")) for r in rows],
        "events/s",
        "Ingest: end to end next to its limits",
        log=True,
    )
    result.plots.append(rel)
    for runtime, drain in drains.items():
        result.notes.append(
            f"{runtime}: over the drain the consumer used {drain.consumer_cpu:.1f} CPU-s, "
            f"Redis {drain.redis_cpu:.1f} CPU-s, the broker {drain.broker_cpu:.1f} CPU-s in "
            f"{drain.seconds:.1f} s; consumer RSS {drain.consumer_rss / 2**20:.0f} MiB; "
            f"{scripts[runtime][0]:,} batch scripts ({total / max(scripts[runtime][0], 1):,.0f} "
            f"events each), the longest Redis command {scripts[runtime][2]:.0f} ms"
        )
    ctx.shared["consumer_rss"] = max((d.consumer_rss for d in drains.values()), default=0)
    return result
