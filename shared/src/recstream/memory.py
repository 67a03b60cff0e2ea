"""An in-memory :class:`~recstream.ports.StateStore` for unit tests and offline evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recstream.ports import BatchCommit, WatermarkConflictError
from recstream.state import UserState


class MemoryStore:
    def __init__(self) -> None:
        self.users: dict[str, UserState] = {}
        self.watermarks: dict[str, dict[int, int]] = {}

    async def load_users(self, user_ids: Sequence[str]) -> Mapping[str, UserState]:
        return {u: self.users.get(u) or UserState(user_id=u) for u in user_ids}

    async def commit_batch(self, commit: BatchCommit) -> None:
        for write in commit.writes:
            current = self.users.get(write.state.user_id)
            if (current.watermark if current else None) != write.expected:
                raise WatermarkConflictError(write.state.user_id)
        for write in commit.writes:
            self.users[write.state.user_id] = write.state.copy()
        marks = self.watermarks.setdefault(commit.topic, {})
        marks[commit.partition] = max(marks.get(commit.partition, -1), commit.last_offset)

    async def get_user(self, user_id: str) -> UserState | None:
        state = self.users.get(user_id)
        return state.copy() if state else None

    async def partition_watermarks(self, topic: str) -> dict[int, int]:
        return dict(self.watermarks.get(topic, {}))
