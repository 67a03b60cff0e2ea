"""Recomputation from stored histories, on the in-memory store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from recstream.apply.batch import RawRecord, apply_batch
from recstream.apply.operations import (
    history_is_complete,
    recompute_state,
    recompute_users,
)
from recstream.contract.events import EventType
from recstream.model.config import CoreConfig
from recstream.store.memory import MemoryStore
from recstream.store.reads import Read

from .eventgen import BASE, make_event

CONFIG = CoreConfig(decay_landmark=BASE.timestamp())
NOW = (BASE + timedelta(hours=2)).timestamp()
RECEIVED_MS = int(NOW * 1000)


def records(user: str, count: int, start: int = 0) -> list[RawRecord]:
    kinds = [EventType.PRODUCT_VIEW, EventType.ADD_TO_CART, EventType.PURCHASE_COMPLETED]
    out = []
    for i in range(count):
        event = make_event(
            f"{user}-{start + i}", kinds[i % 3], user, minutes=start + i,
            product_id=f"p{i % 4}", category=f"c{i % 2}", price=10.0 + i,
        )  # fmt: skip
        out.append(
            RawRecord("interactions", 0, start + i, RECEIVED_MS, user.encode(),
                      json.dumps(event).encode())
        )  # fmt: skip
    return out


async def store_with(*batches: list[RawRecord], config: CoreConfig = CONFIG) -> MemoryStore:
    store = MemoryStore()
    for batch in batches:
        await apply_batch(store, batch, config)
    return store


async def test_recomputing_a_complete_history_gives_the_stored_state_back() -> None:
    store = await store_with(records("u", 9) + records("w", 4, start=9))
    state = await store.get_user("u")
    assert state is not None
    assert history_is_complete(state)
    assert recompute_state(state, CONFIG).to_json() == state.to_json()
    results = await recompute_users(store, ["u", "w", "ghost"], NOW, CONFIG)
    assert [(r.user_id, r.status) for r in results] == [
        ("u", "unchanged"),
        ("w", "unchanged"),
        ("ghost", "missing"),
    ]
    assert results[0].check is not None
    assert results[0].check.differences == {}
    assert results[2].check is None


async def test_a_drifted_state_is_reported_then_written_with_its_watermark() -> None:
    store = await store_with(records("u", 6))
    drifted = await store.get_user("u")
    assert drifted is not None
    drifted.counts = {**drifted.counts, "purchase_completed": 0}
    store.users["u"] = drifted

    [checked] = await recompute_users(store, ["u"], NOW, CONFIG)
    assert checked.status == "changed"
    assert checked.state_differs
    assert checked.check is not None
    assert checked.check.differences["purchases"] == (0, 2)
    assert store.users["u"].counts["purchase_completed"] == 0, "not written without write"

    [written] = await recompute_users(store, ["u"], NOW, CONFIG, write=True)
    assert written.status == "written"
    fixed = store.users["u"]
    assert fixed.counts["purchase_completed"] == 2
    assert fixed.watermark == drifted.watermark
    assert fixed.prices.to_list() == drifted.prices.to_list(), "prices are not in the history"
    [again] = await recompute_users(store, ["u"], NOW, CONFIG)
    assert again.status == "unchanged"


async def test_a_capped_history_is_never_written() -> None:
    capped = CoreConfig(decay_landmark=BASE.timestamp(), history_cap=4)
    store = await store_with(records("u", 7), config=capped)
    before = store.users["u"].to_json()
    [result] = await recompute_users(store, ["u"], NOW, capped, write=True)
    assert result.status == "incomplete_history"
    assert result.check is not None
    assert result.check.differences["total_events"] == (7, 4)
    assert store.users["u"].to_json() == before


class RacingStore(MemoryStore):
    """A store where the consumer applies one more event between the read and the write."""

    def __init__(self, late: list[RawRecord]) -> None:
        super().__init__()
        self._late = late
        self.raced = False

    async def read(self, requests: Sequence[Read]) -> list[Any]:
        answers = await super().read(requests)
        if not self.raced and self._late:
            self.raced = True
            await apply_batch(self, self._late, CONFIG)
        return answers


async def test_the_consumer_wins_a_race_with_a_recomputation() -> None:
    store = RacingStore(late=records("u", 1, start=6))
    await apply_batch(store, records("u", 6), CONFIG)
    drifted = store.users["u"]
    drifted.categories = {}
    [result] = await recompute_users(store, ["u"], NOW, CONFIG, write=True)
    assert store.raced
    assert result.status == "conflict"
    state = store.users["u"]
    assert state.total_events == 7, "the consumer's newer state was kept"
    assert state.categories == {"c0": 1}, "the late event's fold of the drifted state"
