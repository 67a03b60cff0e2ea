"""Fuzzing the decoders of the two topics: whatever bytes arrive, ``decode_event`` and
``decode_catalog_record`` either return a value or raise ``EventError`` with a known reason.

Nothing else may escape: the consumer dead-letters an ``EventError`` and goes on, but
any other exception would stop the partition. The inputs are structured (JSON objects
with the contract's keys and values of every JSON type, extreme dates with offsets,
huge and non-ASCII strings, nested junk) and unstructured (raw and broken bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import hypothesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recstream.contract.catalog import decode_catalog_record, to_catalog_item
from recstream.contract.events import (
    MAX_EVENT_BYTES,
    EventError,
    EventType,
    decode_event,
    encode_event,
)

T = TypeVar("T")

EVENT_REASONS = {"oversize", "invalid_json", "unknown_event_type", "schema_violation"}
CATALOG_REASONS = {"oversize", "schema_violation"}

EVENT_KEYS = [
    "schema_version",
    "event_id",
    "event_type",
    "user_id",
    "session_id",
    "occurred_at",
    "product_id",
    "group_id",
    "category",
    "price",
    "quantity",
    "rating",
    "query",
    "properties",
]
CATALOG_KEYS = [
    "op",
    "updated_at",
    "kind",
    "product_id",
    "group_id",
    "category",
    "price",
    "name",
    "attributes",
    "in_stock",
    "created_at",
    "group_price",
    "target_size",
    "current_size",
    "closes_at",
    "status",
]

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- values -----------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _huge(unit: str) -> st.SearchStrategy[str]:
    return st.integers(min_value=100, max_value=MAX_EVENT_BYTES + 100).map(lambda n: unit * n)


huge_strings = st.sampled_from(["x", "é", "\U0001f600", " ", "{", "\\"]).flatmap(_huge)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
datetimes = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    offsets,
)
timestamps = st.one_of(
    datetimes.map(lambda d: d.isoformat()),
    datetimes.map(lambda d: d.replace(tzinfo=None).isoformat()),  # naive: refused
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-03-14T25:00:00Z",
            "now",
            "",
        ]
    ),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(),
)
ids = st.one_of(
    st.text(min_size=1, max_size=10),
    st.text(alphabet="abc-_.:", min_size=1, max_size=10),
    st.sampled_from(["u-1", "{u:1}", "a|b", " padded ", "x" * 129, "\x00", "\u202e"]),
)
plausible = {
    "schema_version": st.sampled_from([1, 2, "1", None]),
    "event_type": st.sampled_from([*(e.value for e in EventType), "PRODUCT_VIEW", "nope"]),
    "occurred_at": timestamps,
    "updated_at": timestamps,
    "created_at": timestamps,
    "closes_at": timestamps,
    "event_id": ids,
    "user_id": ids,
    "session_id": ids,
    "product_id": ids,
    "group_id": ids,
    "kind": st.sampled_from(["product", "group", "PRODUCT", 1]),
    "op": st.sampled_from(["upsert", "delete", "merge"]),
    "status": st.sampled_from(["open", "full", "closed", "cancelled", "gone"]),
    "price": st.floats() | st.integers(min_value=-(2**70), max_value=2**70),
    "rating": st.integers(min_value=-10, max_value=10),
    "properties": st.dictionaries(st.text(max_size=70), scalars | junk, max_size=20),
    "attributes": st.dictionaries(st.text(max_size=70), scalars | junk, max_size=40),
}


def _value(key: str) -> st.SearchStrategy[Any]:
    choices = [junk, huge_strings]
    if key in plausible:
        choices.insert(0, plausible[key])
    return st.one_of(*choices)


def objects(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with some of the contract's keys (plausible or wrong values) and extra ones."""
    known = st.fixed_dictionaries({}, optional={key: _value(key) for key in keys})
    extra = st.dictionaries(st.text(max_size=12), junk, max_size=3)
    return st.builds(lambda a, b: {**b, **a}, known, st.one_of(st.just({}), extra))


def _valid_event(event_type: EventType) -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "event_type": event_type.value,
        "user_id": "u-1",
        "occurred_at": "2025-03-14T09:00:00+00:00",
        "product_id": "p-1",
        "group_id": "g-1",
        "rating": 4,
        "query": "rice cooker",
    }


