"""Benchmark 6: throughput of 1, 2 and 3 consumer processes in one group.

For each count, the consumers start on a fresh topic (12 partitions) and
their group is settled (one probe record per partition applied) before a
backlog of realistic events is produced; the aggregate rate is timed from
the first backlog record applied to the last. On a 2-core machine that
also runs the broker, Redis and the producer, more processes mostly add
overhead: the figure shows that the group shares the work correctly and
what a process costs, not how a bigger machine scales (see the model in
``docs/performance.md``).
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


async def run(ctx: BenchContext) -> BenchResult:
    result = BenchResult("scaling", "Scaling: 1, 2 and 3 consumer processes")
    workload = generate(ctx.sessions, ctx.pick(1_500, 10_000), end=time.time())
    keyed = workload.keyed()
    drains: dict[int, Drain] = {}
    for count in COUNTS:
        with ctx.rig(f"scaling-{count}") as rig:
            topic, prefix = f"scale-{uuid.uuid4().hex[:8]}", f"s{uuid.uuid4().hex[:8]}"
            await ensure_topics(rig.bootstrap, [TopicSpec(topic, PARTITIONS, 1)])
            consumers = [
                rig.consumer(f"consumer-{i}", topic, prefix, f"g-{prefix}") for i in range(count)
            ]
            await send_probes(rig.bootstrap, topic, PARTITIONS, PROBE)
            await wait_applied(rig, prefix, topic, PARTITIONS, within=90)
            _, records = await produce(rig.bootstrap, topic, keyed)
            drains[count] = drain = await watch(
                rig, consumers, topic, prefix, PARTITIONS + len(records), start_at=PARTITIONS
            )
            print(f"  {count} consumer(s): {drain.rate:,.0f} events/s", flush=True)
    one = drains[1].rate
    rows = []
    for count, drain in drains.items():
        result.add(
            Figure(
                f"{count} consumer process(es)",
                drain.rate,
                "events/s",
                one * count,
                f"{count} x one process (linear)",
            )
        )
        rows.append(
            [
                str(count),
                f"{drain.rate:,.0f}",
                f"{drain.rate / one:.2f}",
                f"{drain.consumer_cpu:.1f}",
                f"{drain.redis_cpu:.1f}",
                f"{drain.broker_cpu:.1f}",
                f"{drain.seconds:.1f}",
                f"{drain.per_cpu_second:,.0f}",
            ]
        )
    result.tables.append(
        Table(
            f"{len(keyed):,} events, {PARTITIONS} partitions, 2 cores shared by all processes",
            [
                "consumers",
                "events/s",
                "speed-up",
                "consumer CPU-s",
                "Redis CPU-s",
                "broker CPU-s",
                "seconds",
                "events per consumer CPU-s",
            ],
            rows,
        )
    )
    path, rel = ctx.plot("scaling")
    line_chart(
        path,
        {
            f"{c} consumer(s)": ([t for t, _ in d.series], [n for _, n in d.series])
            for c, d in drains.items()
        },
        "seconds",
        "events applied",
        "Backlog drained by 1, 2, 3 consumers",
        markers=False,
    )
    result.plots.append(rel)
    result.notes.append(
        "Two cores are shared by the consumers, Redis, the broker and this harness: a second "
        "process can at best use the core the first leaves to Redis and the broker."
    )
    return result
