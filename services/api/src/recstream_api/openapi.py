"""The OpenAPI document, with the event contract as the track request's body schema.

The track route reads its body as plain JSON so that each bad event gets its
own message; this module puts the real schema (one event of the discriminated
union, or ``{"events": [...]}``) into the document. Every operation that needs
credentials also documents the rate limit's answer (429 with ``Retry-After``,
:mod:`recstream_api.ratelimit`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field, TypeAdapter

from recstream.contract.events import Event

TRACK_PATH = "/api/behavioral-ml/track-interaction"


class TrackBatchRequest(BaseModel):
    """A batch of events, accepted event by event (``?atomic=true``: all or nothing)."""

    events: list[Event] = Field(min_length=1)


def add_track_request_schema(document: dict[str, Any]) -> None:
    """Put the event contract into ``document`` as the track route's body schema (idempotent)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if "TrackBatchRequest" in schemas:
        return
    body = TypeAdapter(Event | TrackBatchRequest).json_schema(
        ref_template="#/components/schemas/{model}"
    )
    schemas.update(body.pop("$defs", {}))
    content = document["paths"][TRACK_PATH]["post"]["requestBody"]["content"]["application/json"]
    content["schema"] = {**body, "title": "TrackRequest"}


RATE_LIMITED: dict[str, Any] = {
    "description": "The caller's rate limit is used up; retry after Retry-After seconds",
    "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def add_rate_limit_responses(document: dict[str, Any]) -> None:
    """Document 429 on every operation that names a security scheme (idempotent)."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and operation.get("security"):
                operation.setdefault("responses", {}).setdefault("429", RATE_LIMITED)


class BehavioralApi(FastAPI):
    """FastAPI whose OpenAPI document shows the event contract on the track route and the
    rate limit's answer on every authenticated operation."""

    def openapi(self) -> dict[str, Any]:
        document = super().openapi()
        add_track_request_schema(document)
        add_rate_limit_responses(document)
        return document
