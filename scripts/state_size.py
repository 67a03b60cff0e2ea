"""Measure the stored size of one user's state: with every cap full, and after 20 events.

    uv run python scripts/state_size.py

Folds synthetic events (36-character ids, 3 s apart, 150 categories, one new
product per event) with the default ``CoreConfig`` and prints
the bytes of the ``st`` field in Redis (``state.to_stored()``, compressed JSON) and of
the JSON itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recstream.contract.events import validate_event
from recstream.model.config import CoreConfig
from recstream.model.fold import PositionedEvent, fold_user
from recstream.model.state import UserState

EVENTS = 3000
SPACING_SECONDS = 3
CATEGORIES = 150


def synthetic_events(user_id: str, count: int) -> list[PositionedEvent]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    events = []
    for i in range(count):
        at = start + timedelta(seconds=SPACING_SECONDS * i)
        event = validate_event(
            {
                "event_id": f"evt-{i:08d}-0123456789abcdef0123",
                "event_type": "product_view" if i % 3 else "add_to_cart",
                "user_id": user_id,
                "session_id": f"s-{i // 40}",
                "occurred_at": at.isoformat(),
                "product_id": f"p-{i:07d}",
                "category": f"category-{i % CATEGORIES}",
                "price": 10.0 + i % 90,
            }
        )
        events.append(PositionedEvent(event, 3, i, at.timestamp()))
    return events


def main() -> None:
    config = CoreConfig()
    events = synthetic_events("u-0000001", EVENTS)
    state = UserState("u-0000001")
    for chunk in range(0, EVENTS, 500):
        state = fold_user(state, events[chunk : chunk + 500], config).state
    print(
        f"every cap full: {len(state.to_stored())} bytes stored, {len(state.to_json())} as JSON "
        f"(items={len(state.items)} history={len(state.history)} dedupe={len(state.dedupe)} "
        f"categories={len(state.categories)} preferences={len(state.category_prefs)})"
    )
    small = fold_user(UserState("u-0000002"), events[:20], config).state
    print(f"20 events: {len(small.to_stored())} bytes stored, {len(small.to_json())} as JSON")


if __name__ == "__main__":
    main()
