"""A per-process cache of the reads every request shares, with a stated freshness bound.

Every recommendation reads the top of each popularity shard, the popularity heads of the
user's favourite categories, and the catalog entries and event categories of a few
hundred candidate items; those answers are the same for every user, and most of them
recur from request to request. :class:`SharedReads`
wraps the store's reader: it answers those requests from memory when it read them less
than ``ttl_seconds`` ago and passes everything else (the user's state, the statistics
of the user's own items and session) to the store, still in one round trip per call.

What it costs in freshness, exactly: a catalog change (price, stock, a group deal's
size), an item's event category and the popularity heads (overall and per category)
reach recommendations at most ``ttl_seconds`` later than without the cache. What a
user did, and the item-to-item statistics of the user's items, are never cached.
``ttl_seconds = 0`` turns the cache off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from cachetools import TTLCache

from recstream.contract.keyspace import Keyspace, Stat
from recstream.store.reads import FieldsRead, Read, StatsReader, StringsRead, TopRead

_MISSING = object()
# the statistics and entries that are the same for every user (see recstream.contract.keyspace)
SHARED_KINDS = frozenset({Stat.POPULARITY, Stat.CATEGORY_POPULARITY, Stat.ITEM_CATEGORY, "catalog"})


def _shared(key: str) -> bool:
    """Whether ``key`` (``<root>:{<tag>}:<kind>[:<subject>]``) holds a shared kind."""
    kind = key.partition("}:")[2].partition(":")[0]
    return kind in SHARED_KINDS


class SharedReads:
    """A :class:`~recstream.store.reads.StatsReader` that caches the shared answers."""

    def __init__(
        self,
        reader: StatsReader,
        ttl_seconds: float,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._keys = reader.keyspace
        self._enabled = ttl_seconds > 0
        self._cache: TTLCache[Hashable, Any] = TTLCache(
            max_entries, max(ttl_seconds, 1e-9), timer=clock
        )
        self.hits = 0
        self.misses = 0

    @property
    def keyspace(self) -> Keyspace:
        return self._keys

    async def read(self, requests: Sequence[Read]) -> list[Any]:
        if not self._enabled:
            return await self._reader.read(requests)
        plans: list[_Plan] = [self._plan(request) for request in requests]
        forwarded = [read for plan in plans for read in plan.reads]
        answers = await self._reader.read(forwarded) if forwarded else []
        results: list[Any] = []
        at = 0
        for plan in plans:
            got = answers[at : at + len(plan.reads)]
            at += len(plan.reads)
            results.append(plan.finish(got, self._cache))
        return results

    def _plan(self, request: Read) -> _Plan:
        cache = self._cache
        if isinstance(request, TopRead) and _shared(request.key):
            ident = ("top", request.key, request.n)
            cached = cache.get(ident, _MISSING)
            self._count(cached is not _MISSING, 1)
            if cached is not _MISSING:
                return _Plan((), lambda _got, _cache: cached)
            return _Plan((request,), lambda got, cache: _store(cache, ident, got[0]))
        if isinstance(request, StringsRead) and any(_shared(k) for k in request.keys):
            return self._plan_strings(request)
        if isinstance(request, FieldsRead) and _shared(request.key):
            return self._plan_fields(request)
        return _Plan((request,), lambda got, _cache: got[0])

    def _plan_strings(self, request: StringsRead) -> _Plan:
        values = [self._cache.get(("s", key), _MISSING) for key in request.keys]
        missing = [i for i, v in enumerate(values) if v is _MISSING]
        self._count(True, len(values) - len(missing))
        self._count(False, len(missing))
        if not missing:
            return _Plan((), lambda _got, _cache: values)
        read = StringsRead(tuple(request.keys[i] for i in missing))

        def finish(got: list[Any], cache: TTLCache[Hashable, Any]) -> list[Any]:
            for i, value in zip(missing, got[0], strict=True):
                values[i] = value
                if _shared(request.keys[i]):
                    cache[("s", request.keys[i])] = value
            return values

        return _Plan((read,), finish)

    def _plan_fields(self, request: FieldsRead) -> _Plan:
        key = request.key
        values = [self._cache.get(("f", key, field), _MISSING) for field in request.fields]
        missing = [i for i, v in enumerate(values) if v is _MISSING]
        self._count(True, len(values) - len(missing))
        self._count(False, len(missing))
        if not missing:
            return _Plan((), lambda _got, _cache: values)
        read = FieldsRead(key, tuple(request.fields[i] for i in missing))

        def finish(got: list[Any], cache: TTLCache[Hashable, Any]) -> list[Any]:
            for i, value in zip(missing, got[0], strict=True):
                values[i] = value
                cache[("f", key, request.fields[i])] = value
            return values

        return _Plan((read,), finish)

    def _count(self, hit: bool, n: int) -> None:
        if hit:
            self.hits += n
        else:
            self.misses += n


def _store(cache: TTLCache[Hashable, Any], ident: Hashable, value: Any) -> Any:
    cache[ident] = value
    return value


class _Plan:
    """How one request is answered: the reads forwarded to the store, then ``finish``."""

    __slots__ = ("finish", "reads")

    def __init__(
        self,
        reads: tuple[Read, ...],
        finish: Callable[[list[Any], TTLCache[Hashable, Any]], Any],
    ) -> None:
        self.reads = reads
        self.finish = finish
