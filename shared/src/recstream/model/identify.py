"""Merging an anonymous shopper into the user they sign in as (``POST /identify``).

The merge moves the anonymous id's kept history (its latest ``history_cap`` events) to
the known user through the log, so every store rebuilt from the log agrees with the
live one:

1. the history is published again as the known user's events, with ids derived from
   the anonymous id and the original ids (:func:`merged_event_id`): the known user's
   fold applies them like any event, features, ratings, sessions and shared statistics
   included, and a merge that is retried within the dedupe window is dropped there;
2. the anonymous id is then erased at the time of its latest merged event
   (:func:`merged_at`): its contributions to the shared statistics are subtracted, and
   a rebuild from the log never applies its events again, so nothing counts twice.

What the history does not keep (prices, search queries) is not merged; an explicit
rating keeps its value.
"""

from __future__ import annotations

import hashlib

from recstream.contract.events import Event, EventType, validate_event
from recstream.model.history import history_entry_event
from recstream.model.state import UserState

MERGED_FROM = "merged_from"  # the property that names the anonymous id of a merged event


def merged_event_id(anonymous_id: str, event_id: str) -> str:
    """The id of an anonymous event published again under the known user: the same for
    every attempt of the merge, so the known user's dedupe window drops a second copy."""
    digest = hashlib.blake2b(f"{anonymous_id}\0{event_id}".encode(), digest_size=16)
    return f"merged-{digest.hexdigest()}"


def merged_events(anonymous: UserState, user_id: str) -> list[Event]:
    """The anonymous state's history as the known user's events, oldest first."""
    events = []
    for entry in anonymous.history:
        raw = history_entry_event(user_id, entry)
        raw["event_id"] = merged_event_id(anonymous.user_id, entry.event_id)
        raw["properties"] = {MERGED_FROM: anonymous.user_id}
        if entry.event_type == EventType.RATING_SUBMITTED and entry.item is not None:
            stats = anonymous.items.get(entry.item)
            if stats is not None and stats.explicit is not None:
                raw["rating"] = stats.explicit
        events.append(validate_event(raw))
    return events


def merged_at(anonymous: UserState) -> float | None:
    """When the anonymous id is erased after its merge: its latest event, so an event it
    makes later starts a new anonymous state instead of being dropped."""
    return anonymous.last_at
