"""Turning the fold's statistic contributions into per-shard writes (pure).

Each shard write is guarded by that shard's watermark for the partition: a
contribution from offset ``o`` is written only when ``o`` is above the shard's
watermark, and the write advances it. Contributions of one batch to the same
statistic are summed first, so a batch costs one command per touched key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

import orjson

from recstream.contract.catalog import CatalogRecord, catalog_item_to_dict, to_catalog_item
from recstream.contract.keyspace import Keyspace, Stat
from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.model.decay import log_add
from recstream.model.statistics import StatDelta

OpCode = Literal["L", "M", "G", "B", "S", "H", "D", "R", "I"]


class Op:
    """The shard operations, by what they do; the values are their one-letter wire codes,
    which ``store/lua/apply_op.lua`` (for the commit and the erasure scripts) and the memory
    store both execute; one table of cases, ``tests/shard_op_cases.py``, checks the two."""

    # the forward-decayed statistics are log2 scores (see recstream.model.decay):
    ADD: Final = "L"  # member a's score becomes log_add(score, b), or b when absent
    # member a's score becomes log_subtract(score, b); the member is removed when that
    # leaves (almost) nothing or it was absent
    SUBTRACT: Final = "M"
    KEEP_LATEST: Final = "G"  # ZADD key GT b(time) a(member): keep the latest time
    # keep the top a members of a sorted set (of tied scores, the greatest members), then
    # EXPIRE b seconds when b > 0; b must be a number ("" fails the script)
    BOUND: Final = "B"
    SET: Final = "S"  # SET key a(value) [EX b(seconds) when > 0]
    SET_FIELD: Final = "H"  # HSET key a(field) b(value)
    DELETE: Final = "D"  # DEL key
    REMOVE: Final = "R"  # ZREM key a(member)
    INCREMENT: Final = "I"  # HINCRBY key a(field) b(integer)


class ShardOp(NamedTuple):
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
    stat_ttl = int(config.statistic_ttl_days * DAY)
    session_ttl = int(config.session_ttl_days * DAY)
    bound_of = {  # (keep, ttl seconds or 0) of each bounded statistic
        Stat.POPULARITY: (config.popularity_top_k, 0),
        Stat.CATEGORY_POPULARITY: (config.popularity_top_k, stat_ttl),
        Stat.TRANSITIONS: (config.transitions_top_k, stat_ttl),
        Stat.PAIR_TRANSITIONS: (config.transitions_top_k, stat_ttl),
        Stat.COVISITATION: (config.covisit_top_k, stat_ttl),
        Stat.CO_ENGAGEMENT: (config.co_engagement_top_k, stat_ttl),
        Stat.ITEM_SESSIONS: (config.sessions_per_item, session_ttl),
    }
    # Per key, in first-seen order: its shard, its statistic kind, and what the batch adds.
    located: dict[tuple[str, str], tuple[int, str]] = {}
    kinds: dict[str, tuple[int, str]] = {}
    sums: dict[str, dict[str, float]] = {}  # tr1, tr2, cov, ucf, pop, popc: log2 increments
    latest: dict[str, dict[str, float]] = {}  # isess: member -> latest time
    payloads: dict[str, tuple[int, str]] = {}  # sitems: (offset, value) of the latest
    fields: dict[str, dict[str, str]] = {}  # icat, outv: field -> value
    counts: dict[str, dict[str, int]] = {}  # out: field -> count
    # The usual batch lies wholly above every watermark: no per-delta check then.
    floor = max(marks.values(), default=-1)
    for offset, kind, subject, member, value in deltas:
        about = member if kind == Stat.POPULARITY else subject  # popularity is sharded by item
        place = located.get((kind, about))
        if place is None:
            place = located[(kind, about)] = keyspace.locate(kind, about)
        shard, key = place
        if offset <= floor and offset <= marks.get(shard, -1):
            continue
        if key not in kinds:
            kinds[key] = (shard, kind)
        if kind == Stat.ITEM_SESSIONS:
            times = latest.setdefault(key, {})
            times[member] = max(times.get(member, value), value)
        elif kind == Stat.SESSION_ITEMS:
            if offset > payloads.get(key, (-1, ""))[0]:
                payloads[key] = (offset, member)
        elif kind == Stat.ITEM_CATEGORY:
            fields.setdefault(key, {})[subject] = member
        elif kind == Stat.OUTCOMES:
            tally = counts.setdefault(key, {})
            tally[member] = tally.get(member, 0) + int(value)
        elif kind == Stat.OUTCOME_VARIANTS:
            fields.setdefault(key, {})[member] = "1"
        else:
            amounts = sums.setdefault(key, {})
            summed = amounts.get(member)
            amounts[member] = value if summed is None else log_add(summed, value)
    ops: dict[int, list[ShardOp]] = {}
    for key, amounts in sums.items():
        shard_ops = ops.setdefault(kinds[key][0], [])
        shard_ops += [ShardOp(Op.ADD, key, member, amount) for member, amount in amounts.items()]
    for key, times in latest.items():
        shard_ops = ops.setdefault(kinds[key][0], [])
        shard_ops += [ShardOp(Op.KEEP_LATEST, key, member, at) for member, at in times.items()]
    for key, (_, payload) in payloads.items():
        ops.setdefault(kinds[key][0], []).append(ShardOp(Op.SET, key, payload, session_ttl))
    for key, values in fields.items():
        shard_ops = ops.setdefault(kinds[key][0], [])
        shard_ops += [ShardOp(Op.SET_FIELD, key, field, value) for field, value in values.items()]
    for key, tally in counts.items():
        shard_ops = ops.setdefault(kinds[key][0], [])
        shard_ops += [ShardOp(Op.INCREMENT, key, field, n) for field, n in tally.items()]
    for key, (shard, stat) in kinds.items():  # trims last: after this batch's increments
        bound = bound_of.get(stat)
        if bound is not None:
            ops[shard].append(ShardOp(Op.BOUND, key, bound[0], bound[1]))
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
            shard_ops.append(ShardOp(Op.DELETE, key))
            continue
        entry = orjson.dumps(catalog_item_to_dict(to_catalog_item(record))).decode()
        shard_ops.append(ShardOp(Op.SET, key, entry, 0))
        category = getattr(record, "category", None)
        if category is not None:
            shard_ops.append(
                ShardOp(
                    Op.SET_FIELD,
                    keyspace.stat(Stat.ITEM_CATEGORY, record.item),
                    record.item,
                    category,
                )
            )
    return [
        ShardWrite(shard, marks.get(shard, -1), tuple(shard_ops))
        for shard, shard_ops in sorted(ops.items())
    ]
