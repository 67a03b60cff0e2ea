"""One table of cases for the shard operations, run against both of their implementations.

The ops of :class:`recstream.plan.shards.Op` are executed twice: by the Lua function
``apply_op`` (``shared/src/recstream/store/lua/apply_op.lua``) on Redis and by
``MemoryStore._apply`` in memory. Each case gives the keyspace before, the ops of one
shard write and the keyspace after; ``tests/unit/test_shard_ops.py`` runs the table on
the memory store and ``tests/integration/test_shard_ops.py`` on a real Redis, both
through ``commit_batch``, so the two implementations are held to one table.

Keys are short names here (``z``, ``h``, ``s``); a runner puts each under its own
keyspace prefix (:func:`key_of`), in statistic shard 0. TTLs are checked on Redis
only: the memory store does not model expiry. Ops on a key of the wrong type (a
``ZADD`` on a string) are out of scope: Redis refuses them mid-script, and no plan
makes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recstream.contract.keyspace import Keyspace
from recstream.model.decay import log_add, log_subtract
from recstream.plan.shards import Op, ShardOp, ShardWrite
from recstream.store.memory import MemoryStore
from recstream.store.port import BatchCommit

TOPIC = "ops"
PARTITION = 0
SHARD = 0
TTL = 7_776_000  # 90 days, the statistics' TTL
SESSION_TTL = 2_592_000  # 30 days


@dataclass(frozen=True, slots=True)
class Keys:
    """A keyspace by short key name. ``ttls``: key -> seconds to live (absent: none)."""

    zsets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    hashes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    strings: Mapping[str, str] = field(default_factory=dict)
    ttls: Mapping[str, int] = field(default_factory=dict)

    def typed(self) -> dict[str, tuple[str, Any]]:
        """name -> (Redis type, value), the form both runners compare."""
        typed: dict[str, tuple[str, Any]] = {}
        for kind, values in (("zset", self.zsets), ("hash", self.hashes)):
            typed.update({name: (kind, dict(v)) for name, v in values.items()})
        typed.update({name: ("string", v) for name, v in self.strings.items()})
        return typed


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    before: Keys
    ops: tuple[ShardOp, ...]  # keys are short names
    after: Keys

    def __str__(self) -> str:
        return self.name


def op(code: Any, key: str, a: str | float | int = "", b: str | float | int = "") -> ShardOp:
    return ShardOp(code, key, a, b)


def case(name: str, before: Keys, ops: list[ShardOp], after: Keys) -> Case:
    return Case(name, before, tuple(ops), after)


L, M, G, B, S, H, D, R, INC = (
    Op.ADD,
    Op.SUBTRACT,
    Op.KEEP_LATEST,
    Op.BOUND,
    Op.SET,
    Op.SET_FIELD,
    Op.DELETE,
    Op.REMOVE,
    Op.INCREMENT,
)
EMPTY = Keys()

CASES: tuple[Case, ...] = (
    # --- ADD (log2 scores: 2 ** score grows by 2 ** b) ----------------------------------
    case(
        "add a member of a missing key",
        EMPTY,
        [op(L, "z", "a", 1.5)],
        Keys(zsets={"z": {"a": 1.5}}),
    ),
    case(
        "add a missing member of a key",
        Keys(zsets={"z": {"b": 2.0}}),
        [op(L, "z", "a", -0.25)],
        Keys(zsets={"z": {"a": -0.25, "b": 2.0}}),
    ),
    case(
        "add equal scores doubles the sum: one more in log2",
        Keys(zsets={"z": {"a": 3.0, "b": 2.0}}),
        [op(L, "z", "a", 3.0)],
        Keys(zsets={"z": {"a": 4.0, "b": 2.0}}),
    ),
    case(
        "add in either order, in doubles",
        Keys(zsets={"z": {"a": 0.1, "b": 7.25}}),
        [op(L, "z", "a", 7.25), op(L, "z", "b", 0.1)],
        Keys(zsets={"z": {"a": log_add(0.1, 7.25), "b": log_add(7.25, 0.1)}}),
    ),
    case(
        "add a far smaller score leaves the sum",
        Keys(zsets={"z": {"a": 900.0}}),
        [op(L, "z", "a", -900.0)],
        Keys(zsets={"z": {"a": 900.0}}),
    ),
    case(
        "add scores of events a century apart (no overflow in log space)",
        EMPTY,
        [op(L, "z", "a", 1.2345678901234567e4), op(L, "z", "a", 12_345.0), op(L, "z", "b", 5e-324)],
        Keys(zsets={"z": {"a": log_add(1.2345678901234567e4, 12_345.0), "b": 5e-324}}),
    ),
    case(
        "a number as member is its text",
        EMPTY,
        [op(L, "z", 7, 1), op(L, "z", "7", 1)],
        Keys(zsets={"z": {"7": 2.0}}),
    ),
    case(
        "a run of adds to one key, a member twice: in order, as one by one",
        Keys(zsets={"z": {"a": 0.5, "c": 9.0}}),
        [op(L, "z", "a", 0.5), op(L, "z", "b", 2.0), op(L, "z", "a", 1.5), op(L, "y", "a", 1.0)],
        Keys(zsets={"z": {"a": 2.5, "b": 2.0, "c": 9.0}, "y": {"a": 1.0}}),
    ),
    case(
        "add keeps the key's TTL",
        Keys(zsets={"z": {"a": 1.0}}, ttls={"z": 500}),
        [op(L, "z", "a", 1.0)],
        Keys(zsets={"z": {"a": 2.0}}, ttls={"z": 500}),
    ),
    # --- SUBTRACT (log2 scores: 2 ** score shrinks by 2 ** b) ---------------------------
    case(
        "subtract half of a sum: one less in log2",
        Keys(zsets={"z": {"a": 5.0, "b": 1.0}}, ttls={"z": 500}),
        [op(M, "z", "a", 4.0)],
        Keys(zsets={"z": {"a": 4.0, "b": 1.0}}, ttls={"z": 500}),
    ),
    case(
        "subtract a small part",
        Keys(zsets={"z": {"a": 10.0}}),
        [op(M, "z", "a", 2.5)],
        Keys(zsets={"z": {"a": log_subtract(10.0, 2.5)}}),
    ),
    case(
        "subtract all of a sum removes the member",
        Keys(zsets={"z": {"a": 3.0, "b": 1.0}}),
        [op(M, "z", "a", 3.0)],
        Keys(zsets={"z": {"b": 1.0}}),
    ),
    case(
        "subtract more than the sum removes the member",
        Keys(zsets={"z": {"a": 3.0, "b": 1.0}}),
        [op(M, "z", "a", 3.5)],
        Keys(zsets={"z": {"b": 1.0}}),
    ),
    case(
        "subtract all but rounding removes the member",
        Keys(zsets={"z": {"a": 3.0}}),
        [op(M, "z", "a", 3.0 - 1e-12)],
        EMPTY,
    ),
    case(
        "subtract from a missing member or key does nothing",
        Keys(zsets={"z": {"a": 3.0}}),
        [op(M, "z", "b", 1.0), op(M, "y", "a", 1.0)],
        Keys(zsets={"z": {"a": 3.0}}),
    ),
    # --- KEEP_LATEST (ZADD key GT b a) --------------------------------------------------
    case(
        "keep-latest of a missing member adds it",
        Keys(zsets={"z": {"s0": 10.0}}),
        [op(G, "z", "s1", 1_772_900_000.5)],
        Keys(zsets={"z": {"s0": 10.0, "s1": 1_772_900_000.5}}),
    ),
    case(
        "keep-latest of a missing key creates it",
        EMPTY,
        [op(G, "z", "s1", 100)],
        Keys(zsets={"z": {"s1": 100.0}}),
    ),
    case(
        "keep-latest with a later time raises it",
        Keys(zsets={"z": {"s1": 100.0}}),
        [op(G, "z", "s1", 200.25)],
        Keys(zsets={"z": {"s1": 200.25}}),
    ),
    case(
        "keep-latest with an earlier time keeps the stored one",
        Keys(zsets={"z": {"s1": 100.0}}),
        [op(G, "z", "s1", 50.0)],
        Keys(zsets={"z": {"s1": 100.0}}),
    ),
    case(
        "keep-latest with the same time changes nothing",
        Keys(zsets={"z": {"s1": 100.0}}),
        [op(G, "z", "s1", 100.0)],
        Keys(zsets={"z": {"s1": 100.0}}),
    ),
    # --- BOUND (keep the top a members, then EXPIRE b when b > 0) -----------------------
    case(
        "bound with fewer members keeps them all",
        Keys(zsets={"z": {"a": 1.0, "b": 2.0}}),
        [op(B, "z", 3, 0)],
        Keys(zsets={"z": {"a": 1.0, "b": 2.0}}),
    ),
    case(
        "bound with as many members keeps them all",
        Keys(zsets={"z": {"a": 1.0, "b": 2.0, "c": 3.0}}),
        [op(B, "z", 3, 0)],
        Keys(zsets={"z": {"a": 1.0, "b": 2.0, "c": 3.0}}),
    ),
    case(
        "bound with more members drops the lowest scores",
        Keys(zsets={"z": {"a": 1.0, "b": 5.0, "c": 3.0, "d": 2.0, "e": -1.0}}),
        [op(B, "z", 2, 0)],
        Keys(zsets={"z": {"b": 5.0, "c": 3.0}}),
    ),
    case(
        "bound breaks ties by member: the lowest member goes first",
        Keys(zsets={"z": {"a": 1.0, "b": 1.0, "c": 1.0, "d": 2.0}}),
        [op(B, "z", 2, 0)],
        Keys(zsets={"z": {"c": 1.0, "d": 2.0}}),
    ),
    case(
        "bound orders tied members by their bytes (upper case, then lower, then UTF-8)",
        Keys(zsets={"z": {"é": 1.0, "z": 1.0, "Z": 1.0, "p:10": 1.0, "p:9": 1.0}}),
        [op(B, "z", 2, 0)],
        Keys(zsets={"z": {"é": 1.0, "z": 1.0}}),
    ),
    case(
        "bound to zero members deletes the key",
        Keys(zsets={"z": {"a": 1.0}}),
        [op(B, "z", 0, TTL)],
        EMPTY,
    ),
    case(
        "bound with a TTL sets it",
        Keys(zsets={"z": {"a": 1.0, "b": 2.0}}),
        [op(B, "z", 1, TTL)],
        Keys(zsets={"z": {"b": 2.0}}, ttls={"z": TTL}),
    ),
    case(
        "bound with a TTL renews an older one",
        Keys(zsets={"z": {"a": 1.0}}, ttls={"z": 500}),
        [op(B, "z", 5, TTL)],
        Keys(zsets={"z": {"a": 1.0}}, ttls={"z": TTL}),
    ),
    case(
        "bound without a TTL (0) keeps the key's TTL",
        Keys(zsets={"z": {"a": 1.0}}, ttls={"z": 500}),
        [op(B, "z", 5, 0)],
        Keys(zsets={"z": {"a": 1.0}}, ttls={"z": 500}),
    ),
    case(
        "bound of a missing key creates nothing",
        Keys(strings={"s": "v"}),
        [op(B, "missing", 5, TTL)],
        Keys(strings={"s": "v"}),
    ),
    # --- SET (SET key a [EX b when b > 0]) ----------------------------------------------
    case(
        "set without a TTL",
        EMPTY,
        [op(S, "s", "v", 0)],
        Keys(strings={"s": "v"}),
    ),
    case(
        "set with an empty TTL (the default) sets none",
        EMPTY,
        [op(S, "s", "v")],
        Keys(strings={"s": "v"}),
    ),
    case(
        "set with a TTL",
        EMPTY,
        [op(S, "s", '["p:1","g:2"]', SESSION_TTL)],
        Keys(strings={"s": '["p:1","g:2"]'}, ttls={"s": SESSION_TTL}),
    ),
    case(
        "set overwrites a value and drops its TTL",
        Keys(strings={"s": "old"}, ttls={"s": 500}),
        [op(S, "s", "new", 0)],
        Keys(strings={"s": "new"}),
    ),
    case(
        "set overwrites a value and replaces its TTL",
        Keys(strings={"s": "old"}, ttls={"s": 500}),
        [op(S, "s", "new", SESSION_TTL)],
        Keys(strings={"s": "new"}, ttls={"s": SESSION_TTL}),
    ),
    case(
        "set replaces a key of another type",
        Keys(zsets={"z": {"a": 1.0}}, hashes={"h": {"f": "v"}}),
        [op(S, "z", "was a zset", 0), op(S, "h", "was a hash", 0)],
        Keys(strings={"z": "was a zset", "h": "was a hash"}),
    ),
    case(
        "set stores a number as its text",
        EMPTY,
        [op(S, "s", 2.5, 0)],
        Keys(strings={"s": "2.5"}),
    ),
    # --- SET_FIELD (HSET key a b) -------------------------------------------------------
    case(
        "set a field of a missing hash",
        EMPTY,
        [op(H, "h", "p:1", "kitchen")],
        Keys(hashes={"h": {"p:1": "kitchen"}}),
    ),
    case(
        "set a field overwrites it and keeps the others and the TTL",
        Keys(hashes={"h": {"p:1": "kitchen", "p:2": "garden"}}, ttls={"h": 500}),
        [op(H, "h", "p:1", "garden"), op(H, "h", "p:3", "toys")],
        Keys(hashes={"h": {"p:1": "garden", "p:2": "garden", "p:3": "toys"}}, ttls={"h": 500}),
    ),
    # --- INCREMENT (HINCRBY key a b) ----------------------------------------------------
    case(
        "increment a field of a missing hash",
        EMPTY,
        [op(INC, "h", "click", 1), op(INC, "h", "click@2", 1)],
        Keys(hashes={"h": {"click": "1", "click@2": "1"}}),
    ),
    case(
        "increments add up, keep the other fields and the TTL",
        Keys(hashes={"h": {"impressions": "41", "items": "400"}}, ttls={"h": 500}),
        [
            op(INC, "h", "impressions", 2),
            op(INC, "h", "revenue_cents", 129_999),
            op(INC, "h", "items", 0),
        ],
        Keys(
            hashes={"h": {"impressions": "43", "items": "400", "revenue_cents": "129999"}},
            ttls={"h": 500},
        ),
    ),
    # --- DELETE (DEL key) ---------------------------------------------------------------
    case(
        "delete a sorted set",
        Keys(zsets={"z": {"a": 1.0}, "z2": {"b": 1.0}}),
        [op(D, "z")],
        Keys(zsets={"z2": {"b": 1.0}}),
    ),
    case(
        "delete a hash",
        Keys(hashes={"h": {"f": "v"}}, strings={"s": "v"}),
        [op(D, "h")],
        Keys(strings={"s": "v"}),
    ),
    case(
        "delete a string with a TTL",
        Keys(strings={"s": "v", "s2": "w"}, ttls={"s": 500}),
        [op(D, "s")],
        Keys(strings={"s2": "w"}),
    ),
    case(
        "delete a missing key",
        Keys(strings={"s": "v"}),
        [op(D, "missing")],
        Keys(strings={"s": "v"}),
    ),
    # --- REMOVE (ZREM key a) ------------------------------------------------------------
    case(
        "remove a member",
        Keys(zsets={"z": {"a": 1.0, "b": 2.0}}),
        [op(R, "z", "a")],
        Keys(zsets={"z": {"b": 2.0}}),
    ),
    case(
        "remove a missing member",
        Keys(zsets={"z": {"a": 1.0}}, ttls={"z": 500}),
        [op(R, "z", "nobody")],
        Keys(zsets={"z": {"a": 1.0}}, ttls={"z": 500}),
    ),
    case(
        "remove from a missing key creates nothing",
        EMPTY,
        [op(R, "missing", "a")],
        EMPTY,
    ),
    case(
        "remove the last member deletes the key",
        Keys(zsets={"z": {"a": 1.0}}),
        [op(R, "z", "a")],
        EMPTY,
    ),
    # --- ops in sequence ----------------------------------------------------------------
    case(
        "a batch in the planner's order: sums, latest times, sets, fields, then bounds",
        Keys(zsets={"tr1": {"p:1": 3.0, "p:2": 1.0, "p:3": 0.5}, "isess": {"u|s0": 10.0}}),
        [
            op(L, "tr1", "p:3", 0.5),
            op(L, "tr1", "p:4", 0.25),
            op(L, "pop", "p:9", 1.0),
            op(G, "isess", "u|s1", 20.0),
            op(S, "sitems", '["p:9"]', SESSION_TTL),
            op(H, "icat", "p:9", "kitchen"),
            op(B, "tr1", 2, TTL),
            op(B, "pop", 1000, 0),
            op(B, "isess", 1, SESSION_TTL),
        ],
        Keys(
            zsets={"tr1": {"p:1": 3.0, "p:3": 1.5}, "pop": {"p:9": 1.0}, "isess": {"u|s1": 20.0}},
            hashes={"icat": {"p:9": "kitchen"}},
            strings={"sitems": '["p:9"]'},
            ttls={"tr1": TTL, "isess": SESSION_TTL, "sitems": SESSION_TTL},
        ),
    ),
    case(
        "an erasure's ops: remove its sessions, delete their items, subtract its weights",
        Keys(
            zsets={"isess": {"u|s1": 20.0, "v|s1": 30.0}, "tr1": {"p:2": 1.5, "p:3": 1.0}},
            strings={"sitems": '["p:1","p:2"]'},
            ttls={"sitems": SESSION_TTL},
        ),
        [op(R, "isess", "u|s1"), op(D, "sitems"), op(M, "tr1", "p:2", 0.5)],
        Keys(zsets={"isess": {"v|s1": 30.0}, "tr1": {"p:2": 0.5, "p:3": 1.0}}),
    ),
    case(
        "add after a bound starts a dropped member afresh",
        Keys(zsets={"z": {"a": 1.0, "b": 2.0}}),
        [op(B, "z", 1, 0), op(L, "z", "a", 0.5)],
        Keys(zsets={"z": {"a": 0.5, "b": 2.0}}),
    ),
    case(
        "delete then add starts over, without the old TTL",
        Keys(zsets={"z": {"a": 5.0}}, ttls={"z": 500}),
        [op(D, "z"), op(L, "z", "a", 1.0)],
        Keys(zsets={"z": {"a": 1.0}}),
    ),
    case(
        "remove then keep-latest adds the member back with an earlier time",
        Keys(zsets={"z": {"s1": 100.0}}),
        [op(R, "z", "s1"), op(G, "z", "s1", 50.0)],
        Keys(zsets={"z": {"s1": 50.0}}),
    ),
    case(
        "set twice: the last value and the last TTL win",
        EMPTY,
        [op(S, "s", "a", SESSION_TTL), op(S, "s", "b", 0), op(S, "t", "c", 0), op(S, "t", "d", 60)],
        Keys(strings={"s": "b", "t": "d"}, ttls={"t": 60}),
    ),
    case(
        "a deleted string set again",
        Keys(strings={"s": "old"}),
        [op(D, "s"), op(S, "s", "new", 60)],
        Keys(strings={"s": "new"}, ttls={"s": 60}),
    ),
    case(
        "an emptied key is gone before the next op re-creates it",
        Keys(zsets={"z": {"a": 1.0}}),
        [op(R, "z", "a"), op(B, "z", 0, TTL), op(G, "z", "b", 2.0), op(B, "z", 5, 0)],
        Keys(zsets={"z": {"b": 2.0}}),
    ),
)

# Ops both stores refuse: the script raises (after applying the ops before it: a Redis
# script is not rolled back), the memory store raises too. No plan makes them.
REFUSED: tuple[tuple[str, ShardOp], ...] = (
    ("bound without a TTL (nil > 0 in Lua)", op(B, "z", 5)),
    ("add no number", op(L, "z", "a", "x")),
    ("keep-latest of no number", op(G, "z", "a", "")),
)


def key_of(keyspace: Keyspace, name: str) -> str:
    """The full key of short name ``name`` under ``keyspace``, in statistic shard 0."""
    return f"{keyspace.root}:{{s:{SHARD}}}:k:{name}"


def name_of(keyspace: Keyspace, key: str) -> str:
    prefix = key_of(keyspace, "")
    assert key.startswith(prefix), f"{key} is no key of the table"
    return key[len(prefix) :]


def placed(keyspace: Keyspace, ops: tuple[ShardOp, ...]) -> tuple[ShardOp, ...]:
    return tuple(o._replace(key=key_of(keyspace, o.key)) for o in ops)


def commit_of(
    keyspace: Keyspace, ops: tuple[ShardOp, ...], *, expected: int = -1, offset: int = 0
) -> BatchCommit:
    """A batch commit of no users and one shard write: ``ops`` (short names), guarded by
    shard 0's watermark ``expected``, advanced to ``offset``."""
    write = ShardWrite(SHARD, expected, placed(keyspace, ops))
    return BatchCommit(TOPIC, PARTITION, offset, writes=(), shards=(write,))


