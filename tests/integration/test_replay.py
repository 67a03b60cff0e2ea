"""``recstream replay``: to the broker and straight into Redis give the same state."""

from __future__ import annotations

import itertools
import math
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from redis.asyncio import Redis

from recstream.contract.events import Event
from recstream.contract.keyspace import DEFAULT_VERSION, Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.datasets import diginetica_events, session_tsv_events
from recstream.offline.evaluation.training import landmark_for
from recstream.platform.redis import redis_client as open_redis
from recstream.store.redis import RedisStore
from recstream_cli.main import cli
from recstream_cli.replay import Pacer, restore_erasure_log, to_kafka, to_redis
from recstream_consumer.topics import ensure_topics, topic_specs

from ..conftest import sync_redis
from .conftest import consumer_settings, read_topic, running_consumer, wait_for_watermarks

pytestmark = pytest.mark.integration

PARTITIONS = 4


def sample_events(datasets: Path, count: int) -> list[Event]:
    """Diginetica rows: views and purchases with categories, anonymous and known users."""
    with (datasets / "diginetica-sample" / "events.csv").open(newline="") as handle:
        return list(itertools.islice(diginetica_events(handle), count))


async def dump(client: Redis, keyspace: Keyspace) -> dict[str, Any]:
    """Every key of the keyspace (prefix removed) with its value, user states decoded; a
    Redis Cluster's slot markers left out (a consumer's bookkeeping, not state)."""
    out: dict[str, Any] = {}
    async for raw in client.scan_iter(match=f"{keyspace.prefix}:*", count=1000):
        key = bytes(raw).decode()
        if Keyspace.is_slot_marker(key):
            continue
        name = key[len(keyspace.prefix) :]
        kind: Any = await client.type(key)
        value: Any
        if kind == b"hash":
            fields = {k.decode(): v for k, v in (await client.hgetall(key)).items()}  # type: ignore[union-attr]
            value = {k: v.decode() for k, v in fields.items() if k != "st"}
            if "st" in fields:
                value["st"] = orjson.loads(zlib.decompress(fields["st"]))
        elif kind == b"zset":
            rows: Any = await client.zrange(key, 0, -1, withscores=True)
            value = {member.decode(): score for member, score in rows}
        else:
            assert kind == b"string", key
            text: Any = await client.get(key)
            value = text.decode()
        out[name] = value
    return out


def assert_same_state(live: dict[str, Any], replayed: dict[str, Any], topic: str) -> None:
    assert live.keys() == replayed.keys()
    name = f":v{DEFAULT_VERSION}:{{wm}}:partitions:{topic}"
    partitions = live[name]
    assert partitions == replayed[name]
    for key, value in live.items():
        other = replayed[key]
        if ":wm:" in key:
            # a statistic shard's watermark is the last offset of the last batch that
            # touched it: the same partitions, offsets that depend on batch boundaries
            assert value.keys() == other.keys(), key
            for state in (value, other):
                assert all(int(state[p]) <= int(partitions[p]) for p in state), key
        elif isinstance(value, dict) and value and isinstance(next(iter(value.values())), float):
            # sorted-set scores: sums of the same increments, batched differently (log2
            # of the sums, so an absolute tolerance is a relative one on the sums)
            assert value.keys() == other.keys(), key
            for member, score in value.items():
                assert math.isclose(score, other[member], rel_tol=1e-9, abs_tol=1e-9), (
                    key,
                    member,
                )
        else:
            assert value == other, key


async def test_replay_to_redis_equals_the_consumer_reading_the_replayed_topic(
    datasets: Path, kafka_bootstrap: str, redis_url: str, topic_name: str
) -> None:
    events = sample_events(datasets, 1500)
    core = CoreConfig(decay_landmark=landmark_for(events))
    live, replayed = (Keyspace(prefix=f"t{uuid.uuid4().hex[:10]}") for _ in range(2))
    client = open_redis(redis_url)
    try:
        sent = await to_kafka(
            iter(events), kafka_bootstrap, topic_name, PARTITIONS, Pacer(None, None), "event"
        )
        assert sent.records == len(events)
        settings = consumer_settings(
            redis_url=redis_url, kafka_bootstrap=kafka_bootstrap, keyspace=live,
            topic=topic_name, partitions=PARTITIONS, max_batch_records=200,
        ).model_copy(update={"core": core})  # fmt: skip
        live_store = RedisStore(client, live)
        replay_store = RedisStore(client, replayed)
        await ensure_topics(kafka_bootstrap, topic_specs(settings.kafka))  # as the consumer
        await restore_erasure_log(replay_store, core, kafka_bootstrap, settings.kafka)
        totals = await to_redis(
            iter(events), replay_store, topic_name, PARTITIONS, core, 500, "event"
        )
        assert (totals.records, totals.applied, totals.dead_letters) == (len(events),) * 2 + (0,)
        expected = await replay_store.partition_watermarks(topic_name)
        assert set(expected) == set(range(PARTITIONS))
        assert sum(expected.values()) + PARTITIONS == len(events)
        async with running_consumer(settings):
            await wait_for_watermarks(live_store, topic_name, expected)
        live_state, replay_state = await dump(client, live), await dump(client, replayed)
        assert sum(1 for k in live_state if ":state" in k) > 100  # users
        assert any(":tr1:" in k for k in live_state)  # transitions
        assert_same_state(live_state, replay_state, topic_name)
    finally:
        for keyspace in (live, replayed):
            keys = [k async for k in client.scan_iter(match=f"{keyspace.prefix}:*", count=1000)]
            for start in range(0, len(keys), 1000):
                await client.delete(*keys[start : start + 1000])
        await client.aclose()


