"""The storage port: what the batch-apply core and the API need from a store.

The Redis adapter (:mod:`recstream.store`) and the in-memory fake
(:mod:`recstream.memory`) implement it with the same semantics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from recstream.state import UserState, Watermark


class StoreError(RuntimeError):
    """Base of storage errors."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached now; the same call may succeed later."""


class WatermarkConflictError(StoreError):
    """A user's stored watermark moved since it was read: another writer applied events."""


@dataclass(frozen=True, slots=True)
class UserWrite:
    state: UserState
    expected: Watermark | None  # the watermark that was read, None when the user was absent


@dataclass(frozen=True, slots=True)
class BatchCommit:
    topic: str
    partition: int
    last_offset: int
    writes: Sequence[UserWrite]


class StateStore(Protocol):
    async def load_users(self, user_ids: Sequence[str]) -> Mapping[str, UserState]:
        """The stored state of each user (a fresh state for unknown users)."""
        ...

    async def commit_batch(self, commit: BatchCommit) -> None:
        """Write every user's new state and advance the partition watermark atomically.

        Raises :class:`WatermarkConflictError` (and writes nothing) when a user's
        stored watermark is not the expected one.
        """
        ...

    async def get_user(self, user_id: str) -> UserState | None: ...

    async def partition_watermarks(self, topic: str) -> dict[int, int]: ...