def bookkeeping(keyspace: Keyspace) -> tuple[str, str]:
    """The watermark keys a commit writes besides its ops' keys."""
    return keyspace.shard_watermarks(SHARD, TOPIC), keyspace.partition_watermarks(TOPIC)


def fill_memory(store: MemoryStore, before: Keys) -> None:
    """Lay ``before`` out in the memory store (TTLs are not modelled there)."""
    keyspace = store.keyspace
    for name, members in before.zsets.items():
        store.zsets[key_of(keyspace, name)] = dict(members)
    for name, fields in before.hashes.items():
        store.hashes[key_of(keyspace, name)] = dict(fields)
    for name, value in before.strings.items():
        store.strings[key_of(keyspace, name)] = value


def memory_keys(store: MemoryStore) -> dict[str, tuple[str, Any]]:
    """The memory store's keys but the watermarks, by short name, as (type, value): a key
    held in two of its dictionaries fails (Redis has one type per key)."""
    skip = bookkeeping(store.keyspace)
    typed: dict[str, tuple[str, Any]] = {}
    for kind, values in (("zset", store.zsets), ("hash", store.hashes), ("string", store.strings)):
        for key, value in values.items():
            if key in skip:
                continue
            name = name_of(store.keyspace, key)
            assert name not in typed, f"{key} is both a {typed[name][0]} and a {kind}"
            typed[name] = (kind, dict(value) if isinstance(value, dict) else value)
    return typed
