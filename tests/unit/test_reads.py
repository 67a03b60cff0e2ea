from __future__ import annotations

import json
from datetime import timedelta

from recstream.apply.batch import RawRecord, apply_batch
from recstream.contract.events import EventType
from recstream.model.config import CoreConfig
from recstream.readmodel.load import load_context
from recstream.store.memory import MemoryStore

from .eventgen import BASE, make_event

CONFIG = CoreConfig(decay_landmark=BASE.timestamp())
NOW = (BASE + timedelta(minutes=20)).timestamp()


def session_records(sessions: dict[str, list[str]]) -> list[RawRecord]:
    records = []
    for user, items in sessions.items():
        for step, product in enumerate(items):
            event = make_event(
                f"{user}-{step}", EventType.PRODUCT_VIEW, user, minutes=step,
                product_id=product, category="phones" if product < "p5" else "cases",
            )  # fmt: skip
            records.append(
                RawRecord("interactions", 0, len(records), int(NOW * 1000), user.encode(),
                          json.dumps(event).encode())
            )  # fmt: skip
    return records


async def load(sessions: dict[str, list[str]], user: str, **kwargs: object):  # type: ignore[no-untyped-def]
    store = MemoryStore()
    await apply_batch(store, session_records(sessions), CONFIG)
    return await load_context(store, user, NOW, CONFIG, **kwargs)  # type: ignore[arg-type]


async def test_the_context_holds_transitions_neighbours_and_popularity() -> None:
    ctx = await load(
        {"a": ["p1", "p2", "p3"], "b": ["p1", "p2", "p4"], "c": ["p9", "p8"], "me": ["p1", "p2"]},
        "me",
    )
    assert ctx.session is not None
    assert ctx.anchors == ("p:p1", "p:p2")
    assert set(ctx.transitions["p:p2"]) == {"p:p3", "p:p4"}
    assert set(ctx.transitions2) == {"p:p3", "p:p4"}
    neighbours = {n.key.split("|")[0] for n in ctx.neighbours}
    assert neighbours == {"a", "b"}  # share items with my session; my own is excluded
    assert max(ctx.popular, key=ctx.popular.__getitem__) in {"p:p1", "p:p2"}
    assert ctx.item_categories["p:p9"] == "cases"
    assert set(ctx.popular_in_category) == {"phones"}


async def test_an_explicit_anchor_replaces_the_session() -> None:
    ctx = await load({"a": ["p1", "p2", "p3"], "me": ["p7"]}, "me", anchor="p:p2")
    assert ctx.anchors == ("p:p2",)
    assert set(ctx.transitions["p:p2"]) == {"p:p3"}


async def test_a_cold_user_gets_popularity_only() -> None:
    ctx = await load({"a": ["p1", "p2"]}, "stranger")
    assert ctx.session is None
    assert ctx.anchors == ()
    assert ctx.neighbours == ()
    assert set(ctx.popular) == {"p:p1", "p:p2"}


async def test_an_expired_session_is_not_current() -> None:
    store = MemoryStore()
    await apply_batch(store, session_records({"me": ["p1", "p2"]}), CONFIG)
    later = NOW + 2 * 3600
    ctx = await load_context(store, "me", later, CONFIG)
    assert ctx.session is None
    assert ctx.anchors == ()