VALID_CATALOG = [
    {"kind": "product", "product_id": "p-1", "category": "kitchen", "price": 9.5},
    {"kind": "group", "group_id": "g-1", "product_id": "p-1", "target_size": 5},
]


def mutated(bases: st.SearchStrategy[dict[str, Any]], keys: list[str]) -> st.SearchStrategy[Any]:
    """A valid object with one to three keys given other values or removed."""

    def change(base: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
        result = dict(base)
        for key in data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3)):
            if data.draw(st.integers(0, 4)) == 0:
                result.pop(key, None)
            else:
                result[key] = data.draw(_value(key))
        return result

    return st.builds(change, bases, st.data())


def _dumps(value: Any, ascii_only: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", errors="surrogatepass")  # lone surrogates: invalid UTF-8


def encoded(values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return st.builds(_dumps, values, st.booleans())


def broken(raw: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Valid-looking JSON, cut short or with a byte flipped."""

    def damage(data: bytes, where: int, mode: int) -> bytes:
        if not data:
            return data
        at = where % len(data)
        if mode == 0:
            return data[:at]
        if mode == 1:
            return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
        return data[:at] + b"\x00" + data[at:]

    return st.builds(damage, raw, st.integers(min_value=0), st.integers(0, 2))


def inputs(keys: list[str], bases: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    shaped = encoded(objects(keys))
    return st.one_of(
        encoded(mutated(bases, keys)),
        shaped,
        broken(shaped),
        encoded(junk),
        st.binary(max_size=200),
        st.builds(lambda n: b"[" * n, st.integers(1, 5000)),  # deep nesting
        st.builds(lambda n: b'{"a":' * n, st.integers(1, 5000)),
    )


# --- properties -------------------------------------------------------------------------

VALID_EVENT = {
    "event_id": "e-1",
    "event_type": "product_view",
    "user_id": "u-1",
    "occurred_at": "2025-03-14T09:00:00+00:00",
    "product_id": "p-1",
}


def outcome(decode: Callable[[bytes], T], raw: bytes) -> T | EventError:
    """The decoded value or the ``EventError``; any other exception propagates (a failure)."""
    try:
        return decode(raw)
    except EventError as exc:
        hypothesis.event(f"refused: {exc.reason}")
        return exc


@FUZZ
@given(inputs(EVENT_KEYS, st.sampled_from(list(EventType)).map(_valid_event)))
@example(json.dumps({**VALID_EVENT, "occurred_at": "0001-01-01T00:00:00+01:00"}).encode())
@example(json.dumps({**VALID_EVENT, "occurred_at": "9999-12-31T23:59:59-01:00"}).encode())
@example(json.dumps(VALID_EVENT).encode())
def test_decode_event_returns_an_event_or_a_reason(raw: bytes) -> None:
    event = outcome(decode_event, raw)
    if isinstance(event, EventError):
        assert event.reason in EVENT_REASONS
        assert event.detail
        return
    hypothesis.event("decoded")
    # what decodes is a contract event that survives its own encoding
    assert event.occurred_at.tzinfo is UTC
    assert decode_event(encode_event(event)) == event


@FUZZ
@given(inputs(CATALOG_KEYS, st.sampled_from(VALID_CATALOG)))
@example(b'{"kind": "product", "product_id": "p", "updated_at": "0001-01-01T00:00:00+01:00"}')
@example(b'{"kind": "group", "group_id": "g", "closes_at": "9999-12-31T23:59:59-01:00"}')
def test_decode_catalog_record_returns_a_record_or_a_reason(raw: bytes) -> None:
    record = outcome(decode_catalog_record, raw)
    if isinstance(record, EventError):
        assert record.reason in CATALOG_REASONS
        assert record.detail
        return
    hypothesis.event("decoded")
    # what decodes can be applied: the catalog item the consumer stores is built from it
    assert to_catalog_item(record).item == record.item


@given(st.integers(min_value=MAX_EVENT_BYTES + 1, max_value=4 * MAX_EVENT_BYTES))
@settings(max_examples=20)
def test_oversize_is_refused_before_parsing(size: int) -> None:
    raw = b"{" + b" " * (size - 2) + b"}"
    for decode in (decode_event, decode_catalog_record):
        refused = outcome(decode, raw)
        assert isinstance(refused, EventError), f"{decode.__name__} accepted {size} bytes"
        assert refused.reason == "oversize"
