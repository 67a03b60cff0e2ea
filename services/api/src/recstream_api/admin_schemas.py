"""Request and response models of the administrative endpoints: recomputation, erasure and
the learned ranker models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recstream.contract.events import IdStr
from recstream_api.schemas import RankerHealth

_TIME = "2025-03-14T09:26:53.589793Z"
MAX_USERS = 10_000

RecomputeStatusName = Literal[
    "missing", "unchanged", "changed", "incomplete_history", "written", "conflict"
]


class ExtractBatchRequest(BaseModel):
    """Either a list of users, or ``all_users`` with the ``cursor`` of the previous page."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as documented

    user_ids: list[IdStr] | None = Field(
        None, min_length=1, max_length=MAX_USERS, description="at most the configured cap"
    )
    all_users: bool = Field(False, description="walk every stored user, one page per request")
    cursor: str | None = Field(
        None, pattern=r"^[0-9]{1,20}$", description="next_cursor of the previous page"
    )
    page_size: int | None = Field(None, ge=1, le=MAX_USERS, description="default: the cap")
    write: bool = Field(False, description="write changed states back (a newer state wins)")

    @model_validator(mode="after")
    def _one_selection(self) -> ExtractBatchRequest:
        if (self.user_ids is not None) == self.all_users:
            raise ValueError("give either user_ids or all_users: true")
        if self.cursor is not None and not self.all_users:
            raise ValueError("cursor goes with all_users")
        return self


EXTRACT_EXAMPLES: dict[str, Any] = {
    "users": {"summary": "check two users", "value": {"user_ids": ["u-1", "u-2"]}},
    "all": {
        "summary": "recompute every user, first page, and write the changes",
        "value": {"all_users": True, "page_size": 100, "write": True},
    },
    "next_page": {
        "summary": "the next page",
        "value": {"all_users": True, "cursor": "1792", "write": True},
    },
}


class FeatureDifference(BaseModel):
    stored: Any
    recomputed: Any


class UserRecomputation(BaseModel):
    user_id: str
    status: RecomputeStatusName = Field(
        description="missing: nothing stored; unchanged; changed: differs, not written; "
        "incomplete_history: differs but older events left the capped history, never "
        "written; written; conflict: the consumer wrote the user meanwhile and won"
    )
    state_differs: bool
    differences: dict[str, FeatureDifference] = Field(description="features that differ")


class ExtractBatchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "computed_at": _TIME,
                    "write": True,
                    "users": [
                        {
                            "user_id": "u-1",
                            "status": "written",
                            "state_differs": True,
                            "differences": {"categories_explored": {"stored": 3, "recomputed": 4}},
                        }
                    ],
                    "summary": {"written": 1},
                    "next_cursor": "1792",
                }
            ]
        }
    )

    computed_at: datetime
    write: bool
    users: list[UserRecomputation]
    summary: dict[str, int] = Field(description="users per status")
    next_cursor: str | None = Field(description="all_users: the next page's cursor, null at end")


class ErasedData(BaseModel):
    history_events: int = Field(description="events of the stored history removed")
    items: int = Field(description="items with implicit ratings removed")
    sessions: list[str] = Field(description="sessions removed from the shared session index")
    statistic_updates: int = Field(
        description="shared statistics (popularity, transitions, sessions) adjusted"
    )


class ErasureResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u-123",
                    "erased": True,
                    "erased_at": _TIME,
                    "requested_by": "user:u-123",
                    "removed": {
                        "history_events": 42,
                        "items": 17,
                        "sessions": ["s-77"],
                        "statistic_updates": 96,
                    },
                }
            ]
        }
    )

    user_id: str
    erased: bool = Field(description="false: the user was already erased and nothing was stored")
    erased_at: datetime = Field(description="events up to this time are never applied again")
    requested_by: str
    removed: ErasedData


class RankerActivation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as documented

    version: str | None = Field(
        min_length=1,
        max_length=128,
        description="a published model version to serve; null: no model, the blend serves",
    )


ACTIVATION_EXAMPLES: dict[str, Any] = {
    "activate": {"summary": "serve a published model", "value": {"version": "2026-03-01-a"}},
    "deactivate": {"summary": "serve the hand-tuned blend again", "value": {"version": None}},
}


class RankersResponse(BaseModel):
    """The published models, the one the registry names active, and what this process
    serves (the other replicas follow the registry within one poll interval)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "versions": ["2026-02-15-a", "2026-03-01-a"],
                    "active": "2026-03-01-a",
                    "serving": {
                        "enabled": True,
                        "active": "2026-03-01-a",
                        "error": None,
                        "failed_version": None,
                        "checked_at": _TIME,
                    },
                }
            ]
        }
    )

    versions: list[str] = Field(description="the published model versions, sorted")
    active: str | None = Field(description="the version the registry names active; null: blend")
    serving: RankerHealth = Field(description="the ranker this process serves")
