"""The read vocabulary of the store port: what a store answers in one round trip.

The read model (:mod:`recstream.readmodel.load`) decides which keys to read, once
for every store; a store only answers a list of :data:`Read` requests, in order,
in one round trip (a Redis pipeline, or dictionary look-ups in memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from recstream.contract.keyspace import Keyspace


@dataclass(frozen=True, slots=True)
class UserRead:
    user_id: str


@dataclass(frozen=True, slots=True)
class TopRead:
    """The ``n`` highest-scored members of a sorted set, best first, as (member, score)."""

    key: str
    n: int


@dataclass(frozen=True, slots=True)
class StringRead:
    key: str


@dataclass(frozen=True, slots=True)
class StringsRead:
    """Many string keys in one request, answered as their values in key order (None where
    absent). A store may fetch them in one command per Redis Cluster hash slot group (one
    ``MGET`` per statistic shard), so the keys may span shards."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FieldsRead:
    key: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HashRead:
    """Every field of a hash, as a dict (empty when the key is absent)."""

    key: str


Read = UserRead | TopRead | StringRead | StringsRead | FieldsRead | HashRead


class StatsReader(Protocol):
    @property
    def keyspace(self) -> Keyspace: ...

    async def read(self, requests: Sequence[Read]) -> list[Any]:
        """Answer every request, in order, in one round trip."""
        ...
