from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from recstream.contract.keyspace import Keyspace, Stat
from recstream.store.reads import FieldsRead, Read, StringsRead, TopRead, UserRead
from recstream_api.shared_reads import SharedReads

KEYS = Keyspace(prefix="t", shards=4)


class CountingReader:
    """Answers reads from dictionaries (as the stores do) and records every call."""

    def __init__(self) -> None:
        self.zsets: dict[str, list[tuple[str, float]]] = {}
        self.strings: dict[str, str] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        self.calls: list[list[Read]] = []

    @property
    def keyspace(self) -> Keyspace:
        return KEYS

    async def read(self, requests: Sequence[Read]) -> list[Any]:
        self.calls.append(list(requests))
        answers: list[Any] = []
        for request in requests:
            if isinstance(request, TopRead):
                answers.append(self.zsets.get(request.key, [])[: request.n])
            elif isinstance(request, StringsRead):
                answers.append([self.strings.get(k) for k in request.keys])
            elif isinstance(request, FieldsRead):
                row = self.hashes.get(request.key, {})
                answers.append([row.get(f) for f in request.fields])
            elif isinstance(request, UserRead):
                answers.append(f"state of {request.user_id}")
            else:
                answers.append(self.strings.get(request.key))
        return answers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


POP = KEYS.shard_stat(Stat.POPULARITY, 1)
POPC = KEYS.stat(Stat.CATEGORY_POPULARITY, "shoes")
ICAT = KEYS.shard_stat(Stat.ITEM_CATEGORY, 2)
TRANSITIONS = KEYS.stat(Stat.TRANSITIONS, "p:a")
SESSION = KEYS.stat(Stat.SESSION_ITEMS, "u1|s1")
CAT_A, CAT_B = KEYS.catalog_item("p:a"), KEYS.catalog_item("p:b")


def requests() -> list[Read]:
    return [
        UserRead("u1"),
        TopRead(POP, 2),
        TopRead(POPC, 2),
        TopRead(TRANSITIONS, 2),
        StringsRead((CAT_A, CAT_B)),
        StringsRead((SESSION,)),
        FieldsRead(ICAT, ("p:a", "p:b")),
    ]


def filled() -> CountingReader:
    reader = CountingReader()
    reader.zsets = {POP: [("p:a", 3.0)], POPC: [("p:b", 2.0)], TRANSITIONS: [("p:c", 1.0)]}
    reader.strings = {CAT_A: '{"a": 1}', SESSION: '["p:a"]'}
    reader.hashes = {ICAT: {"p:a": "shoes"}}
    return reader


async def test_cached_answers_equal_the_stores_and_only_popularity_heads_are_cached() -> None:
    reader, clock = filled(), Clock()
    shared = SharedReads(reader, ttl_seconds=2.0, clock=clock)
    first = await shared.read(requests())
    assert first == await reader.read(requests())
    reader.calls.clear()
    again = await shared.read(requests())
    assert again == first
    # one round trip still, with everything but the heads
    assert reader.calls == [[r for r in requests() if r not in (TopRead(POP, 2), TopRead(POPC, 2))]]


async def test_a_change_is_seen_once_the_freshness_bound_has_passed() -> None:
    reader, clock = filled(), Clock()
    shared = SharedReads(reader, ttl_seconds=2.0, clock=clock)
    await shared.read(requests())
    reader.zsets[POP] = [("p:z", 9.0)]
    reader.zsets[POPC] = [("p:y", 8.0)]
    reader.zsets[TRANSITIONS] = [("p:d", 5.0)]  # never cached: seen at once
    reader.strings[CAT_B] = '{"b": 2}'  # never cached
    clock.now += 1.9
    stale = await shared.read(requests())
    assert stale[1] == [("p:a", 3.0)]
    assert stale[2] == [("p:b", 2.0)]
    assert stale[3] == [("p:d", 5.0)]
    assert stale[4] == ['{"a": 1}', '{"b": 2}']
    clock.now += 0.2
    fresh = await shared.read(requests())
    assert fresh == await reader.read(requests())
    assert fresh[1] == [("p:z", 9.0)]


async def test_a_zero_bound_turns_the_cache_off() -> None:
    reader, clock = filled(), Clock()
    off = SharedReads(reader, ttl_seconds=0, clock=clock)
    await off.read(requests())
    await off.read(requests())
    assert reader.calls == [requests(), requests()]
