"""Benchmark 6: throughput of 1, 2 and 3 consumer processes in one group, against one
Redis and against a local Redis Cluster of three primaries.

For each Redis and count, the consumers start on a fresh topic (12 partitions) and
their group is settled (one probe record per partition applied) before a backlog of
realistic events is produced; the aggregate rate is timed from the first backlog
record applied to the last, and the CPU time of the consumers and of every Redis
process is read from ``/proc``. On a 2-core machine that also runs the broker,
Redis and the producer, more processes mostly add overhead: the wall-clock figures
show that the group shares the work correctly and what a process costs, not how a
bigger machine scales. The per-CPU-second figures (events per consumer CPU-second,
events per Redis CPU-second) are what the model in ``docs/performance.md`` scales.
"""

from __future__ import annotations

import time
import uuid

from bench.charts import line_chart
from bench.context import PARTITIONS, BenchContext
from bench.drain import Drain, send_probes, wait_applied, watch
from bench.freshness import PROBE
from bench.ingest import produce
from bench.results import BenchResult, Figure, Table
from bench.workload import generate
from recstream_consumer.topics import TopicSpec, ensure_topics

COUNTS = (1, 2, 3)
REDIS = {"one Redis": False, "Redis Cluster (3 primaries)": True}


async def _drain(
    ctx: BenchContext, keyed: list[tuple[bytes, bytes]], count: int, cluster: bool
) -> Drain:
    name = f"scaling-{'cluster' if cluster else 'single'}-{count}"
    with ctx.rig(name, redis_cluster=cluster) as rig:
        topic, prefix = f"scale-{uuid.uuid4().hex[:8]}", f"s{uuid.uuid4().hex[:8]}"
        await ensure_topics(rig.bootstrap, [TopicSpec(topic, PARTITIONS, 1)])
        consumers = [
            rig.consumer(f"consumer-{i}", topic, prefix, f"g-{prefix}") for i in range(count)
        ]
        await send_probes(rig.bootstrap, topic, PARTITIONS, PROBE)
        await wait_applied(rig, prefix, topic, PARTITIONS, within=90)
        _, records = await produce(rig.bootstrap, topic, keyed)
        return await watch(
            rig, consumers, topic, prefix, PARTITIONS + len(records), start_at=PARTITIONS
        )


async def run(ctx: BenchContext) -> BenchResult:
    result = BenchResult("scaling", "Scaling: 1, 2 and 3 consumers, one Redis and a Redis Cluster")
    workload = generate(ctx.sessions, ctx.pick(1_500, 10_000), end=time.time())
    keyed = workload.keyed()
    drains: dict[tuple[str, int], Drain] = {}
    for redis, cluster in REDIS.items():
        for count in COUNTS:
            drains[redis, count] = drain = await _drain(ctx, keyed, count, cluster)
            print(
                f"  {redis}, {count} consumer(s): {drain.rate:,.0f} events/s, "
                f"{drain.per_cpu_second:,.0f} per consumer CPU-s, "
                f"{_per_redis_cpu(drain):,.0f} per Redis CPU-s",
                flush=True,
            )
    one = drains["one Redis", 1].rate
    rows = []
    for (redis, count), drain in drains.items():
        result.add(
            Figure(
                f"{redis}, {count} consumer process(es)",
                drain.rate,
                "events/s",
                one * count,
                f"{count} x one process on one Redis (linear)",
            )
        )
        rows.append(
            [
                redis,
                str(count),
                f"{drain.rate:,.0f}",
                f"{drain.rate / one:.2f}",
                f"{drain.consumer_cpu:.1f}",
                f"{drain.redis_cpu:.1f}",
                f"{drain.broker_cpu:.1f}",
                f"{drain.seconds:.1f}",
                f"{drain.per_cpu_second:,.0f}",
                f"{_per_redis_cpu(drain):,.0f}",
            ]
        )
    result.tables.append(
        Table(
            f"{len(keyed):,} events, {PARTITIONS} partitions, 2 cores shared by all processes",
            [
                "Redis",
                "consumers",
                "events/s",
                "speed-up",
                "consumer CPU-s",
                "Redis CPU-s",
                "broker CPU-s",
                "seconds",
                "events per consumer CPU-s",
                "events per Redis CPU-s",
            ],
            rows,
        )
    )
    path, rel = ctx.plot("scaling")
    line_chart(
        path,
        {
            f"{c} consumer(s), {r}": ([t for t, _ in d.series], [n for _, n in d.series])
            for (r, c), d in drains.items()
        },
        "seconds",
        "events applied",
        "Backlog drained by 1, 2, 3 consumers",
        markers=False,
    )
    result.plots.append(rel)
    result.notes.append(
        "Two cores are shared by the consumers, Redis (one process, or three cluster "
        "primaries), the broker and this harness: a second process can at best use the core "
        "the first leaves to Redis and the broker. Compare per CPU-second."
    )
    return result


def _per_redis_cpu(drain: Drain) -> float:
    return drain.events / drain.redis_cpu if drain.redis_cpu else 0.0
