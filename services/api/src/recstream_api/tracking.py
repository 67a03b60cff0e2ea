"""From a track request body to records ready for the interactions topic.

A body is one event or ``{"events": [...]}``. Every event is checked against
the contract, with the JSON types the OpenAPI document states (strict: ``"price":
false`` or ``"quantity": "3"`` is refused, not converted), and against the
lateness rule (the core's ``check_event_time`` with the server clock as the
arrival time). A batch is accepted event by event: the valid events are published
and each bad one is reported with its index and reasons (``?atomic=true`` asks for
all or nothing); a single event, a batch of nothing but bad events, or an atomic
batch with a bad event is refused whole (422), with a message for each bad event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from recstream.apply.batch import check_event_time
from recstream.contract.events import (
    EVENT_ADAPTER,
    MAX_EVENT_BYTES,
    WRITTEN_BY_API,
    Event,
    EventError,
    encode_event,
)
from recstream.model.config import CoreConfig
from recstream_api.exceptions import InvalidEventsError, InvalidRequestError
from recstream_api.publisher import OutgoingRecord


def split_body(body: dict[str, Any], max_events: int) -> list[Any]:
    """The raw events of a body: the ``events`` list of a batch, or the body itself."""
    if "events" not in body:
        return [body]
    events = body["events"]
    if len(body) != 1 or not isinstance(events, list):
        raise InvalidRequestError("a batch body is exactly {'events': [event, ...]}")
    if not 1 <= len(events) <= max_events:
        raise InvalidRequestError(f"a batch holds 1 to {max_events} events, not {len(events)}")
    return events


def validation_problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "loc": ".".join(str(p) for p in err["loc"]) or "event",
            "msg": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False)
    ]


def _check_one(raw: Any, received_at: float, config: CoreConfig) -> Event:
    if not isinstance(raw, dict):
        raise EventError("not_an_object", "an event is a JSON object")
    # strict JSON validation: JSON's own types, no conversions (datetimes as ISO strings)
    event = EVENT_ADAPTER.validate_json(json.dumps(raw), strict=True)
    if event.event_type in WRITTEN_BY_API:
        raise EventError(
            "written_by_the_api",
            f"{event.event_type} records are written by the API when it returns "
            "recommendations; send the events that follow with their recommendation_id",
        )
    check_event_time(event, received_at, config)
    size = len(encode_event(event))
    if size > MAX_EVENT_BYTES:
        raise EventError("oversize", f"{size} bytes encoded > {MAX_EVENT_BYTES}")
    return event


def check_events(
    raw_events: Sequence[Any], received_at: float, config: CoreConfig
) -> tuple[list[Event], list[dict[str, Any]]]:
    """The valid events, and each bad one's ``index``, ``event_id`` and ``errors``."""
    events: list[Event] = []
    bad: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        try:
            events.append(_check_one(raw, received_at, config))
        except ValidationError as exc:
            bad.append({"index": index, "event_id": event_id, "errors": validation_problems(exc)})
        except EventError as exc:
            problem = {"loc": "event", "msg": exc.detail, "type": exc.reason}
            if exc.reason == "future_event":
                problem["loc"] = "occurred_at"
            bad.append({"index": index, "event_id": event_id, "errors": [problem]})
    return events, bad


def refusal(bad: Sequence[dict[str, Any]], total: int) -> InvalidEventsError:
    return InvalidEventsError(
        f"{len(bad)} of {total} events are invalid; nothing was published", details=list(bad)
    )


def to_records(events: Sequence[Event]) -> list[OutgoingRecord]:
    """One record per event, keyed by ``user_id`` (per-user order, one writer per user)."""
    return [OutgoingRecord(key=e.user_id.encode(), value=encode_event(e)) for e in events]
