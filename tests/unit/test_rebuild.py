"""The batch handler rebuilds a partition whose state the store lost, from the log.

An in-memory store and an in-memory log stand in for Redis and Kafka; the
consumer against the real ones is in tests/faults (redis-lost).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from datetime import timedelta

import pytest

from recstream.apply.batch import DeadLetter, RawRecord, apply_batch
from recstream.contract.events import EventType
from recstream.model.config import CoreConfig
from recstream.store.memory import MemoryStore
from recstream_consumer.handler import BatchHandler, RebuildPausedError, RetryPolicy
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.service import Consumer
from recstream_consumer.settings import ConsumerSettings

from .eventgen import BASE, make_event

CONFIG = CoreConfig()
RECEIVED_MS = int((BASE + timedelta(hours=2)).timestamp() * 1000)
TOPIC = "interactions"


class MemoryLog:
    """One partition per key, offsets from ``start``; ``skip`` holds offsets without records."""

    def __init__(self, records: Sequence[RawRecord], start: int = 0) -> None:
        self.records = list(records)
        self.start = start
        self.reads = 0

    async def log_start(self, topic: str, partition: int) -> int:
        return self.start

    async def read(
        self, topic: str, partition: int, start: int, end: int, limit: int
    ) -> list[RawRecord]:
        self.reads += 1
        found = [
            r
            for r in self.records
            if (r.topic, r.partition) == (topic, partition)
            and max(start, self.start) <= r.offset < end
        ]
        return found[:limit]


class NoDeadLetters:
    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        assert not letters


def log_records(count: int, partition: int = 2, skip: tuple[int, ...] = ()) -> list[RawRecord]:
    out = []
    for i in range(count):
        if i in skip:
            continue
        user = f"u{i % 5}"
        event = make_event(f"e{i}", EventType.PRODUCT_VIEW, user, minutes=i, product_id=f"p{i % 6}")
        out.append(
            RawRecord(TOPIC, partition, i, RECEIVED_MS, user.encode(), json.dumps(event).encode())
        )
    return out


def handler_for(
    store: MemoryStore, log: MemoryLog, *, batch: int = 4, slice_seconds: float = 5.0
) -> BatchHandler:
    return BatchHandler(
        store,
        NoDeadLetters(),
        CONFIG,
        RetryPolicy(initial_delay=0.001, max_delay=0.002, budget=5.0),
        metrics=ConsumerMetrics(),
        log=log,
        rebuild_batch_records=batch,
        rebuild_slice_seconds=slice_seconds,
    )


async def oracle(records: Sequence[RawRecord]) -> MemoryStore:
    store = MemoryStore()
    for record in records:
        await apply_batch(store, [record], CONFIG)
    return store


def lose_everything(store: MemoryStore) -> None:
    for part in (store.users, store.watermarks, store.zsets, store.hashes, store.strings):
        part.clear()


def assert_same_state(actual: MemoryStore, expected: MemoryStore) -> None:
    """Equal state; a shard's watermark (the last batch touching it) may lie further on."""
    assert actual.users == expected.users
    assert actual.watermarks == expected.watermarks
    assert actual.hashes.keys() == expected.hashes.keys()
    for key, fields in expected.hashes.items():
        if ":wm:" not in key:
            assert actual.hashes[key] == fields, key
            continue
        for partition, mark in fields.items():
            last = actual.watermarks[TOPIC][int(partition)]
            assert int(mark) <= int(actual.hashes[key][partition]) <= last, key
    assert actual.zsets.keys() == expected.zsets.keys()
    for key, members in expected.zsets.items():
        assert actual.zsets[key] == pytest.approx(members, rel=1e-12), key


def metric(handler: BatchHandler, name: str, **labels: str) -> float:
    value = handler.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_store_that_came_back_empty_is_rebuilt_from_the_log_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = log_records(30)
    store = MemoryStore()
    handler = handler_for(store, MemoryLog(records))
    await handler.handle(records[:10])
    await handler.handle(records[10:20])
    lose_everything(store)
    with caplog.at_level(logging.INFO, "recstream_consumer"):
        report = await handler.handle(records[20:])
    assert report.applied == 10
    assert_same_state(store, await oracle(records))
    assert metric(handler, "recstream_consumer_state_lost_total", topic=TOPIC, partition="2") == 1
    assert metric(handler, "recstream_consumer_rebuilt_records_total", topic=TOPIC) == 20
    assert handler.metrics.rebuilding_partitions == set()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "lost the state of interactions[2]" in errors[0].getMessage()
    assert (errors[0].__dict__["topic"], errors[0].__dict__["partition"]) == (TOPIC, 2)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_store_that_went_back_in_time_gets_the_missing_records_again() -> None:
    records = log_records(30)
    store = MemoryStore()
    handler = handler_for(store, MemoryLog(records))
    await handler.handle(records[:10])
    snapshot = copy.deepcopy(store.__dict__)
    await handler.handle(records[10:20])
    store.__dict__.update(snapshot)  # restored from an older snapshot: watermark 9
    await handler.handle(records[20:])
    assert_same_state(store, await oracle(records))
    assert metric(handler, "recstream_consumer_rebuilt_records_total", topic=TOPIC) == 10


