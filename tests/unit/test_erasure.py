from __future__ import annotations

import json
from datetime import timedelta

import pytest

from recstream.apply.batch import RawRecord, apply_batch
from recstream.apply.operations import erase_user
from recstream.contract.events import EventType
from recstream.model.config import CoreConfig
from recstream.store.memory import MemoryStore

from .eventgen import BASE, make_event

CONFIG = CoreConfig(decay_landmark=BASE.timestamp())
RECEIVED_MS = int((BASE + timedelta(hours=1)).timestamp() * 1000)


def records(user: str, items: list[str], start: int, minutes: float = 0.0) -> list[RawRecord]:
    out = []
    for step, product in enumerate(items):
        event = make_event(
            f"{user}-{minutes}-{step}", EventType.ADD_TO_CART, user, minutes=minutes + step,
            product_id=product, category="c",
        )  # fmt: skip
        out.append(
            RawRecord("interactions", 0, start + step, RECEIVED_MS + int(minutes * 60_000),
                      user.encode(),
                      json.dumps(event).encode())
        )  # fmt: skip
    return out


async def test_erasure_removes_the_user_and_their_contributions() -> None:
    both, other_only = MemoryStore(), MemoryStore()
    mine = records("me", ["p1", "p2", "p3"], start=0)
    theirs = records("them", ["p1", "p2", "p4"], start=3)
    await apply_batch(both, mine + theirs, CONFIG)
    await apply_batch(other_only, theirs, CONFIG)

    receipt = await erase_user(both, "me", BASE.timestamp() + 3600, CONFIG, requested_by="me")

    assert receipt.erased
    assert receipt.plan.history_events == 3
    assert await both.get_user("me") is None
    assert set(both.zsets) >= set(other_only.zsets)
    for key, members in other_only.zsets.items():
        left = {m: s for m, s in both.zsets[key].items() if abs(s) > 1e-9 * max(1.0, abs(s))}
        assert left.keys() == members.keys(), key
        for member, score in members.items():
            assert left[member] == pytest.approx(score), (key, member)
    assert not any("me|" in key for key in both.strings), "the user's session items are gone"


async def test_a_replay_does_not_bring_an_erased_user_back() -> None:
    store = MemoryStore()
    old = records("me", ["p1", "p2"], start=0)
    await apply_batch(store, old, CONFIG)
    await erase_user(store, "me", BASE.timestamp() + 3600, CONFIG, requested_by="admin")

    replay = await apply_batch(store, [*old, *records("me", ["p9"], start=10, minutes=120)], CONFIG)

    assert replay.erased == 2
    assert replay.applied == 1
    back = await store.get_user("me")
    assert back is not None
    assert back.total_events == 1, "only the event after the erasure counts"


async def test_erasing_twice_is_harmless() -> None:
    store = MemoryStore()
    await apply_batch(store, records("me", ["p1", "p2"], start=0), CONFIG)
    first = await erase_user(store, "me", BASE.timestamp() + 3600, CONFIG, requested_by="me")
    snapshot = {k: dict(v) for k, v in store.zsets.items()}
    second = await erase_user(store, "me", BASE.timestamp() + 7200, CONFIG, requested_by="me")
    assert first.erased
    assert not second.erased
    assert store.zsets == snapshot
