"""A batch must continue its partition: the store refuses one that would build partial state.

The in-memory store here; the Redis store follows the same rule (tests/integration/test_store.py).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from recstream.apply.batch import RawRecord, apply_batch, apply_catalog_batch
from recstream.contract.events import EventType
from recstream.model.config import CoreConfig
from recstream.store.memory import MemoryStore
from recstream.store.port import StateLostError

from .eventgen import BASE, make_event

CONFIG = CoreConfig()
RECEIVED_MS = int((BASE + timedelta(hours=2)).timestamp() * 1000)


def log(count: int, partition: int = 1) -> list[RawRecord]:
    """``count`` records of three users at offsets 0 .. count - 1."""
    out = []
    for i in range(count):
        user = f"u{i % 3}"
        event = make_event(f"e{i}", EventType.PRODUCT_VIEW, user, minutes=i, product_id=f"p{i % 4}")
        out.append(
            RawRecord("interactions", partition, i, RECEIVED_MS, user.encode(),
                      json.dumps(event).encode())
        )  # fmt: skip
    return out


async def test_a_partition_without_a_watermark_takes_only_a_batch_read_from_its_log_start() -> None:
    store, records = MemoryStore(), log(10)
    with pytest.raises(StateLostError) as refused:
        await apply_batch(store, records[4:], CONFIG, read_from=4, log_start=0)
    assert (refused.value.topic, refused.value.partition, refused.value.watermark) == (
        "interactions", 1, None,
    )  # fmt: skip
    assert store.users == {}
    assert store.zsets == {}
    assert store.hashes == {}
    assert await store.partition_watermarks("interactions") == {}
    report = await apply_batch(store, records, CONFIG, read_from=0, log_start=0)
    assert report.applied == 10
    assert await store.partition_watermarks("interactions") == {1: 9}


async def test_a_log_whose_start_was_deleted_starts_at_its_log_start() -> None:
    store, records = MemoryStore(), log(10)
    with pytest.raises(StateLostError):
        await apply_batch(store, records[6:], CONFIG, read_from=6, log_start=5)
    report = await apply_batch(store, records[5:], CONFIG, read_from=5, log_start=5)
    assert report.applied == 5


async def test_a_batch_must_follow_the_watermark_but_may_skip_offsets_without_records() -> None:
    store = MemoryStore()
    # offsets 4 and 5 hold no records (transaction markers, say)
    records = {r.offset: r for r in log(12) if r.offset not in (4, 5)}

    def span(first: int, last: int) -> list[RawRecord]:
        return [records[o] for o in range(first, last + 1) if o in records]

    await apply_batch(store, span(0, 3), CONFIG, read_from=0)
    before = {u: s.copy() for u, s in store.users.items()}
    with pytest.raises(StateLostError) as refused:  # not read from 4: 4 and 5 unknown
        await apply_batch(store, span(6, 11), CONFIG, read_from=6)
    assert refused.value.watermark == 3
    assert store.users == before
    assert (await apply_batch(store, span(6, 7), CONFIG, read_from=4)).applied == 2
    # a redelivery starts at or below the watermark + 1
    assert (await apply_batch(store, span(2, 9), CONFIG, read_from=2)).applied == 2
    assert (await apply_batch(store, span(10, 11), CONFIG, read_from=10)).applied == 2
    assert await store.partition_watermarks("interactions") == {1: 11}


async def test_without_read_from_nothing_is_checked() -> None:
    store, records = MemoryStore(), log(10)
    report = await apply_batch(store, records[7:], CONFIG)
    assert report.applied == 3
    assert await store.partition_watermarks("interactions") == {1: 9}


async def test_the_rule_holds_per_partition_and_for_the_catalog_topic() -> None:
    store = MemoryStore()
    await apply_batch(store, log(3, partition=0), CONFIG, read_from=0)
    with pytest.raises(StateLostError):
        await apply_batch(store, log(5, partition=2)[3:], CONFIG, read_from=3)
    value = json.dumps({"kind": "product", "product_id": "p1", "category": "c1"}).encode()
    catalog = [RawRecord("catalog", 0, 8, RECEIVED_MS, b"p:p1", value)]
    with pytest.raises(StateLostError):
        await apply_catalog_batch(store, catalog, read_from=8, log_start=0)
    report = await apply_catalog_batch(store, catalog, read_from=8, log_start=8)
    assert report.applied == 1
    assert await store.partition_watermarks("catalog") == {0: 8}
