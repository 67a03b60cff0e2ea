"""An in-memory :class:`~recstream.store.port.StateStore` for unit tests and offline evaluation.

It applies the same shard operations as the Redis Lua script (``lua/apply_op.lua``), in
the same order, so the two stores hold equal values for the same batches (expiry is not
modelled); ``tests/shard_op_cases.py`` holds the cases both are checked against.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Any

from recstream.contract.keyspace import Keyspace
from recstream.model.decay import log_add, log_subtract
from recstream.model.state import UserState, Watermark
from recstream.plan.erasure import ErasurePlan, erased_at
from recstream.plan.shards import Op, ShardOp
from recstream.store.port import BatchCommit, BatchState, StateLostError, WatermarkConflictError
from recstream.store.reads import (
    FieldsRead,
    HashRead,
    Read,
    StringRead,
    StringsRead,
    TopRead,
    UserRead,
)


class MemoryStore:
    def __init__(self, keyspace: Keyspace | None = None) -> None:
        self.keyspace = keyspace or Keyspace()
        self.users: dict[str, UserState] = {}
        self.watermarks: dict[str, dict[int, int]] = {}
        self.zsets: dict[str, dict[str, float]] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        self.strings: dict[str, str] = {}

    async def load_batch(self, user_ids: Sequence[str], topic: str, partition: int) -> BatchState:
        # copies, as a real store returns: the batch fold takes ownership of what it loads
        users = {u: _copy_or_new(self.users.get(u), u) for u in user_ids}
        marks: dict[int, int] = {}
        for shard in range(self.keyspace.shards):
            mark = self.hashes.get(self.keyspace.shard_watermarks(shard, topic), {}).get(
                str(partition)
            )
            if mark is not None:
                marks[shard] = int(mark)
        records = self.hashes.get(self.keyspace.erasures(), {})
        erasures = {u: erased_at(records[u]) for u in user_ids if u in records}
        return BatchState(users, marks, erasures)

    async def commit_batch(self, commit: BatchCommit) -> None:
        mark = self.watermarks.get(commit.topic, {}).get(commit.partition)
        if commit.read_from is not None and commit.read_from > (
            commit.log_start if mark is None else mark + 1
        ):
            raise StateLostError(commit.topic, commit.partition, mark)
        for write in commit.writes:
            current = self.users.get(write.state.user_id)
            if (current.watermark if current else None) != write.expected:
                raise WatermarkConflictError(write.state.user_id)
        partition = str(commit.partition)
        for shard in commit.shards:
            marks = self.hashes.get(self.keyspace.shard_watermarks(shard.shard, commit.topic), {})
            if int(marks.get(partition, -1)) != shard.expected:
                raise WatermarkConflictError(f"shard {shard.shard}")
        for shard in commit.shards:
            for op in shard.ops:
                self._apply(op)
            key = self.keyspace.shard_watermarks(shard.shard, commit.topic)
            self.hashes.setdefault(key, {})[partition] = str(commit.last_offset)
        for write in commit.writes:
            self.users[write.state.user_id] = write.state.copy()
        partitions = self.watermarks.setdefault(commit.topic, {})
        partitions[commit.partition] = max(partitions.get(commit.partition, -1), commit.last_offset)

    def _apply(self, op: ShardOp) -> None:
        """One op as ``store/lua/apply_op.lua`` runs it on Redis, where an emptied sorted set
        is no key and a ``SET`` replaces a key of any type (the shared table of cases,
        ``tests/shard_op_cases.py``, checks the two against each other)."""
        if op.code == Op.ADD:
            zset = self.zsets.setdefault(op.key, {})
            score = zset.get(str(op.a))
            zset[str(op.a)] = float(op.b) if score is None else log_add(score, float(op.b))
        elif op.code == Op.SUBTRACT:
            zset = self.zsets.get(op.key, {})
            score = zset.pop(str(op.a), None)
            left = None if score is None else log_subtract(score, float(op.b))
            if left is not None:
                zset[str(op.a)] = left
            self._drop_if_empty(op.key)
        elif op.code == Op.KEEP_LATEST:
            zset = self.zsets.setdefault(op.key, {})
            zset[str(op.a)] = max(zset.get(str(op.a), float("-inf")), float(op.b))
        elif op.code == Op.BOUND:
            # Expiry is not modelled in memory, but a TTL that is no number fails here as it
            # does in the script (whose ``tonumber(b) > 0`` compares nil with a number).
            float(op.b)
            zset = self.zsets.get(op.key, {})
            excess = len(zset) - int(op.a)
            if excess > 0:
                for member, _ in sorted(zset.items(), key=lambda kv: (kv[1], kv[0]))[:excess]:
                    del zset[member]
            self._drop_if_empty(op.key)
        elif op.code == Op.SET:
            self.zsets.pop(op.key, None)
            self.hashes.pop(op.key, None)
            self.strings[op.key] = str(op.a)
        elif op.code == Op.SET_FIELD:
            self.hashes.setdefault(op.key, {})[str(op.a)] = str(op.b)
        elif op.code == Op.INCREMENT:
            fields = self.hashes.setdefault(op.key, {})
            fields[str(op.a)] = str(int(fields.get(str(op.a), "0")) + int(op.b))
        elif op.code == Op.REMOVE:
            self.zsets.get(op.key, {}).pop(str(op.a), None)
            self._drop_if_empty(op.key)
        elif op.code == Op.DELETE:
            self.strings.pop(op.key, None)
            self.zsets.pop(op.key, None)
            self.hashes.pop(op.key, None)

    def _drop_if_empty(self, key: str) -> None:
        if key in self.zsets and not self.zsets[key]:
            del self.zsets[key]

    async def erase_user(
        self, plan: ErasurePlan, expected: Watermark | None, record: bytes
    ) -> bool:
        current = self.users.get(plan.user_id)
        if (current.watermark if current else None) != expected:
            raise WatermarkConflictError(plan.user_id)
        records = self.hashes.setdefault(self.keyspace.erasures(), {})
        if current is None and plan.user_id in records:
            if plan.erased_at > erased_at(records[plan.user_id]):
                records[plan.user_id] = record.decode()
            return False
        for op in plan.ops:
            self._apply(op)
        self.users.pop(plan.user_id, None)
        records[plan.user_id] = record.decode()
        return True

    async def erasure_progress(self, user_id: str) -> dict[int, int]:
        return {}  # an erasure here is one atomic step

    async def erasures(self, user_ids: Sequence[str]) -> dict[str, float]:
        records = self.hashes.get(self.keyspace.erasures(), {})
        return {u: erased_at(records[u]) for u in user_ids if u in records}

    async def claim_merge(self, anonymous_id: str, user_id: str, seconds: float) -> str:
        # no clock here: a claim lasts until released (the memory store serves tests)
        return self.strings.setdefault(self.keyspace.merge_claim(anonymous_id), user_id)

    async def release_merge(self, anonymous_id: str) -> None:
        self.strings.pop(self.keyspace.merge_claim(anonymous_id), None)

    async def erasure_log_position(self) -> dict[int, int]:
        stored = self.hashes.get(self.keyspace.erasure_log(), {})
        return {int(p): int(o) for p, o in stored.items()}

    async def set_erasure_log_position(self, position: Mapping[int, int]) -> None:
        stored = self.hashes.setdefault(self.keyspace.erasure_log(), {})
        stored.update({str(p): str(o) for p, o in position.items()})

    async def get_user(self, user_id: str) -> UserState | None:
        state = self.users.get(user_id)
        return state.copy() if state else None

    async def read(self, requests: Sequence[Read]) -> list[Any]:
        return [self._read(r) for r in requests]

    def _read(self, request: Read) -> Any:
        if isinstance(request, UserRead):
            state = self.users.get(request.user_id)
            return state.copy() if state else None
        if isinstance(request, TopRead):
            zset = self.zsets.get(request.key, {})
            # as ZREVRANGE: by score, then member, both descending (members are unique)
            return heapq.nlargest(request.n, zset.items(), key=_by_score_then_member)
        if isinstance(request, StringRead):
            return self.strings.get(request.key)
        if isinstance(request, StringsRead):
            return [self.strings.get(key) for key in request.keys]
        if isinstance(request, HashRead):
            return dict(self.hashes.get(request.key, {}))
        assert isinstance(request, FieldsRead)
        fields = self.hashes.get(request.key, {})
        return [fields.get(f) for f in request.fields]

    async def partition_watermarks(self, topic: str) -> dict[int, int]:
        return dict(self.watermarks.get(topic, {}))


def _by_score_then_member(kv: tuple[str, float]) -> tuple[float, str]:
    return kv[1], kv[0]


def _copy_or_new(state: UserState | None, user_id: str) -> UserState:
    return state.copy() if state is not None else UserState(user_id=user_id)
