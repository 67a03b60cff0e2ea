"""The erasure log: one record per erased user on the compacted ``erasures`` topic.

The API writes a user's erasure to the log (key: the user id, value: JSON with
``user_id``, ``erased_at`` in seconds since the epoch and ``requested_by``) before it
erases the user in Redis, so the log, not Redis, is the record of who was erased.
Compaction keeps the latest erasure of every user. Every path that folds events
from the log into a store restores the erasures first (``recstream.apply.operations
.restore_erasures``), so a store rebuilt from the log never brings an erased user back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from recstream.contract.events import MAX_ID_LENGTH


class ErasureNoticeError(ValueError):
    """A record of the erasure log that is not an erasure notice."""


@dataclass(frozen=True, slots=True)
class ErasureNotice:
    user_id: str
    erased_at: float  # seconds since the epoch; the user's events up to it are never applied
    requested_by: str

    def encode(self) -> tuple[bytes, bytes]:
        """The record's key and value."""
        value = {
            "user_id": self.user_id,
            "erased_at": self.erased_at,
            "requested_by": self.requested_by,
        }
        return self.user_id.encode(), orjson.dumps(value)


def decode_notice(key: bytes | None, value: bytes | None) -> ErasureNotice:
    try:
        body = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise ErasureNoticeError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ErasureNoticeError("not a JSON object")
    user_id, erased_at = body.get("user_id"), body.get("erased_at")
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_ID_LENGTH:
        raise ErasureNoticeError("user_id is missing or not a string of 1-128 characters")
    if key is not None and key != user_id.encode():
        raise ErasureNoticeError(f"key {key!r} is not the user id {user_id!r}")
    if isinstance(erased_at, bool) or not isinstance(erased_at, int | float):
        raise ErasureNoticeError("erased_at is missing or not a number")
    if not math.isfinite(erased_at) or erased_at <= 0:
        raise ErasureNoticeError(f"erased_at {erased_at} is not a time")
    requested_by = body.get("requested_by", "")
    return ErasureNotice(user_id, float(erased_at), str(requested_by))
