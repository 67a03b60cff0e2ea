"""Restoring the erasure log into a store: the pure rules, over the memory store and an
in-memory log (the same Protocol as the Kafka reader)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from recstream.apply.batch import RawRecord, apply_batch
from recstream.apply.operations import erase_user
from recstream.contract.erasures import ErasureNotice, ErasureNoticeError, decode_notice
from recstream.model.config import CoreConfig
from recstream.store.memory import MemoryStore
from recstream_consumer.erasures import ErasureSync

from .eventgen import make_event
from .test_ingest import record

TOPIC = "erasures"
CONFIG = CoreConfig()


class MemoryLog:
    """A compacted topic in memory: records at their offsets, holes where compacted."""

    def __init__(self, partitions: int = 1) -> None:
        self.records: dict[int, list[RawRecord]] = {p: [] for p in range(partitions)}
        self.ends: dict[int, int] = dict.fromkeys(range(partitions), 0)
        self.reads = 0

    def append(self, notice: ErasureNotice | bytes, partition: int = 0) -> None:
        key, value = notice.encode() if isinstance(notice, ErasureNotice) else (b"x", notice)
        offset = self.ends[partition]
        self.records[partition].append(RawRecord(TOPIC, partition, offset, 0, key, value))
        self.ends[partition] = offset + 1

    def compact(self, partition: int, below: int) -> None:
        self.records[partition] = [r for r in self.records[partition] if r.offset >= below]

    async def partitions(self, topic: str) -> list[int]:
        return sorted(self.records) if topic == TOPIC else []

    async def log_start(self, topic: str, partition: int) -> int:
        held = self.records[partition]
        return held[0].offset if held else self.ends[partition]

    async def log_end(self, topic: str, partition: int) -> int:
        return self.ends[partition]

    async def read(
        self, topic: str, partition: int, start: int, end: int, limit: int
    ) -> list[RawRecord]:
        self.reads += 1
        return [r for r in self.records[partition] if start <= r.offset < end][:limit]


def notice(user: str, at: float) -> ErasureNotice:
    return ErasureNotice(user, at, "api-key:ops")


async def store_with(users: Sequence[str]) -> MemoryStore:
    store = MemoryStore()
    records = [
        record(i, make_event(f"e-{user}", "product_view", user_id=user), key=user)
        for i, user in enumerate(users)
    ]
    assert (await apply_batch(store, records, CONFIG)).applied == len(users)
    return store


async def test_a_store_that_lost_its_erasures_gets_them_back_once() -> None:
    log, store = MemoryLog(), MemoryStore()
    for user in ("a", "b"):
        log.append(notice(user, 2e9))
    sync = ErasureSync(log, TOPIC, store, CONFIG)

    assert await sync.ensure() == 2
    assert await store.erasures(["a", "b", "c"]) == {"a": 2e9, "b": 2e9}
    assert await store.erasure_log_position() == {0: 2}
    reads = log.reads
    assert await sync.ensure() == 0, "up to date: nothing read"
    assert log.reads == reads

    log.append(notice("c", 2e9))
    assert await sync.ensure() == 1, "only what is new"
    assert await store.erasures(["c"]) == {"c": 2e9}


async def test_a_user_still_in_the_store_is_erased_and_a_known_erasure_left_alone() -> None:
    store = await store_with(["kept", "stale", "done"])
    await erase_user(store, "done", 3e9, CONFIG, requested_by="user:done")
    log = MemoryLog()
    log.append(notice("stale", 3e9))  # the API wrote the log, then failed before Redis
    log.append(notice("done", 3e9))
    restored = await ErasureSync(log, TOPIC, store, CONFIG).ensure()
    assert restored == 1
    assert await store.get_user("stale") is None
    assert await store.get_user("kept") is not None
    assert (await store.erasures(["done"])) == {"done": 3e9}


async def test_the_latest_erasure_of_a_user_wins_and_compaction_holes_are_skipped() -> None:
    log, store = MemoryLog(partitions=2), MemoryStore()
    log.append(notice("a", 1e9), partition=0)
    log.append(notice("a", 5e9), partition=1)
    log.append(notice("b", 1e9), partition=0)
    log.compact(0, below=1)  # a's first erasure compacted away
    assert await ErasureSync(log, TOPIC, store, CONFIG).ensure() == 2
    assert await store.erasures(["a", "b"]) == {"a": 5e9, "b": 1e9}


async def test_an_undecodable_notice_is_counted_and_skipped() -> None:
    log, store = MemoryLog(), MemoryStore()
    log.append(b"{not json")
    log.append(notice("a", 1e9))
    sync = ErasureSync(log, TOPIC, store, CONFIG)
    assert await sync.ensure() == 1
    assert sync.undecodable == 1


async def test_a_recreated_topic_is_read_from_its_start() -> None:
    log, store = MemoryLog(), MemoryStore()
    await store.set_erasure_log_position({0: 40})  # further than the new topic's end
    log.append(notice("a", 1e9))
    assert await ErasureSync(log, TOPIC, store, CONFIG).ensure() == 1


async def test_without_the_topic_nothing_is_restored() -> None:
    store = MemoryStore()
    assert await ErasureSync(MemoryLog(), "other", store, CONFIG).ensure() == 0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (b"u", b"[1]", "not a JSON object"),
        (b"u", b'{"user_id": "u"}', "erased_at is missing"),
        (b"u", b'{"user_id": "u", "erased_at": true}', "erased_at is missing"),
        (b"u", b'{"user_id": "u", "erased_at": -5}', "is not a time"),
        (b"v", b'{"user_id": "u", "erased_at": 5}', "is not the user id"),
        (b"u", b'{"erased_at": 5}', "user_id is missing"),
        (b"u", None, "not JSON"),
    ],
)
def test_a_notice_is_checked(key: bytes, value: bytes | None, message: str) -> None:
    with pytest.raises(ErasureNoticeError, match=message):
        decode_notice(key, value)


def test_a_notice_round_trips() -> None:
    sent = notice("u-1", 1_765_000_000.25)
    assert decode_notice(*sent.encode()) == sent