async def test_a_quiet_partition_is_found_and_rebuilt_without_a_new_batch() -> None:
    records = log_records(20)
    store = MemoryStore()
    handler = handler_for(store, MemoryLog(records))
    await handler.handle(records[:12])
    await handler.handle(records[12:])
    await handler.check_partitions({(TOPIC, 2)})
    assert metric(handler, "recstream_consumer_state_lost_total", topic=TOPIC, partition="2") == 0
    lose_everything(store)
    await handler.check_partitions({(TOPIC, 3)})  # not owned: not touched
    assert store.users == {}
    await handler.check_partitions({(TOPIC, 2)})
    assert_same_state(store, await oracle(records))
    assert metric(handler, "recstream_consumer_state_lost_total", topic=TOPIC, partition="2") == 1
    assert handler.metrics.rebuilding_partitions == set()


async def test_a_new_deployment_and_a_restart_from_commits_need_no_rebuild() -> None:
    records = log_records(20)
    store, log = MemoryStore(), MemoryLog(records)
    await handler_for(store, log).handle(records[:8])  # reads from the log start
    restarted = handler_for(store, log)  # a new process: resumes from the committed offset
    await restarted.handle(records[8:])
    assert_same_state(store, await oracle(records))
    assert log.reads == 0
    assert metric(restarted, "recstream_consumer_state_lost_total", topic=TOPIC, partition="2") == 0


async def test_a_restart_on_an_empty_store_rebuilds_from_the_log_start() -> None:
    records = log_records(20)
    store, log = MemoryStore(), MemoryLog(records)
    await handler_for(store, log).handle(records[:8])
    lose_everything(store)
    restarted = handler_for(store, log)
    await restarted.handle(records[8:])
    assert_same_state(store, await oracle(records))
    assert metric(restarted, "recstream_consumer_state_lost_total", topic=TOPIC, partition="2") == 1


async def test_offsets_without_records_before_a_batch_are_no_loss() -> None:
    records = log_records(20, skip=(8, 9))  # transaction markers, say
    store = MemoryStore()
    handler = handler_for(store, MemoryLog(records))
    await handler.handle(records[:8])
    handler.forget_partitions([(TOPIC, 2)])  # a rebalance: where it read from is unknown
    await handler.handle(records[8:])  # starts at 10, the watermark is 7
    assert_same_state(store, await oracle(records))
    assert metric(handler, "recstream_consumer_state_lost_total", topic=TOPIC, partition="2") == 0


async def test_records_the_log_no_longer_holds_are_reported_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = log_records(20)
    store, log = MemoryStore(), MemoryLog(records)
    handler = handler_for(store, log)
    await handler.handle(records[:15])
    lose_everything(store)
    log.start = 5  # retention deleted offsets 0 .. 4
    with caplog.at_level(logging.WARNING, "recstream_consumer"):
        await handler.handle(records[15:])
    assert_same_state(store, await oracle(records[5:]))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "before offset 5" in warnings[0]
    assert "recstream replay" in warnings[0]


async def test_a_long_rebuild_goes_in_slices_and_the_batch_waits_for_it() -> None:
    records = log_records(40)
    store = MemoryStore()
    handler = handler_for(store, MemoryLog(records), batch=2, slice_seconds=0.0)
    await handler.handle(records[:30])
    lose_everything(store)
    slices = 0
    while True:
        try:
            await handler.handle(records[30:])
            break
        except RebuildPausedError:
            slices += 1
            assert handler.metrics.rebuilding_partitions == {(TOPIC, 2)}
            assert store.watermarks.get(TOPIC, {}).get(2, -1) < 29, "the batch waits"
    assert slices >= 10
    assert_same_state(store, await oracle(records))
    assert metric(handler, "recstream_consumer_state_lost_total", topic=TOPIC, partition="2") == 1
    assert handler.metrics.rebuilding_partitions == set()


async def test_a_store_lost_again_during_a_rebuild_is_rebuilt_from_the_log_start() -> None:
    records = log_records(40)
    store, log = MemoryStore(), MemoryLog(records)
    handler = handler_for(store, log, batch=2, slice_seconds=0.0)
    await handler.handle(records[:10])
    snapshot = copy.deepcopy(store.__dict__)
    await handler.handle(records[10:30])
    store.__dict__.update(snapshot)  # back in time: watermark 9, the rebuild starts at 10
    with pytest.raises(RebuildPausedError):
        await handler.handle(records[30:])
    lose_everything(store)  # and now empty, in the middle of that rebuild
    for _ in range(100):
        try:
            await handler.handle(records[30:])
            break
        except RebuildPausedError:
            pass
    else:
        pytest.fail(f"no end to the rebuild after 100 slices ({log.reads} log reads)")
    assert_same_state(store, await oracle(records))
    assert metric(handler, "recstream_consumer_state_lost_total", topic=TOPIC, partition="2") == 2
    assert handler.metrics.rebuilding_partitions == set()


class OnePartition:
    name = "fake"

    async def run(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def assignment(self) -> set[tuple[str, int]]:
        return {(TOPIC, 2)}


def test_the_consumer_is_not_ready_while_a_partition_is_rebuilt() -> None:
    metrics = ConsumerMetrics()
    metrics.store_seen()
    handler = handler_for(MemoryStore(), MemoryLog([]))
    consumer = Consumer(ConsumerSettings(), handler, OnePartition(), metrics)
    assert consumer.readiness().ready
    metrics.set_rebuilding(TOPIC, 2, True)
    assert not consumer.readiness().ready
    assert consumer.readiness().partitions == 1
    metrics.set_rebuilding(TOPIC, 2, False)
    assert consumer.readiness().ready