def write_session_tsv(path: Path, rows: list[str]) -> None:
    path.write_text("SessionId\tItemId\tTime\n" + "".join(f"{row}\n" for row in rows))


def test_replay_command_into_redis_reports_bad_rows_and_dedupes_a_second_run(
    tmp_path: Path, redis_url: str
) -> None:
    source = tmp_path / "clicks.tsv"
    base = 1_700_000_000
    rows = [f"{s}\t{100 + i}\t{base + 60 * s + i}" for s in range(5) for i in range(4)]
    write_session_tsv(source, [*rows[:3], "9\tnot-a-time-row", *rows[3:]])
    prefix = f"t{uuid.uuid4().hex[:10]}"
    args = [
        "replay", str(source), "--to", "redis", "--redis-url", redis_url, "--key-prefix", prefix,
        "--keyspace-version", "3", "--partitions", "3", "--topic", "backfill",
        "--no-erasure-log",
    ]  # fmt: skip
    env = {"RECSTREAM_CORE__DECAY_LANDMARK": str(base)}
    client = sync_redis(redis_url)
    try:
        first = CliRunner().invoke(cli, args, env=env)
        assert first.exit_code == 0, first.output
        assert f"{source}:5: 2 fields, expected 3" in first.output
        assert "replayed 20 events" in first.output
        assert "applied 20," in first.output
        keys = {k.decode() for k in client.scan_iter(match=f"{prefix}:*")}
        assert all(k.startswith(f"{prefix}:v3:") for k in keys)
        assert f"{prefix}:v3:{{u:s0}}:state" in keys
        second = CliRunner().invoke(cli, args, env=env)
        assert second.exit_code == 0, second.output
        assert "applied 0, already applied 0, duplicates 20" in second.output
        marks = client.hgetall(f"{prefix}:v3:{{wm}}:partitions:backfill")
        assert sum(int(v) + 1 for v in marks.values()) == 40  # the second run came after
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()


def test_replay_command_to_kafka_keys_by_user_and_keeps_the_rate(
    tmp_path: Path, kafka_bootstrap: str, topic_name: str
) -> None:
    source = tmp_path / "clicks.tsv"
    write_session_tsv(source, [f"{s}\t{7 + s}\t{1_700_000_000 + s}" for s in range(30)])
    args = [
        "replay", str(source), "--to", "kafka", "--bootstrap-servers", kafka_bootstrap,
        "--topic", topic_name, "--partitions", "2", "--rate", "100",
    ]  # fmt: skip
    started = time.monotonic()
    result = CliRunner().invoke(cli, args)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "replayed 30 events" in result.output
    assert elapsed >= 0.29  # 30 events at 100/s
    import asyncio

    records = asyncio.run(read_topic(kafka_bootstrap, topic_name, 30))
    assert len(records) == 30
    by_key = {r.key: r for r in records}
    assert set(by_key) == {f"s{s}".encode() for s in range(30)}
    assert by_key[b"s3"].timestamp == (1_700_000_000 + 3) * 1000  # event time
    assert {r.partition for r in records} == {0, 1}


def test_pacing_options_are_for_kafka_only(tmp_path: Path) -> None:
    source = tmp_path / "clicks.tsv"
    write_session_tsv(source, ["1\t2\t1700000000"])
    result = CliRunner().invoke(cli, ["replay", str(source), "--to", "redis", "--rate", "5"])
    assert result.exit_code == 2
    assert "--to kafka only" in result.output


async def test_time_compression_keeps_the_events_on_a_scaled_timeline() -> None:
    rows = [f"1\t{i}\t{1_700_000_000 + 3600 * i}\n" for i in range(4)]
    lines = ["SessionId\tItemId\tTime\n", *rows]
    pacer = Pacer(rate=None, compression=36_000.0)  # an hour of events in 0.1 s
    sent_at = []
    for event in session_tsv_events(lines):
        await pacer.wait(event)
        sent_at.append(time.monotonic())
    # One timeline from the first send: no event leaves before its scaled offset (a late
    # send does not push back the rest, so single gaps vary on a busy machine); the
    # upper bound, 5x the 0.3 s schedule, only catches a pacer that sleeps far too long.
    offsets = [at - pacer.started for at in sent_at]
    assert all(offset >= 0.1 * i - 1e-6 for i, offset in enumerate(offsets)), offsets
    assert offsets[-1] < 1.5, offsets
