"""Administrative operations over the store port: erasure (and its restoration from the
erasure log, and the erasure of an anonymous id merged into a known user) and
recomputation.

Both read a user's stored state, compute with the pure core and write back
through the store. Erasure retries when the consumer changed the user
meanwhile; a recomputation never overwrites a newer state: the consumer's
write wins and the user is reported as a conflict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from recstream.contract.erasures import ErasureNotice
from recstream.model.config import CoreConfig
from recstream.model.features import UserFeatures, compute_features
from recstream.model.fold import fold_history
from recstream.model.history import history_as_events
from recstream.model.state import ItemStats, PriceStats, UserState
from recstream.plan.erasure import ErasurePlan, erasure_record, plan_erasure
from recstream.store.port import BatchCommit, StateStore, UserWrite, WatermarkConflictError
from recstream.store.reads import Read, UserRead

MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    user_id: str
    erased: bool  # False: nothing was stored for the user
    erased_at: float
    plan: ErasurePlan


async def erase_user(
    store: StateStore, user_id: str, now: float, config: CoreConfig, requested_by: str
) -> ErasureReceipt:
    """Erase ``user_id`` now: state deleted, contributions subtracted, erasure recorded."""
    for attempt in range(MAX_ATTEMPTS):
        state = await store.get_user(user_id) or UserState(user_id)
        done = await store.erasure_progress(user_id)
        plan = plan_erasure(state, now, store.keyspace, config, done)
        try:
            erased = await store.erase_user(
                plan, state.watermark, erasure_record(plan, requested_by)
            )
        except WatermarkConflictError:
            if attempt == MAX_ATTEMPTS - 1:
                raise
            continue
        return ErasureReceipt(user_id, erased, now, plan)
    raise AssertionError("unreachable")


async def erase_if_unchanged(
    store: StateStore, state: UserState, erased_at: float, config: CoreConfig, requested_by: str
) -> ErasureReceipt:
    """Erase the user of ``state`` at ``erased_at`` only while the stored state is still
    ``state`` (the merge of an anonymous id erases exactly what it merged); raises
    :class:`WatermarkConflictError` when the consumer applied an event meanwhile."""
    done = await store.erasure_progress(state.user_id)
    plan = plan_erasure(state, erased_at, store.keyspace, config, done)
    erased = await store.erase_user(plan, state.watermark, erasure_record(plan, requested_by))
    return ErasureReceipt(state.user_id, erased, erased_at, plan)


async def restore_erasures(
    store: StateStore, notices: Iterable[ErasureNotice], config: CoreConfig
) -> int:
    """Bring the store's erasures up to the erasure log: a user whose erasure the store
    lacks (or holds an earlier one of) is erased at the log's time, so the rule that
    drops their events holds before any event is folded. Returns how many users were
    restored; users the store already knows as erased at that time are left alone."""
    latest: dict[str, ErasureNotice] = {}
    for notice in notices:
        known = latest.get(notice.user_id)
        if known is None or notice.erased_at > known.erased_at:
            latest[notice.user_id] = notice
    stored = await store.erasures(list(latest))
    restored = 0
    for user_id, notice in latest.items():
        if stored.get(user_id, float("-inf")) >= notice.erased_at:
            continue
        await erase_user(store, user_id, notice.erased_at, config, notice.requested_by)
        restored += 1
    return restored


@dataclass(frozen=True, slots=True)
class FeatureCheck:
    user_id: str
    stored: UserFeatures
    recomputed: UserFeatures
    differences: dict[str, tuple[object, object]]


def check_features(
    state: UserState, recomputed: UserState, now: float, config: CoreConfig
) -> FeatureCheck:
    """Compare the stored features with those recomputed from the stored history."""
    stored = compute_features(state, now, config)
    fresh = compute_features(recomputed, now, config)
    differences = {
        name: (getattr(stored, name), getattr(fresh, name))
        for name in UserFeatures.__dataclass_fields__
        if getattr(stored, name) != getattr(fresh, name)
    }
    return FeatureCheck(state.user_id, stored, fresh, differences)


def history_is_complete(state: UserState) -> bool:
    """Every event the state counts is still in its (capped) history."""
    return state.total_events == len(state.history)


def recompute_state(state: UserState, config: CoreConfig) -> UserState:
    """The user's state folded again from the stored history with the pure core.

    What the history does not keep is carried over from the stored state: the
    watermark, the price statistics, explicit ratings, the dedupe window, the lists
    shown and the events waiting for theirs (attribution), and the history entries' log
    offsets. With a complete history and an unchanged
    fold the result equals the stored state.
    """
    fresh = fold_history(state.user_id, history_as_events(state), config)
    fresh.watermark = state.watermark
    fresh.prices = PriceStats(*state.prices.to_list())
    fresh.dedupe = dict(state.dedupe)
    fresh.shown = list(state.shown)  # lists shown are not history: attribution keeps them
    fresh.pending = list(state.pending)
    for item, stats in fresh.items.items():
        stored = state.items.get(item)
        if stored is not None:
            fresh.items[item] = ItemStats(
                stats.score, stats.ref, stats.events, stats.last_at, stored.explicit
            )
    offsets = {entry.event_id: entry.offset for entry in state.history}
    fresh.history = [
        entry._replace(offset=offsets.get(entry.event_id, entry.offset)) for entry in fresh.history
    ]
    return fresh


RecomputeStatus = Literal[
    "missing", "unchanged", "changed", "incomplete_history", "written", "conflict"
]


@dataclass(frozen=True, slots=True)
class Recomputation:
    """The outcome for one user.

    ``missing``: nothing stored; ``unchanged``: the recomputed state equals the
    stored one; ``changed``: it differs (not written); ``incomplete_history``: it
    differs but older events have left the capped history, so it is never
    written; ``written``: the recomputed state replaced the stored one;
    ``conflict``: the consumer wrote the user meanwhile, its state was kept.
    """

    user_id: str
    status: RecomputeStatus
    check: FeatureCheck | None
    state_differs: bool


class RecomputeStore(StateStore, Protocol):
    async def read(self, requests: Sequence[Read]) -> list[Any]: ...


def _outcome(state: UserState | None, user_id: str, now: float, config: CoreConfig) -> tuple[
    Recomputation, UserState | None
]:  # fmt: skip
    if state is None:
        return Recomputation(user_id, "missing", None, False), None
    fresh = recompute_state(state, config)
    check = check_features(state, fresh, now, config)
    differs = fresh.to_json() != state.to_json()
    if not differs:
        return Recomputation(user_id, "unchanged", check, False), None
    if not history_is_complete(state):
        return Recomputation(user_id, "incomplete_history", check, True), None
    return Recomputation(user_id, "changed", check, True), fresh


async def recompute_users(
    store: RecomputeStore,
    user_ids: Sequence[str],
    now: float,
    config: CoreConfig,
    *,
    write: bool = False,
    topic: str = "interactions",
) -> list[Recomputation]:
    """Recompute each user's state from their stored history and compare the features.

    The users are read in one round trip. With ``write`` every changed user with
    a complete history is written back through the store's batch commit, guarded
    by the watermark that was read: when the consumer applied an event meanwhile
    the commit is refused and the user is reported as ``conflict``. A state whose
    watermark the ``topic``'s partition watermarks do not cover (written from
    another topic) is not written either.
    """
    states = await store.read([UserRead(u) for u in user_ids])
    results: list[Recomputation] = []
    marks = await store.partition_watermarks(topic) if write else {}
    for user_id, state in zip(user_ids, states, strict=True):
        result, fresh = _outcome(state, user_id, now, config)
        if write and fresh is not None and state is not None:
            result = await _write(store, result, state, fresh, topic, marks)
        results.append(result)
    return results


async def _write(
    store: StateStore,
    result: Recomputation,
    state: UserState,
    fresh: UserState,
    topic: str,
    marks: dict[int, int],
) -> Recomputation:
    mark = state.watermark
    if mark is None or marks.get(mark.partition, -1) < mark.offset:
        return result
    commit = BatchCommit(topic, mark.partition, mark.offset, [UserWrite(fresh, expected=mark)])
    try:
        await store.commit_batch(commit)
    except WatermarkConflictError:
        return dataclasses.replace(result, status="conflict")
    return dataclasses.replace(result, status="written")
