"""The merge of an anonymous id into a known user, on the pure core and the memory store:
the anonymous history applied as the user's events, the anonymous id erased, and the
shared statistics equal to a log in which the user made those events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from recstream.apply.operations import erase_if_unchanged
from recstream.contract.events import validate_event
from recstream.model.config import CoreConfig
from recstream.model.fold import PositionedEvent, fold_history
from recstream.model.identify import MERGED_FROM, merged_at, merged_event_id, merged_events
from recstream.plan.erasure import history_contributions
from recstream.store.memory import MemoryStore
from recstream.store.port import BatchCommit, UserWrite, WatermarkConflictError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ANON = "anon-0123"
USER = "u-known"


def _event(i: int, user: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"e-{user}-{i}",
        "event_type": kind,
        "user_id": user,
        "session_id": f"s-{user}",
        "occurred_at": (T0 + timedelta(minutes=i)).isoformat(),
        **extra,
    }


def anonymous_events() -> list[PositionedEvent]:
    raws = [
        _event(0, ANON, "product_view", product_id="p-1", category="shoes"),
        _event(1, ANON, "product_view", product_id="p-2", category="shoes"),
        _event(2, ANON, "add_to_cart", product_id="p-2", category="shoes", price=30.0),
        _event(3, ANON, "rating_submitted", product_id="p-2", rating=5),
        _event(4, ANON, "group_view", group_id="g-1"),
    ]
    return [PositionedEvent(validate_event(r), 0, i, T0.timestamp()) for i, r in enumerate(raws)]


def test_the_merged_events_are_the_history_under_the_known_user() -> None:
    config = CoreConfig()
    anonymous = fold_history(ANON, anonymous_events(), config)
    events = merged_events(anonymous, USER)
    assert [e.user_id for e in events] == [USER] * 5
    assert [e.event_id for e in events] == [
        merged_event_id(ANON, f"e-{ANON}-{i}") for i in range(5)
    ]
    assert [e.item_key for e in events] == ["p:p-1", "p:p-2", "p:p-2", "p:p-2", "g:g-1"]
    assert all(e.properties == {MERGED_FROM: ANON} for e in events)
    assert events[3].rating == 5  # the explicit rating keeps its value
    assert merged_at(anonymous) == (T0 + timedelta(minutes=4)).timestamp()
    # the ids are the same on a retry, and differ per anonymous id and per event
    assert merged_event_id(ANON, "e-1") == merged_event_id(ANON, "e-1")
    assert merged_event_id(ANON, "e-1") != merged_event_id("anon-other", "e-1")


def test_the_user_gets_the_anonymous_behaviour_and_the_same_contributions() -> None:
    """The known user folded from the merged events holds what the anonymous id held, and
    contributes to the shared statistics exactly what the erasure takes back from it."""
    config = CoreConfig()
    anonymous = fold_history(ANON, anonymous_events(), config)
    merged = [PositionedEvent(e, 1, i, T0.timestamp()) for i, e in enumerate(merged_events(
        anonymous, USER))]  # fmt: skip
    user = fold_history(USER, merged, config)
    assert user.counts == anonymous.counts
    assert user.items.keys() == anonymous.items.keys()
    assert user.items["p:p-2"].explicit == 5
    assert user.category_prefs == anonymous.category_prefs
    taken_back = {(d.kind, d.member, round(d.value, 9)) for d in history_contributions(
        anonymous, config)}  # fmt: skip
    added = {(d.kind, d.member, round(d.value, 9)) for d in history_contributions(user, config)}
    # the session keys name the user, so only the item-level contributions compare
    assert {c for c in taken_back if ":" in c[1]} == {c for c in added if ":" in c[1]}


async def test_the_anonymous_id_is_erased_only_while_it_is_what_was_merged() -> None:
    config = CoreConfig()
    store = MemoryStore()
    events = anonymous_events()
    first = fold_history(ANON, events[:3], config)
    await store.commit_batch(BatchCommit("t", 0, 2, [UserWrite(first, expected=None)]))
    snapshot = await store.get_user(ANON)
    assert snapshot is not None
    later = fold_history(ANON, events, config)
    await store.commit_batch(
        BatchCommit("t", 0, 4, [UserWrite(later, expected=snapshot.watermark)])
    )
    with pytest.raises(WatermarkConflictError):
        await erase_if_unchanged(store, snapshot, 1.0, config, "user:u-known")
    assert await store.get_user(ANON) is not None
    current = await store.get_user(ANON)
    assert current is not None
    at = merged_at(current)
    assert at is not None
    receipt = await erase_if_unchanged(store, current, at, config, "user:u-known")
    assert receipt.erased
    assert await store.get_user(ANON) is None
    assert await store.erasures([ANON]) == {ANON: at}
