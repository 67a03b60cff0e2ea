"""The per-process cache of the candidates' catalog entries and categories: the same answers
as the store's, fewer reads, and exactly its stated freshness bound."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from recstream.contract.catalog import CatalogItem
from recstream.contract.keyspace import Keyspace, Stat
from recstream.readmodel.items_cache import ItemsCache
from recstream.readmodel.load import load_items
from recstream.store.reads import FieldsRead, Read, StringsRead

from .test_shared_reads import Clock

KEYS = Keyspace(prefix="t", shards=4)
ITEMS = [f"p:{n}" for n in range(12)]


class ItemsReader:
    """Catalog entries and item categories from dictionaries, as the stores keep them;
    records which items each call asked for."""

    def __init__(self, entries: dict[str, CatalogItem], categories: dict[str, str]) -> None:
        self.strings = {
            KEYS.catalog_item(i): orjson.dumps(
                {"item": e.item, "kind": e.kind, "category": e.category, "price": e.price}
            ).decode()
            for i, e in entries.items()
        }
        self.hashes: dict[str, dict[str, str]] = {}
        for item, category in categories.items():
            shard = KEYS.shard_stat(Stat.ITEM_CATEGORY, KEYS.shard_of(item))
            self.hashes.setdefault(shard, {})[item] = category
        self.item_of = {KEYS.catalog_item(i): i for i in ITEMS}
        self.asked: list[list[str]] = []

    @property
    def keyspace(self) -> Keyspace:
        return KEYS

    async def read(self, requests: Sequence[Read]) -> list[Any]:
        answers: list[Any] = []
        for request in requests:
            if isinstance(request, StringsRead):
                self.asked.append([self.item_of[k] for k in request.keys])
                answers.append([self.strings.get(k) for k in request.keys])
            else:
                assert isinstance(request, FieldsRead)
                row = self.hashes.get(request.key, {})
                answers.append([row.get(f) for f in request.fields])
        return answers


def catalog(prices: dict[str, float]) -> dict[str, CatalogItem]:
    return {i: CatalogItem(i, "product", f"c{len(i)}", p) for i, p in prices.items()}


subsets = st.lists(st.sampled_from(ITEMS), unique=True).map(sorted)


@given(
    entries=st.dictionaries(st.sampled_from(ITEMS), st.floats(1, 100)),
    categories=st.dictionaries(st.sampled_from(ITEMS), st.sampled_from(["a", "b"])),
    requests=st.lists(subsets, min_size=1, max_size=5),
)
async def test_the_cache_answers_what_the_store_answers(
    entries: dict[str, float], categories: dict[str, str], requests: list[list[str]]
) -> None:
    reader = ItemsReader(catalog(entries), categories)
    cache = ItemsCache(2.0, Clock())
    for items in requests:
        assert await load_items(reader, items, cache) == await load_items(reader, items)


async def test_only_the_items_it_does_not_hold_are_read() -> None:
    reader = ItemsReader(catalog({"p:1": 5.0}), {"p:2": "a"})
    cache = ItemsCache(2.0, Clock())
    await load_items(reader, ["p:1", "p:2", "p:3"], cache)
    await load_items(reader, ["p:1", "p:2", "p:3", "p:4"], cache)
    await load_items(reader, ["p:3", "p:4"], cache)
    # an item without an entry or a category is remembered as such, not read again
    assert reader.asked == [["p:1", "p:2", "p:3"], ["p:4"]]


async def test_a_change_reaches_the_answers_within_the_bound_and_not_before() -> None:
    clock = Clock()
    reader = ItemsReader(catalog({"p:1": 5.0}), {})
    cache = ItemsCache(2.0, clock)
    first, _ = await load_items(reader, ["p:1", "p:2"], cache)
    changed = ItemsReader(catalog({"p:1": 7.0, "p:2": 3.0}), {"p:2": "b"})
    clock.now += 1.99
    assert await load_items(changed, ["p:1", "p:2"], cache) == (first, {})
    clock.now += 0.01
    assert await load_items(changed, ["p:1", "p:2"], cache) == await load_items(
        changed, ["p:1", "p:2"]
    )


async def test_zero_seconds_reads_every_time() -> None:
    reader = ItemsReader(catalog({"p:1": 5.0}), {})
    cache = ItemsCache(0.0, Clock())
    for _ in range(3):
        await load_items(reader, ["p:1"], cache)
    assert reader.asked == [["p:1"]] * 3
    assert cache.current().entries == {}


async def test_a_generation_replaced_while_a_read_is_in_flight_still_answers_it() -> None:
    clock = Clock()
    cache = ItemsCache(2.0, clock)
    reader = ItemsReader(catalog({"p:1": 5.0, "p:2": 6.0}), {"p:1": "a"})
    await load_items(reader, ["p:1"], cache)

    class Concurrent(ItemsReader):
        async def read(self, requests: Sequence[Read]) -> list[Any]:
            clock.now += 5.0
            cache.current()  # another request replaces the generation meanwhile
            return await super().read(requests)

    racing = Concurrent(catalog({"p:1": 5.0, "p:2": 6.0}), {"p:1": "a"})
    assert await load_items(racing, ["p:1", "p:2"], cache) == await load_items(
        reader, ["p:1", "p:2"]
    )
    assert racing.asked == [["p:2"]], "p:1 came from the generation the request started with"
