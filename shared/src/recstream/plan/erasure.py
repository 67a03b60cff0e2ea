"""Erasing a user: what to remove, and the rule that keeps them erased.

Erasure removes the user's state (history, features, ratings, session) and
subtracts the contributions of the events still in their history from the
shared statistics: popularity and transitions are decreased by exactly what
those events added, and their sessions leave the session index. Contributions
of events older than the history cap stay in the statistics, where they decay.

An erasure record (user -> erased_at) is kept outside the versioned keyspace.
Every path that folds events (consumer, replay, evaluation) drops a user's
events that happened at or before ``erased_at``, so a replay of the topic
does not bring the user back. Events after the erasure start a new user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from recstream.contract.keyspace import Keyspace, Stat
from recstream.model.config import CoreConfig
from recstream.model.decay import log_add
from recstream.model.fold import fold_user
from recstream.model.history import history_as_events
from recstream.model.state import UserState
from recstream.model.statistics import StatDelta
from recstream.plan.shards import Op, ShardOp


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    user_id: str
    erased_at: float
    ops: tuple[ShardOp, ...]  # applied without watermarks: the erasure record guards them
    history_events: int
    items: int
    sessions: tuple[str, ...]
    # shard -> user offset up to which an interrupted erasure already subtracted the
    # user's contributions from it (a Redis Cluster erases shard by shard); the ops leave
    # those contributions out
    done: tuple[tuple[int, int], ...] = ()


def history_contributions(state: UserState, config: CoreConfig) -> list[StatDelta]:
    """The shared-statistic contributions of the events still in the user's history."""
    return fold_user(UserState(state.user_id), history_as_events(state), config).deltas


def plan_erasure(
    state: UserState,
    erased_at: float,
    keyspace: Keyspace,
    config: CoreConfig,
    done: Mapping[int, int] | None = None,
) -> ErasurePlan:
    """What erasing ``state`` writes; ``done`` (shard -> user offset) leaves out the
    contributions an interrupted erasure already subtracted from a shard."""
    done = done or {}
    deltas = history_contributions(state, config)
    ops: list[ShardOp] = []
    sessions: set[str] = set()
    increments: dict[tuple[str, str], float] = {}  # log2 of what to take back
    for d in deltas:
        subject = d.member if d.kind == Stat.POPULARITY else d.key
        shard, key = keyspace.locate(d.kind, subject)
        if done and state.history[d.offset].offset <= done.get(shard, -1):
            continue  # d.offset is the entry's position in the history
        if d.kind in (
            Stat.TRANSITIONS,
            Stat.PAIR_TRANSITIONS,
            Stat.COVISITATION,
            Stat.CO_ENGAGEMENT,
            Stat.POPULARITY,
            Stat.CATEGORY_POPULARITY,
        ):
            summed = increments.get((key, d.member))
            increments[(key, d.member)] = d.value if summed is None else log_add(summed, d.value)
        elif d.kind == Stat.ITEM_SESSIONS:
            ops.append(ShardOp(Op.REMOVE, key, d.member))
            sessions.add(d.member)
        elif d.kind == Stat.SESSION_ITEMS:
            ops.append(ShardOp(Op.DELETE, key))
    ops += [
        ShardOp(Op.SUBTRACT, key, member, amount) for (key, member), amount in increments.items()
    ]
    return ErasurePlan(
        user_id=state.user_id,
        erased_at=erased_at,
        ops=tuple(dict.fromkeys(ops)),
        history_events=len(state.history),
        items=len(state.items),
        sessions=tuple(sorted(sessions)),
        done=tuple(sorted(done.items())),
    )


def erasure_record(plan: ErasurePlan, requested_by: str) -> bytes:
    return orjson.dumps(
        {
            "user_id": plan.user_id,
            "erased_at": plan.erased_at,
            "requested_by": requested_by,
            "history_events": plan.history_events,
            "items": plan.items,
            "sessions": list(plan.sessions),
        }
    )


def erased_at(record: bytes | str) -> float:
    return float(orjson.loads(record)["erased_at"])


def is_erased(occurred_at: float, erased_at: float | None) -> bool:
    """The erasure rule: an erased user's events up to the erasure are never applied."""
    return erased_at is not None and occurred_at <= erased_at
