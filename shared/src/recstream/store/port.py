"""The storage port: what the batch-apply core and the API need from a store.

The Redis adapter (:mod:`recstream.store.redis`) and the in-memory fake
(:mod:`recstream.store.memory`) implement it with the same semantics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from recstream.contract.keyspace import Keyspace
from recstream.model.state import UserState, Watermark
from recstream.plan.erasure import ErasurePlan
from recstream.plan.shards import ShardWrite


class StoreError(RuntimeError):
    """Base of storage errors."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached now; the same call may succeed later."""


class WatermarkConflictError(StoreError):
    """A user's stored watermark moved since it was read: another writer applied events."""


class StateLostError(StoreError):
    """A batch does not continue its partition: the store lacks records before ``read_from``.

    Either the partition has no watermark and the batch was not read from the log start
    (the store came back empty), or its watermark is below ``read_from - 1`` (the store
    went back in time). ``watermark`` is the stored one, None when there is none; the
    records from ``watermark + 1`` (or the log start) must be applied first.
    """

    def __init__(self, topic: str, partition: int, watermark: int | None) -> None:
        self.topic = topic
        self.partition = partition
        self.watermark = watermark
        stored = "no watermark" if watermark is None else f"watermark {watermark}"
        super().__init__(f"{topic}[{partition}] has {stored}: the batch does not continue it")


@dataclass(frozen=True, slots=True)
class UserWrite:
    state: UserState
    expected: Watermark | None  # the watermark that was read, None when the user was absent


@dataclass(frozen=True, slots=True)
class BatchCommit:
    """One partition batch's writes.

    ``read_from`` is the offset from which the writer read the partition without a break
    up to this batch (the batch's first offset, or lower). With it the store checks that
    the batch continues the partition: ``read_from <= watermark + 1``, or, when the
    partition has no watermark, ``read_from <= log_start`` (the partition's first offset
    in the log). None skips the check (a replay that lays out its own log).
    """

    topic: str
    partition: int
    last_offset: int
    writes: Sequence[UserWrite]
    shards: Sequence[ShardWrite] = ()
    read_from: int | None = None
    log_start: int = 0


@dataclass(frozen=True, slots=True)
class BatchState:
    """What a batch reads before folding: its users and the partition's shard watermarks."""

    users: Mapping[str, UserState]
    shard_marks: Mapping[int, int]
    erasures: Mapping[str, float]  # erased_at of the batch's users that were erased


class StateStore(Protocol):
    @property
    def keyspace(self) -> Keyspace: ...

    async def load_batch(self, user_ids: Sequence[str], topic: str, partition: int) -> BatchState:
        """The stored state of each user (a fresh state for unknown users) and every
        statistic shard's watermark for ``partition`` of ``topic``."""
        ...

    async def commit_batch(self, commit: BatchCommit) -> None:
        """Apply the shard writes and the users' new states, and advance the watermarks.

        Raises :class:`WatermarkConflictError` (and writes nothing) when a user's or a
        shard's stored watermark is not the expected one, and :class:`StateLostError`
        (writing nothing) when the batch does not continue its partition (see
        :class:`BatchCommit`).
        """
        ...

    async def get_user(self, user_id: str) -> UserState | None: ...

    async def erase_user(
        self, plan: ErasurePlan, expected: Watermark | None, record: bytes
    ) -> bool:
        """Apply an erasure plan: subtract the user's contributions, delete the user's
        state and store the erasure ``record`` (atomically, or on a Redis Cluster in
        idempotent steps, see :meth:`erasure_progress`). False when the user was already
        erased and has no state (the record is replaced when this erasure is the later);
        raises :class:`WatermarkConflictError` when the state moved.
        """
        ...

    async def erasure_progress(self, user_id: str) -> dict[int, int]:
        """Shard -> user offset up to which an interrupted erasure of ``user_id`` already
        subtracted the user's contributions from the shard (for ``plan_erasure(done=...)``).
        Empty where an erasure is one atomic step (one Redis primary, memory)."""
        ...

    async def erasures(self, user_ids: Sequence[str]) -> dict[str, float]:
        """``erased_at`` of those of ``user_ids`` that were erased."""
        ...

    async def claim_merge(self, anonymous_id: str, user_id: str, seconds: float) -> str:
        """Claim ``anonymous_id`` for a merge into ``user_id`` for ``seconds`` unless another
        merge holds it; returns the user the claim is for (``user_id`` when it is ours)."""
        ...

    async def release_merge(self, anonymous_id: str) -> None:
        """Drop the claim of a merge that is done."""
        ...

    async def erasure_log_position(self) -> dict[int, int]:
        """Partition -> next offset of the erasure log restored into this store (empty:
        nothing restored, or the store lost it)."""
        ...

    async def set_erasure_log_position(self, position: Mapping[int, int]) -> None: ...

    async def partition_watermarks(self, topic: str) -> dict[int, int]: ...
