"""A user's stored history read back as events, for recomputation and erasure.

History entries keep what the fold needs to rebuild counts, sessions and
shared-statistic contributions (type, time, item, category, session); prices,
ratings and queries are not kept, so recomputed price statistics and explicit
ratings start empty.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recstream.contract.events import EventType, validate_event
from recstream.model.fold import PositionedEvent
from recstream.model.state import HistoryEntry, UserState


def history_entry_event(user_id: str, entry: HistoryEntry) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": entry.event_id,
        "event_type": entry.event_type,
        "user_id": user_id,
        "occurred_at": datetime.fromtimestamp(entry.at, UTC),
    }
    if entry.session_id is not None:
        event["session_id"] = entry.session_id
    if entry.category is not None:
        event["category"] = entry.category
    if entry.item is not None:
        kind, _, item_id = entry.item.partition(":")
        event["product_id" if kind == "p" else "group_id"] = item_id
    if entry.event_type == EventType.RATING_SUBMITTED:
        event["rating"] = 3  # the value does not change any shared statistic
    if entry.event_type == EventType.PRODUCT_SEARCH:
        event["query"] = "-"
    return event


def history_as_events(state: UserState) -> list[PositionedEvent]:
    """The history as positioned events (offsets are the entries' order, time is event time)."""
    return [
        PositionedEvent(validate_event(history_entry_event(state.user_id, e)), 0, i, e.at)
        for i, e in enumerate(state.history)
    ]
