"""A per-process cache of the candidates' catalog entries and categories, decoded, with a
stated freshness bound.

The last round trip of a recommendation (:func:`recstream.readmodel.load.load_items`)
reads every candidate's catalog entry and event category: on a real-size catalogue about
a quarter of the request's CPU, spent on the same popular and related items request after
request (the ``MGET``, one ``HMGET`` per statistic shard, decoding each entry's JSON and
building its :class:`~recstream.contract.catalog.CatalogItem`). An :class:`ItemsCache`
keeps what it read, decoded, in one generation that is dropped whole once it is
``ttl_seconds`` old, so a look-up is a plain ``dict`` access.

What it costs in freshness, exactly: a change to an item's catalog entry (its price, stock,
category, a group deal's fill or status, a new or deleted entry) or to its event category
reaches recommendations at most ``ttl_seconds`` later than without the cache (plus the
duration of a request in flight when its generation is replaced). In memory it holds at
most the items read within ``ttl_seconds``. The entries are frozen dataclasses,
shared by the requests of one generation and never changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from recstream.contract.catalog import CatalogItem


class Generation:
    """What one generation holds: decoded catalog entries and event categories per item,
    ``None`` for an item that has none."""

    def __init__(self, born: float) -> None:
        self.born = born
        self.entries: dict[str, CatalogItem | None] = {}
        self.categories: dict[str, str | None] = {}

    def missing(self, items: list[str]) -> list[str]:
        entries = self.entries
        return [i for i in items if i not in entries]

    def add(
        self, items: list[str], catalog: dict[str, CatalogItem], categories: dict[str, str]
    ) -> None:
        """Remember what a read of ``items`` found, and that the others have nothing."""
        self.entries.update({i: catalog.get(i) for i in items})
        self.categories.update({i: categories.get(i) for i in items})


class ItemsCache:
    """One :class:`Generation` at a time, replaced by an empty one once it is
    ``ttl_seconds`` old.

    A request keeps the generation it started with until it has its answers, so a
    generation replaced while its read is in flight (by a concurrent request) still
    answers it whole; what it read then goes to the old generation and is dropped with it.
    """

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._generation = Generation(clock())

    def current(self) -> Generation:
        """The generation to answer from, a new one when the last is ``ttl_seconds`` old."""
        now = self._clock()
        if now - self._generation.born >= self.ttl_seconds:
            self._generation = Generation(now)
        return self._generation
