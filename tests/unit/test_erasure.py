from __future__ import annotations

import json
from datetime import timedelta

import pytest

from recstream.apply.batch import RawRecord, apply_batch
from recstream.apply.operations import erase_user
from recstream.contract.events import EventType
from recstream.model.config import CoreConfig
from recstream.plan.erasure import plan_erasure
from recstream.plan.shards import Op, ShardOp
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


async def test_a_plan_leaves_out_what_an_interrupted_erasure_did_per_shard() -> None:
    store = MemoryStore()
    await apply_batch(store, records("me", ["p1", "p2", "p3", "p4", "p5"], start=0), CONFIG)
    await apply_batch(store, records("me", ["p6", "p7"], start=5, minutes=10), CONFIG)
    state = await store.get_user("me")
    assert state is not None
    whole = plan_erasure(state, BASE.timestamp(), store.keyspace, CONFIG)
    # every shard had the first five events (offsets 0 .. 4) subtracted already
    done = dict.fromkeys(range(store.keyspace.shards), 4)
    rest = plan_erasure(state, BASE.timestamp(), store.keyspace, CONFIG, done)
    fresh = MemoryStore()
    await apply_batch(fresh, records("me", ["p1", "p2", "p3", "p4", "p5"], start=0), CONFIG)
    first = await fresh.get_user("me")
    assert first is not None
    earlier = plan_erasure(first, BASE.timestamp(), store.keyspace, CONFIG)

    def totals(ops: tuple[ShardOp, ...]) -> dict[tuple[str, str], float]:
        """What the ops take back from each member, as sums (they travel as log2)."""
        return {(key, str(a)): 2.0 ** float(b) for code, key, a, b in ops if code == Op.SUBTRACT}

    summed = totals(earlier.ops)
    for member, amount in totals(rest.ops).items():
        summed[member] = summed.get(member, 0.0) + amount
    for member, amount in totals(whole.ops).items():
        assert summed.get(member, 0.0) == pytest.approx(amount), member
    assert rest.done == tuple(sorted(done.items()))
    assert len(rest.ops) < len(whole.ops)
    none_done = plan_erasure(state, BASE.timestamp(), store.keyspace, CONFIG, {})
    assert none_done.ops == whole.ops
