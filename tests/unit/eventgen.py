"""Hypothesis strategies and builders for contract events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from recstream.contract.events import EventType

BASE = datetime(2026, 11, 1, tzinfo=UTC)
PRODUCT_TYPES = [
    EventType.PRODUCT_VIEW,
    EventType.ADD_TO_CART,
    EventType.PURCHASE_COMPLETED,
    EventType.CART_REMOVE,
    EventType.WISHLIST_ADD,
    EventType.WISHLIST_REMOVE,
]
GROUP_TYPES = [
    EventType.GROUP_VIEW,
    EventType.GROUP_JOIN_CLICK,
    EventType.GROUP_JOIN_COMPLETE,
    EventType.GROUP_LEAVE,
]


def make_event(
    event_id: str,
    event_type: EventType | str,
    user_id: str = "u1",
    *,
    minutes: float = 0.0,
    **fields: Any,
) -> dict[str, Any]:
    """A contract event as a dict, ``minutes`` after a fixed base time."""
    event_type = EventType(event_type)
    event: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type.value,
        "user_id": user_id,
        "occurred_at": (BASE + timedelta(minutes=minutes)).isoformat(),
    }
    if event_type in PRODUCT_TYPES or event_type is EventType.RATING_SUBMITTED:
        event.setdefault("product_id", "p1")
    if event_type in GROUP_TYPES:
        event.setdefault("group_id", "g1")
    if event_type is EventType.RATING_SUBMITTED:
        event.setdefault("rating", 4)
    if event_type is EventType.PRODUCT_SEARCH:
        event.setdefault("query", "phone")
    if event_type is EventType.RECOMMENDATION_SHOWN:
        event.update(recommendation_id=f"r-{event_id}", variant="blend")
        event["items"] = [{"kind": "product", "id": "p1", "position": 1}]
    event.update(fields)
    return event


def shown_items(*items: str) -> list[dict[str, Any]]:
    """The ``items`` of a ``recommendation_shown`` record: ``p1`` a product, ``g:1`` a group."""
    return [
        {"kind": "group", "id": i[2:], "position": n}
        if i.startswith("g:")
        else {"kind": "product", "id": i, "position": n}
        for n, i in enumerate(items, start=1)
    ]


# lists shown and what follows them, more often than among all types (attribution tests)
ATTRIBUTION_TYPES = [
    *[EventType.RECOMMENDATION_SHOWN] * 3,
    EventType.PRODUCT_VIEW,
    EventType.GROUP_VIEW,
    EventType.ADD_TO_CART,
    EventType.PURCHASE_COMPLETED,
    EventType.GROUP_JOIN_COMPLETE,
    EventType.PAGE_VIEW,
]


@st.composite
def event_dicts(
    draw: st.DrawFn,
    index: int,
    users: int = 3,
    span_minutes: float = 60 * 24 * 30,
    types: list[EventType] | None = None,
) -> dict[str, Any]:
    event_type = draw(st.sampled_from(types or list(EventType)))
    fields: dict[str, Any] = {}
    if event_type in PRODUCT_TYPES or event_type is EventType.RATING_SUBMITTED:
        fields["product_id"] = f"p{draw(st.integers(0, 8))}"
    if event_type in GROUP_TYPES:
        fields["group_id"] = f"g{draw(st.integers(0, 4))}"
    if event_type is EventType.RATING_SUBMITTED:
        fields["rating"] = draw(st.integers(1, 5))
    if event_type is EventType.RECOMMENDATION_SHOWN:  # lists r0..r3, by two variants
        pool = [*(f"p{n}" for n in range(9)), *(f"g:g{n}" for n in range(5))]
        fields["items"] = shown_items(
            *draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6, unique=True))
        )
        fields["recommendation_id"] = f"r{draw(st.integers(0, 3))}"
        fields["variant"] = draw(st.sampled_from(["blend", "ranker"]))
    elif draw(st.integers(0, 3)) == 0:  # an event that follows a list, or names an unknown one
        fields["recommendation_id"] = f"r{draw(st.integers(0, 4))}"
    if draw(st.booleans()):
        fields["category"] = f"c{draw(st.integers(0, 5))}"
    return make_event(
        f"e{index}",
        event_type,
        f"u{draw(st.integers(0, users - 1))}",
        minutes=draw(st.floats(0, span_minutes)),
        **fields,
    )


@st.composite
def event_logs(
    draw: st.DrawFn,
    max_size: int = 60,
    span_minutes: float = 60 * 24 * 30,
    types: list[EventType] | None = None,
) -> list[dict[str, Any]]:
    size = draw(st.integers(1, max_size))
    events = [draw(event_dicts(i, span_minutes=span_minutes, types=types)) for i in range(size)]
    # producer duplicates: some events sent again later in the log
    for original in draw(st.lists(st.sampled_from(events), max_size=5)):
        events.append(dict(original))
    return events
