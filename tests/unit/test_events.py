from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from recstream.contract.events import (
    MAX_EVENT_BYTES,
    EventError,
    EventType,
    decode_event,
    encode_event,
    validate_event,
)

from .eventgen import make_event


def _raw(event: dict[str, object]) -> bytes:
    return json.dumps(event).encode()


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_type_round_trips(event_type: EventType) -> None:
    event = decode_event(_raw(make_event("e1", event_type)))
    assert event.event_type == event_type
    assert decode_event(encode_event(event)) == event


def test_product_view_without_product_is_a_schema_violation() -> None:
    event = make_event("e1", EventType.PRODUCT_VIEW)
    del event["product_id"]
    with pytest.raises(EventError) as caught:
        decode_event(_raw(event))
    assert caught.value.reason == "schema_violation"
    assert "product_id" in caught.value.detail


def test_rating_needs_a_rating_in_range() -> None:
    with pytest.raises(EventError, match="rating"):
        decode_event(_raw(make_event("e1", EventType.RATING_SUBMITTED, rating=6)))


def test_naive_timestamps_are_rejected() -> None:
    event = make_event("e1", EventType.PAGE_VIEW, occurred_at="2026-11-01T10:00:00")
    with pytest.raises(EventError) as caught:
        decode_event(_raw(event))
    assert caught.value.reason == "schema_violation"


def test_timestamps_are_normalised_to_utc() -> None:
    event = make_event("e1", EventType.PAGE_VIEW, occurred_at="2026-11-01T10:00:00+02:00")
    assert decode_event(_raw(event)).occurred_at.isoformat() == "2026-11-01T08:00:00+00:00"


def test_unknown_type_and_bad_json_have_their_own_reasons() -> None:
    with pytest.raises(EventError) as unknown:
        decode_event(_raw(make_event("e1", EventType.PAGE_VIEW) | {"event_type": "teleport"}))
    assert unknown.value.reason == "unknown_event_type"
    with pytest.raises(EventError) as bad_json:
        decode_event(b"{not json")
    assert bad_json.value.reason == "invalid_json"


PLAIN_NAMES = ", ".join(t.value for t in EventType)


def test_an_unknown_type_is_told_the_valid_type_names_plainly() -> None:
    raw = make_event("e1", EventType.PAGE_VIEW) | {"event_type": "teleport"}
    with pytest.raises(EventError) as decoded:
        decode_event(_raw(raw))
    with pytest.raises(ValidationError) as validated:
        validate_event(raw)
    (error,) = validated.value.errors(include_url=False)
    assert error["type"] == "union_tag_invalid"
    for message in (decoded.value.detail, error["msg"]):
        assert "'teleport'" in message
        assert message.endswith(f"expected tags: {PLAIN_NAMES}")
        assert "<EventType" not in message
    assert decode_event(_raw(make_event("e2", EventType.PAGE_VIEW))).event_id == "e2"


def test_other_errors_keep_pydantic_s_own_messages() -> None:
    event = make_event("e1", EventType.PRODUCT_VIEW)
    del event["product_id"]
    with pytest.raises(ValidationError) as caught:
        validate_event(event)
    assert "product_id" in str(caught.value)
    with pytest.raises(EventError) as missing:
        decode_event(_raw({"event_id": "e1", "user_id": "u"}))
    assert missing.value.reason == "unknown_event_type"
    assert "Unable to extract tag" in missing.value.detail


def test_oversize_messages_are_rejected_before_parsing() -> None:
    with pytest.raises(EventError) as caught:
        decode_event(b" " * (MAX_EVENT_BYTES + 1))
    assert caught.value.reason == "oversize"


def test_unknown_fields_and_big_property_maps_are_rejected() -> None:
    with pytest.raises(EventError):
        decode_event(_raw(make_event("e1", EventType.PAGE_VIEW, surprise=1)))
    props = {f"k{i}": i for i in range(17)}
    with pytest.raises(EventError, match="properties"):
        decode_event(_raw(make_event("e1", EventType.PAGE_VIEW, properties=props)))


def test_ids_may_not_break_the_redis_hash_tag() -> None:
    with pytest.raises(EventError):
        decode_event(_raw(make_event("e1", EventType.PAGE_VIEW, user_id="a}b")))


def test_group_events_are_about_the_group_even_with_a_product() -> None:
    event = decode_event(_raw(make_event("e1", EventType.GROUP_VIEW, product_id="p9")))
    assert event.item_key == "g:g1"
    view = decode_event(_raw(make_event("e2", EventType.PRODUCT_VIEW, group_id="g2")))
    assert view.item_key == "p:p1"


@given(st.binary(max_size=512))
def test_any_bytes_decode_or_fail_with_a_reason(raw: bytes) -> None:
    reason = None
    try:
        decode_event(raw)
    except EventError as exc:
        reason = exc.reason
    assert reason in {None, "invalid_json", "schema_violation", "unknown_event_type"}
