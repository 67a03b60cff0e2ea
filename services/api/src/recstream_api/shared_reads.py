"""A per-process cache of the popularity heads every recommendation reads, with a stated
freshness bound.

Every recommendation reads the top of each popularity shard (16 sorted sets) and the
popularity heads of the user's favourite categories; those answers are the same for
every user. :class:`SharedReads` wraps the store's reader: it answers those requests
from memory when it read them less than ``ttl_seconds`` ago and passes everything else
to the store, still in one round trip per call.

What it costs in freshness, exactly: a change of the popularity heads (overall and per
category) reaches recommendations at most ``ttl_seconds`` later than without the cache.
What a user did and the item-to-item statistics are never cached; the candidates' catalog
entries and categories have a cache of their own that keeps them decoded
(:mod:`recstream.readmodel.items_cache`: caching their raw replies here was measured and
cost as much CPU in the look-ups as it saved). ``ttl_seconds = 0`` turns it off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from recstream.contract.keyspace import Keyspace, Stat
from recstream.store.reads import Read, StatsReader, TopRead

# the sorted sets that are the same for every user (see recstream.contract.keyspace)
SHARED_KINDS = frozenset({Stat.POPULARITY, Stat.CATEGORY_POPULARITY})


def is_shared(key: str) -> bool:
    """Whether ``key`` (``<root>:{<tag>}:<kind>[:<subject>]``) is a popularity head."""
    kind = key.partition("}:")[2].partition(":")[0]
    return kind in SHARED_KINDS


class SharedReads:
    """A :class:`~recstream.store.reads.StatsReader` that caches the popularity heads."""

    def __init__(
        self,
        reader: StatsReader,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._ttl = ttl_seconds
        self._clock = clock
        # one generation of answers, dropped together once the oldest could be stale: a
        # look-up is a plain dict.get; (key, n) -> (member, score) rows, best first
        self._heads: dict[tuple[str, int], list[tuple[str, float]]] = {}
        self._born = clock()

    @property
    def keyspace(self) -> Keyspace:
        return self._reader.keyspace

    async def read(self, requests: Sequence[Read]) -> list[Any]:
        if self._ttl <= 0:
            return await self._reader.read(requests)
        now = self._clock()
        if now - self._born >= self._ttl:
            self._heads = {}
            self._born = now
        heads = self._heads
        answers: list[Any] = [None] * len(requests)
        forwarded: list[int] = []
        for i, request in enumerate(requests):
            if isinstance(request, TopRead) and is_shared(request.key):
                cached = heads.get((request.key, request.n))
                if cached is not None:
                    answers[i] = cached
                    continue
            forwarded.append(i)
        if forwarded:
            got = await self._reader.read([requests[i] for i in forwarded])
            for i, answer in zip(forwarded, got, strict=True):
                answers[i] = answer
                request = requests[i]
                if isinstance(request, TopRead) and is_shared(request.key):
                    heads[(request.key, request.n)] = answer
        return answers
