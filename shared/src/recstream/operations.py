"""Administrative operations over the store port: erasure and recomputation.

Both read a user's stored state, compute with the pure core and write back
through the store, retrying when the consumer changed the user meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from recstream.config import CoreConfig
from recstream.erasure import ErasurePlan, erasure_record, plan_erasure
from recstream.features import UserFeatures, compute_features
from recstream.ports import StateStore, WatermarkConflictError
from recstream.state import UserState

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
        plan = plan_erasure(state, now, store.keyspace, config)
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
