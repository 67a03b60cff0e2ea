"""Replay parity: the Diginetica sample replayed and streamed through Kafka gives the same keyspace.

The same events go through the broker, the consumer and Redis (12 partitions, batches
as they come) under the test's key prefix, and through a replay under a prefix of its
own: the log laid out as the topic holds it (``RecordLog``: same partitions, same
offsets) and applied partition batch by partition batch with ``apply_batch``, as
``recstream replay --to redis`` does, in batches of another size than the consumer's.
Then the two keyspaces are compared whole: every key, its type, its value (user states
decoded from their zlib-compressed JSON) and its TTL, so a divergence in any user state
or any statistic fails. Batch boundaries may show in two places only, each compared
with what does not depend on them: the last bits of summed scores and the shard
watermarks (see ``differences``).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from recstream.apply.batch import apply_batch
from recstream.contract.events import Event, encode_event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.datasets import BadRow, diginetica_events
from recstream.offline.evaluation.records import RecordLog, partition_batches
from recstream.store.redis import RedisStore
from recstream_cli.replay import restore_erasure_log
from recstream_consumer.settings import Runtime

from .conftest import (
    RUNTIMES,
    consumer_settings,
    create_topic,
    last_offsets,
    produce,
    running_consumer,
    total_events,
    wait_for_watermarks,
)
from .redis_keyspace import Stored, read_keyspace

pytestmark = pytest.mark.integration

PARTITIONS = 12
RECORD_TIME_MS = 1_790_000_000_000  # one record timestamp for both paths
CONSUMER_BATCH = 500
REPLAY_BATCH = 1000  # other batch boundaries than the consumer's, on purpose
# A TTL is set from the wall clock when a key is written, so the two paths' TTLs differ
# by the time between their writes (the replay runs after the stream has been applied).
TTL_TOLERANCE_SECONDS = 120
# Scores of shared statistics are log2 sums of forward-decayed weights. A batch sums its
# contributions to one member before its add (plan_shard_writes), so other batch
# boundaries (and another interleaving of partitions) add the same terms in another
# order: the sums then agree to a few units in the last place, not bit for bit (an
# absolute difference of logs is a relative one of the sums).
SCORE_TOLERANCE = 1e-12
SHARD_WATERMARKS = re.compile(r"v\d+:\{s:\d+\}:wm:.+")


def load_diginetica(datasets: Path) -> list[Event]:
    bad: list[BadRow] = []
    with (datasets / "diginetica-sample" / "events.csv").open() as lines:
        events = list(diginetica_events(lines, bad))
    assert bad == []
    return events


@pytest.fixture(scope="module")
def diginetica(datasets: Path) -> list[Event]:
    return load_diginetica(datasets)


@pytest.fixture
async def replay_keyspace(keyspace: Keyspace, redis_client: Redis) -> AsyncIterator[Keyspace]:
    """A key prefix of the replay's own beside the test's. Both are deleted at the end, a
    thousand keys per command (the test's tens of thousands of keys one by one took seconds)."""
    replay = Keyspace(prefix=f"{keyspace.prefix}r")
    yield replay
    for prefix in (replay.prefix, keyspace.prefix):
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis_client.unlink(*keys[start : start + 1000])


def comparable(stored: Stored) -> tuple[str, Any]:
    """(type, value) of a key with its bytes decoded: a user state's ``st`` from its
    zlib-compressed JSON, every other value and field as text."""
    if stored.type == "zset":
        return stored.type, stored.value
    if stored.type == "string":
        return stored.type, stored.value.decode()
    fields = {f: v.decode() for f, v in stored.value.items() if f != "st"}
    if "st" in stored.value:
        fields["st"] = orjson.loads(zlib.decompress(stored.value["st"]))
    return stored.type, fields


def differences(
    live: dict[str, Stored], replayed: dict[str, Stored], last: dict[int, int]
) -> list[str]:
    """What differs between two keyspaces (keys without their prefix), one line each.
    ``last``: the last offset of each partition of the topic."""
    found = [f"only live: {k}" for k in sorted(live.keys() - replayed.keys())]
    found += [f"only replayed: {k}" for k in sorted(replayed.keys() - live.keys())]
    for key in sorted(live.keys() & replayed.keys()):
        a, b = live[key], replayed[key]
        if (a.ttl == -1) != (b.ttl == -1) or abs(a.ttl - b.ttl) > TTL_TOLERANCE_SECONDS:
            found.append(f"{key}: TTL {a.ttl} live, {b.ttl} replayed")
        (kind_a, value_a), (kind_b, value_b) = comparable(a), comparable(b)
        if kind_a != kind_b:
            found.append(f"{key}: a {kind_a} live, a {kind_b} replayed")
        elif SHARD_WATERMARKS.fullmatch(key):
            # A shard's watermark for a partition is the last offset of the last batch that
            # touched the shard: it depends on batch boundaries. What both must hold: the
            # same partitions touched the shard, and each watermark is within the partition.
            if value_a.keys() != value_b.keys():
                partitions = f"partitions {sorted(value_a)} live, {sorted(value_b)} replayed"
                found.append(f"{key}: {partitions}")
            found += [
                f"{key}: {p} at {o} past the partition's last offset"
                for p, o in [*value_a.items(), *value_b.items()]
                if int(o) > last[int(p)]
            ]
        elif kind_a == "zset":
            if value_a.keys() != value_b.keys():
                found.append(f"{key}: members {sorted(value_a.keys() ^ value_b.keys())} differ")
            found += [
                f"{key}: {m} scores {value_a[m]!r} live, {value_b[m]!r} replayed"
                for m in sorted(value_a.keys() & value_b.keys())
                if not math.isclose(
                    value_a[m], value_b[m], rel_tol=SCORE_TOLERANCE, abs_tol=SCORE_TOLERANCE
                )
            ]
        elif value_a != value_b:
            found.append(f"{key}: {value_a!r:.300} live, {value_b!r:.300} replayed")
    return found


async def keyspace_of(redis: Redis, keyspace: Keyspace) -> dict[str, Stored]:
    """Every key under the prefix, by its name without the prefix."""
    prefix = f"{keyspace.prefix}:"
    return {k[len(prefix) :]: v for k, v in (await read_keyspace(redis, prefix)).items()}


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_diginetica_replayed_and_streamed_through_kafka_give_the_same_keyspace(
    runtime: Runtime,
    diginetica: list[Event],
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    replay_keyspace: Keyspace,
    redis_client: Redis,
    store: RedisStore,
    topic_name: str,
) -> None:
    config = CoreConfig()
    events = diginetica
    assert len(events) == 12_647
    values = [(e.user_id.encode(), encode_event(e)) for e in events]
    users = sorted({e.user_id for e in events})

    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=PARTITIONS,
        max_batch_records=CONSUMER_BATCH,
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    sent = await produce(kafka_bootstrap, topic_name, values, timestamp_ms=RECORD_TIME_MS)
    async with running_consumer(settings) as (consumer, _):
        await wait_for_watermarks(store, topic_name, last_offsets(sent), within=60)
    assert consumer.counters.applied == len(events)
    assert consumer.counters.batches > PARTITIONS
    assert await total_events(store, users) == len(events)

    log = RecordLog(topic_name, PARTITIONS)
    records = [log.append(e, RECORD_TIME_MS) for e in events]
    laid_out = [(r.partition, r.offset) for r in records]
    assert laid_out == [(s.partition, s.offset) for s in sent], "the replay lays out the topic"
    replay = RedisStore(redis_client, replay_keyspace)
    # as `recstream replay --to redis` does first (the consumer did it at its start)
    assert await restore_erasure_log(replay, config, kafka_bootstrap, settings.kafka) == 0
    for batch in partition_batches(records, REPLAY_BATCH):
        await apply_batch(replay, batch, config)

    live = await keyspace_of(redis_client, keyspace)
    replayed = await keyspace_of(redis_client, replay_keyspace)
    assert sum(1 for k in live if k.endswith(":state")) == len(users)
    assert {s.type for s in live.values()} == {"hash", "zset", "string"}
    found = differences(live, replayed, last_offsets(sent))
    assert not found, f"{len(found)} differences:\n" + "\n".join(found[:40])
