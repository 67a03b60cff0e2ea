"""What the feedback loop costs the consumer's core: ``python -m bench.attribution_cost``.

The benchmark workload (:mod:`bench.workload`: real YooChoose sessions replayed by
generated users, with carts and purchases) is laid out twice: as it is, and with a list
of ten recommendations shown before a share of the product views (the API's
``recommendation_shown`` record; the view names the list, as a click on it would). Both
logs are applied through the batch-apply core (decode, fold, attribution, statistics,
shard plans) into a memory store, in partition batches of 500, blocks of each alternated
so that the machine's noise falls on both alike. Printed: CPU seconds per behaviour
event (the lists are extra records, so their cost is charged to the events they
follow), the records per second of each log, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.context import DEFAULT_DATASETS
from bench.workload import generate, load_sessions
from recstream.apply.batch import RawRecord, apply_batch
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.records import partition_for
from recstream.store.memory import MemoryStore

PARTITIONS = 4
BATCH = 500


def with_lists(events: list[tuple[str, bytes]], share: float, seed: int) -> list[tuple[str, bytes]]:
    """``events`` with a list of ten items (the viewed one among them) before ``share`` of
    the product views, which then name it."""
    rng = random.Random(seed)
    items = [orjson.loads(v).get("product_id") for _, v in events]
    pool = [i for i in items if i]
    out: list[tuple[str, bytes]] = []
    for n, (user, value) in enumerate(events):
        event = orjson.loads(value)
        if event["event_type"] == "product_view" and rng.random() < share:
            listed = [event["product_id"], *rng.sample(pool, 9)]
            rng.shuffle(listed)
            shown = {
                "event_id": f"shown-{n}",
                "event_type": "recommendation_shown",
                "user_id": user,
                "occurred_at": event["occurred_at"],
                "recommendation_id": f"r{n}",
                "variant": rng.choice(["blend", "ranker-x"]),
                "items": [
                    {"kind": "product", "id": i, "position": p} for p, i in enumerate(listed, 1)
                ],
            }
            out.append((user, orjson.dumps(shown)))
            event["recommendation_id"] = f"r{n}"
            value = orjson.dumps(event)
        out.append((user, value))
    return out


def records(events: list[tuple[str, bytes]], received_ms: int) -> list[list[RawRecord]]:
    """Partition batches of ``events``, in log order."""
    offsets = [0] * PARTITIONS
    by_partition: list[list[RawRecord]] = [[] for _ in range(PARTITIONS)]
    for user, value in events:
        p = partition_for(user.encode(), PARTITIONS)
        by_partition[p].append(
            RawRecord("interactions", p, offsets[p], received_ms, user.encode(), value)
        )
        offsets[p] += 1
    return [part[i : i + BATCH] for part in by_partition for i in range(0, len(part), BATCH)]


async def apply_all(batches: list[list[RawRecord]], config: CoreConfig) -> float:
    """CPU seconds to apply ``batches`` to a fresh memory store."""
    store = MemoryStore()
    started = time.process_time()
    for batch in batches:
        report = await apply_batch(store, batch, config)
        assert not report.dead_letters, report.dead_letters[:1]
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--share", type=float, default=0.3, help="views after a list")
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    end = datetime.now(UTC).timestamp() - 60
    workload = generate(load_sessions(args.datasets), args.users, end=end, span_seconds=86_400)
    plain = workload.events
    listed = with_lists(plain, args.share, seed=7)
    received = int(end * 1000) + 60_000
    config = CoreConfig(decay_landmark=end - 30 * 86_400)
    logs = {"without lists": records(plain, received), "with lists": records(listed, received)}
    sizes = {"without lists": len(plain), "with lists": len(listed)}
    seconds: dict[str, list[float]] = {name: [] for name in logs}
    for _ in range(args.blocks):
        for name, batches in logs.items():
            seconds[name].append(asyncio.run(apply_all(batches, config)))
    events = len(plain)
    print(
        f"{events:,} behaviour events of {len(workload.users):,} users; lists before "
        f"{args.share:.0%} of the views ({sizes['with lists'] - events:,} extra records)"
    )
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    for name, cpu in medians.items():
        print(
            f"  {name}: {1e6 * cpu / events:.1f} us of CPU per behaviour event, "
            f"{sizes[name] / cpu:,.0f} records per CPU-second (median of {args.blocks})"
        )
    ratio = medians["with lists"] / medians["without lists"]
    print(f"  ratio with / without: {ratio:.3f}")


if __name__ == "__main__":
    main()
