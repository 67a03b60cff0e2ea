"""Bad records for the dead-letter scenarios: each kind with the reason the contract gives it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from faults.driver import Outgoing, now_ms

HOUR_MS = 3_600_000


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + "+00:00"


def _valid(event: Mapping[str, Any], n: int) -> dict[str, Any]:
    return {**event, "event_id": f"poison-{n}"}


def invalid_json(event: Mapping[str, Any], n: int) -> Outgoing:
    value = b'{"event_id": "poison-' + str(n).encode() + b'", "event_type": "product_view", '
    return Outgoing(str(event["user_id"]).encode(), value, tag="poison:invalid_json")


def schema_violation(event: Mapping[str, Any], n: int) -> Outgoing:
    bad = {k: v for k, v in _valid(event, n).items() if k not in ("product_id", "group_id")}
    bad["event_type"] = "product_view"  # a product view without a product
    return Outgoing(
        str(event["user_id"]).encode(), orjson.dumps(bad), tag="poison:schema_violation"
    )


def unknown_type(event: Mapping[str, Any], n: int) -> Outgoing:
    bad = {**_valid(event, n), "event_type": "teleport"}
    return Outgoing(
        str(event["user_id"]).encode(), orjson.dumps(bad), tag="poison:unknown_event_type"
    )


def oversize(event: Mapping[str, Any], n: int) -> Outgoing:
    bad = {**_valid(event, n), "padding": "x" * 17_000}
    return Outgoing(str(event["user_id"]).encode(), orjson.dumps(bad), tag="poison:oversize")


def tombstone(event: Mapping[str, Any], n: int) -> Outgoing:
    return Outgoing(str(event["user_id"]).encode(), None, tag="poison:empty")


def key_mismatch(event: Mapping[str, Any], n: int) -> Outgoing:
    value = orjson.dumps(_valid(event, n))
    return Outgoing(f"not-{event['user_id']}".encode(), value, tag="poison:key_mismatch")


def future_event(event: Mapping[str, Any], n: int) -> Outgoing:
    stamp = now_ms()
    bad = {**_valid(event, n), "occurred_at": _iso(stamp + HOUR_MS)}
    return Outgoing(
        str(event["user_id"]).encode(), orjson.dumps(bad), stamp, tag="poison:future_event"
    )


POISONS: tuple[Callable[[Mapping[str, Any], int], Outgoing], ...] = (
    invalid_json,
    schema_violation,
    unknown_type,
    oversize,
    tombstone,
    key_mismatch,
    future_event,
)


def expected_reason(tag: str) -> str | None:
    return tag.split(":", 1)[1] if tag.startswith("poison:") else None
