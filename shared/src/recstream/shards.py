"""Turning the fold's statistic contributions into per-shard writes (pure).

Each shard write is guarded by that shard's watermark for the partition: a
contribution from offset ``o`` is written only when ``o`` is above the shard's
watermark, and the write advances it. Contributions of one batch to the same
statistic are summed first, so a batch costs one command per touched key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

from recstream.catalog import CatalogRecord, catalog_item_to_dict, to_catalog_item
from recstream.config import CoreConfig
from recstream.keyspace import Keyspace
from recstream.patterns import StatDelta

DAY = 86_400

# Z: ZINCRBY key member amount     G: ZADD key GT score member (keep the latest time)
# B: keep the top ``a`` members of a sorted set, then EXPIRE it after ``b`` seconds (when > 0)
# S: SET key value [EX seconds when > 0]   H: HSET key field value
# D: DEL key                               R: ZREM key member
OpCode = Literal["Z", "G", "B", "S", "H", "D", "R"]


@dataclass(frozen=True, slots=True)
class ShardOp:
    code: OpCode
    key: str
    a: str | float | int = ""
    b: str | float | int = ""


@dataclass(frozen=True, slots=True)
class ShardWrite:
    shard: int
    expected: int  # the shard's watermark for the partition as read; -1 when absent
    ops: tuple[ShardOp, ...]


def plan_shard_writes(
    deltas: Sequence[StatDelta],
    marks: Mapping[int, int],
    keyspace: Keyspace,
    config: CoreConfig,
) -> list[ShardWrite]:
    """Group ``deltas`` by shard, dropping those at or below each shard's watermark."""
    increments: dict[tuple[int, str, str], float] = {}
    latest: dict[tuple[int, str, str], float] = {}
    payloads: dict[tuple[int, str], tuple[int, str]] = {}
    fields: dict[tuple[int, str, str], str] = {}
    bounds: dict[tuple[int, str], tuple[int, int]] = {}  # (keep, ttl seconds or 0)
    stat_ttl = int(config.statistic_ttl_days * DAY)
    session_ttl = int(config.session_ttl_days * DAY)
    located: dict[tuple[str, str], tuple[int, str]] = {}
    for d in deltas:
        subject = d.member if d.kind == "pop" else d.key
        place = located.get((d.kind, subject))
        if place is None:
            place = located[(d.kind, subject)] = keyspace.locate(d.kind, subject)
        shard, key = place
        if d.offset <= marks.get(shard, -1):
            continue
        if d.kind in ("tr1", "tr2", "pop", "popc"):
            increments[(shard, key, d.member)] = (
                increments.get((shard, key, d.member), 0.0) + d.value
            )
            if d.kind == "pop":
                bounds[(shard, key)] = (config.popularity_top_k, 0)
            elif d.kind == "popc":
                bounds[(shard, key)] = (config.popularity_top_k, stat_ttl)
            else:
                bounds[(shard, key)] = (config.transitions_top_k, stat_ttl)
        elif d.kind == "isess":
            latest[(shard, key, d.member)] = max(latest.get((shard, key, d.member), 0.0), d.value)
            bounds[(shard, key)] = (config.sessions_per_item, session_ttl)
        elif d.kind == "sitems":
            if d.offset > payloads.get((shard, key), (-1, ""))[0]:
                payloads[(shard, key)] = (d.offset, d.member)
        else:  # icat
            fields[(shard, key, d.key)] = d.member
    ops: dict[int, list[ShardOp]] = {}
    for (shard, key, member), amount in increments.items():
        ops.setdefault(shard, []).append(ShardOp("Z", key, member, amount))
    for (shard, key, member), at in latest.items():
        ops.setdefault(shard, []).append(ShardOp("G", key, member, at))
    for (shard, key), (_, payload) in payloads.items():
        ops.setdefault(shard, []).append(ShardOp("S", key, payload, session_ttl))
    for (shard, key, field), value in fields.items():
        ops.setdefault(shard, []).append(ShardOp("H", key, field, value))
    for (shard, key), (keep, seconds) in bounds.items():
        ops.setdefault(shard, []).append(ShardOp("B", key, keep, seconds))
    return [
        ShardWrite(shard, marks.get(shard, -1), tuple(shard_ops))
        for shard, shard_ops in sorted(ops.items())
    ]


def plan_catalog_writes(
    records: Sequence[tuple[int, CatalogRecord]],
    marks: Mapping[int, int],
    keyspace: Keyspace,
) -> list[ShardWrite]:
    """Upserts and deletes of catalog entries, as (offset, record) in log order."""
    ops: dict[int, list[ShardOp]] = {}
    for offset, record in records:
        shard = keyspace.shard_of(record.item)
        if offset <= marks.get(shard, -1):
            continue
        key = keyspace.catalog_item(record.item)
        shard_ops = ops.setdefault(shard, [])
        if record.op == "delete":
            shard_ops.append(ShardOp("D", key))
            continue
        entry = orjson.dumps(catalog_item_to_dict(to_catalog_item(record))).decode()
        shard_ops.append(ShardOp("S", key, entry, 0))
        category = getattr(record, "category", None)
        if category is not None:
            shard_ops.append(
                ShardOp("H", keyspace.stat("icat", record.item), record.item, category)
            )
    return [
        ShardWrite(shard, marks.get(shard, -1), tuple(shard_ops))
        for shard, shard_ops in sorted(ops.items())
    ]
