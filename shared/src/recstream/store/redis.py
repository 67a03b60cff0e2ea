"""The Redis adapter of :class:`~recstream.store.port.StateStore` (the only module doing Redis I/O).

On one Redis primary, a partition batch is committed by one Lua script: it checks
every user's and every touched statistic shard's watermark against the values read
before the fold, then applies the shard writes, the users' new states and the
partition watermark, or writes nothing. On a Redis Cluster, where a script touches
one hash slot, the batch runs as one script per slot, the shards' steps before the
users' (each step idempotent on its own; see ``docs/keyspace.md``), and an erasure
likewise. The scripts are package files, ``lua/*.lua`` beside this module.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import ClusterError, NoScriptError, ResponseError, SlotNotCoveredError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from recstream.contract.keyspace import Keyspace
from recstream.model.state import UserState, Watermark
from recstream.plan.erasure import ErasurePlan, erased_at
from recstream.plan.shards import ShardOp
from recstream.store.port import (
    BatchCommit,
    BatchState,
    StateLostError,
    StoreUnavailableError,
    WatermarkConflictError,
)
from recstream.store.reads import (
    FieldsRead,
    HashRead,
    Read,
    StringRead,
    StringsRead,
    TopRead,
    UserRead,
)


def _lua(name: str) -> str:
    """The script ``lua/<name>.lua`` of this package, without the comment lines it starts with
    (its header, for readers of the file: the text Redis runs, and its SHA1, is the code)."""
    path = resources.files("recstream.store").joinpath("lua", f"{name}.lua")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if not line.startswith("--")), len(lines))
    return "".join(lines[header:])


# Read once per process. One shard operation (see recstream.plan.shards), then each script
# that uses it: the commit of a partition batch and the erasure of a user (the KEYS and
# ARGV of each are described at the top of its file).
APPLY_OP_LUA = _lua("apply_op")
COMMIT_BATCH_LUA = APPLY_OP_LUA + _lua("commit_batch")
ERASE_USER_LUA = APPLY_OP_LUA + _lua("erase_user")
# The per-slot steps of a Redis Cluster (see ClusterSteps).
COMMIT_SHARD_LUA = APPLY_OP_LUA + _lua("commit_shard")
COMMIT_USER_LUA = _lua("commit_user")
RAISE_WATERMARK_LUA = _lua("raise_watermark")
ERASURE_RECORD_LUA = _lua("erasure_record")
ERASE_SHARD_LUA = APPLY_OP_LUA + _lua("erase_shard")
ERASE_STATE_LUA = _lua("erase_state")

# What the store works with: one primary (plain or through Sentinel) or a cluster.
RedisClient = Redis | RedisCluster

UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterError,  # a cluster that is down or failing over
    SlotNotCoveredError,
)


class RedisStore:
    def __init__(self, redis: RedisClient, keyspace: Keyspace) -> None:
        self._redis = redis
        self._keys = keyspace
        self._commit = redis.register_script(COMMIT_BATCH_LUA)
        self._erase = redis.register_script(ERASE_USER_LUA)
        self._steps = ClusterSteps(redis, keyspace) if isinstance(redis, RedisCluster) else None

    @property
    def keyspace(self) -> Keyspace:
        return self._keys

    @property
    def redis(self) -> RedisClient:
        return self._redis

    @property
    def cluster(self) -> bool:
        """Whether this store commits slot by slot (a Redis Cluster)."""
        return self._steps is not None

    async def load_batch(self, user_ids: Sequence[str], topic: str, partition: int) -> BatchState:
        shards = range(self._keys.shards)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.hmget(self._keys.user_state(user_id), "wm", "st")
                for shard in shards:
                    pipe.hget(self._keys.shard_watermarks(shard, topic), str(partition))
                if user_ids:
                    pipe.hmget(self._keys.erasures(), list(user_ids))
                rows: list[Any] = await pipe.execute()
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        users = {u: _decode_user(u, row) for u, row in zip(user_ids, rows, strict=False)}
        shard_rows = rows[len(user_ids) : len(user_ids) + len(shards)]
        marks = {s: int(m) for s, m in zip(shards, shard_rows, strict=True) if m}
        erased = rows[-1] if user_ids else []
        erasures = {
            u: erased_at(record) for u, record in zip(user_ids, erased, strict=True) if record
        }
        return BatchState(users, marks, erasures)

    async def commit_batch(self, commit: BatchCommit) -> None:
        if self._steps is not None:
            try:
                return await self._steps.commit(commit)
            except UNAVAILABLE as exc:
                raise StoreUnavailableError(str(exc)) from exc
        keys: list[str] = [self._keys.partition_watermarks(commit.topic)]
        states: list[bytes] = []
        marks: list[str] = []
        for write in commit.writes:
            state = write.state
            assert state.watermark is not None, "a written state has applied a record"
            keys.append(self._keys.user_state(state.user_id))
            marks += [write.expected.encode() if write.expected else "", state.watermark.encode()]
            states.append(state.to_stored())
        shards = []
        for shard in commit.shards:
            keys.append(self._keys.shard_watermarks(shard.shard, commit.topic))
            shards.append([str(shard.expected), _flat_ops(shard.ops)])
        batch = [
            str(commit.partition),
            str(commit.last_offset),
            str(self._keys.user_ttl_seconds),
            marks,
            shards,
            "" if commit.read_from is None else str(commit.read_from),
            str(commit.log_start),
        ]
        args: list[Any] = [orjson.dumps(batch), *states]
        try:
            await self._commit(keys=keys, args=args)
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        except ResponseError as exc:
            if str(exc).startswith("WMCONFLICT"):
                raise WatermarkConflictError(str(exc)) from exc
            if str(exc).startswith("STATELOST"):
                mark = str(exc).split()[1:]
                watermark = int(mark[0]) if mark else None
                raise StateLostError(commit.topic, commit.partition, watermark) from exc
            raise

    async def erase_user(
        self, plan: ErasurePlan, expected: Watermark | None, record: bytes
    ) -> bool:
        if self._steps is not None:
            try:
                return await self._steps.erase(plan, expected, record)
            except UNAVAILABLE as exc:
                raise StoreUnavailableError(str(exc)) from exc
        keys = [self._keys.user_state(plan.user_id), self._keys.erasures()]
        args: list[Any] = [plan.user_id, expected.encode() if expected else "", record]
        for op in plan.ops:
            keys.append(op.key)
            args += [op.code, op.a, op.b]
        try:
            return bool(await self._erase(keys=keys, args=args))
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        except ResponseError as exc:
            if str(exc).startswith("WMCONFLICT"):
                raise WatermarkConflictError(str(exc)) from exc
            raise

    async def erasure_progress(self, user_id: str) -> dict[int, int]:
        if self._steps is None:
            return {}  # one script erases a user whole: nothing is ever half done
        try:
            return await self._steps.erasure_progress(user_id)
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc

    async def erasure_record(self, user_id: str) -> bytes | None:
        try:
            record = await self._redis.hget(self._keys.erasures(), user_id)
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        return record.encode() if isinstance(record, str) else record

    async def erasures(self, user_ids: Sequence[str]) -> dict[str, float]:
        if not user_ids:
            return {}
        try:
            records = await self._redis.hmget(self._keys.erasures(), list(user_ids))
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        return {u: erased_at(r) for u, r in zip(user_ids, records, strict=True) if r is not None}

    async def claim_merge(self, anonymous_id: str, user_id: str, seconds: float) -> str:
        key = self._keys.merge_claim(anonymous_id)
        try:
            if await self._redis.set(key, user_id, nx=True, px=max(1, round(seconds * 1000))):
                return user_id
            holder = await self._redis.get(key)
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        if holder is None:  # expired between the two commands: try again
            return await self.claim_merge(anonymous_id, user_id, seconds)
        return holder.decode() if isinstance(holder, bytes) else str(holder)

    async def release_merge(self, anonymous_id: str) -> None:
        try:
            await self._redis.delete(self._keys.merge_claim(anonymous_id))
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc

    async def erasure_log_position(self) -> dict[int, int]:
        try:
            stored = await self._redis.hgetall(self._keys.erasure_log())
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        return {int(p): int(o) for p, o in stored.items()}

    async def set_erasure_log_position(self, position: Mapping[int, int]) -> None:
        if not position:
            return
        try:
            await self._redis.hset(
                self._keys.erasure_log(), mapping={str(p): o for p, o in position.items()}
            )
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc

    async def lost_slots(self) -> int:
        """On a Redis Cluster: how many hash slots lost their marker, i.e. belong to a
        primary that came back without its data (the markers are written the first time,
        and then 0). Always 0 on one primary, whose loss the partition watermarks show."""
        if self._steps is None:
            return 0
        try:
            return await self._steps.lost_slots()
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc

    async def mark_slots(self) -> None:
        """Write every hash slot's marker again (after a loss was handled)."""
        if self._steps is None:
            return
        try:
            await self._steps.mark_slots()
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc

    async def forget_keyspace(self) -> int:
        """Delete every key of this keyspace version (the partition watermarks last): every
        owner of a partition then finds it lost and rebuilds it from the log, as after a
        ``FLUSHALL``. A partial loss cannot be rebuilt in place: a shard's contributions
        are computed while folding users, and a user that survived skips its records.
        The erasures and the ranker registry (not versioned) stay. Returns the keys
        deleted."""
        try:
            found = self._redis.scan_iter(match=f"{self._keys.root}:*", count=1000)
            keys = [k.decode() if isinstance(k, bytes) else str(k) async for k in found]
            marks = [k for k in keys if ":{wm}:" in k]  # the partition watermarks
            rest = [k for k in keys if ":{wm}:" not in k]
            for batch in (rest, marks):
                for start in range(0, len(batch), 1000):
                    await self._redis.unlink(*batch[start : start + 1000])
            return len(keys)
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc

    async def get_user(self, user_id: str) -> UserState | None:
        try:
            row = await self._redis.hmget(self._keys.user_state(user_id), "wm", "st")
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        if row[1] is None:
            return None
        return _decode_user(user_id, row)

    async def read(self, requests: Sequence[Read]) -> list[Any]:
        """Answer read requests in one pipeline (see :mod:`recstream.readmodel.load`): one command
        per request, except a :class:`StringsRead` on a Redis Cluster, which takes one ``MGET``
        per hash tag of its keys (see :meth:`_mget_groups`)."""
        if not requests:
            return []
        mgets: list[list[list[int]]] = []  # per StringsRead: the key positions of each MGET
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for request in requests:
                    if isinstance(request, UserRead):
                        pipe.hmget(self._keys.user_state(request.user_id), "wm", "st")
                    elif isinstance(request, TopRead):
                        # sent raw: redis-py's reply shaping for ``withscores`` would turn
                        # every RESP3 score back into bytes and then into a float again
                        pipe.execute_command(
                            "ZREVRANGE", request.key, 0, request.n - 1, "WITHSCORES"
                        )
                    elif isinstance(request, StringRead):
                        pipe.get(request.key)
                    elif isinstance(request, StringsRead):
                        groups = self._mget_groups(request.keys)
                        mgets.append(groups)
                        for positions in groups:
                            # raw: redis-py blocks pipe.mget on a cluster, and the keys
                            # of one MGET share a hash tag, so one node answers it
                            pipe.execute_command("MGET", *(request.keys[i] for i in positions))
                    elif isinstance(request, HashRead):
                        pipe.hgetall(request.key)
                    else:
                        pipe.hmget(request.key, list(request.fields))
                rows: list[Any] = await pipe.execute()
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        return _decode_reads(requests, rows, mgets)

    def _mget_groups(self, keys: Sequence[str]) -> list[list[int]]:
        """The key positions of each ``MGET`` of a :class:`StringsRead`: one per hash tag on a
        Redis Cluster (a command's keys must share a slot there), one for all of them on a
        single primary, where every command in the pipeline costs the client about 8 µs."""
        if self._steps is not None:
            return _positions_by_hash_tag(keys)
        return [list(range(len(keys)))] if keys else []

    async def partition_watermarks(self, topic: str) -> dict[int, int]:
        try:
            raw = await self._redis.hgetall(self._keys.partition_watermarks(topic))
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        return {int(p): int(o) for p, o in raw.items()}


class ClusterSteps:
    """The per-slot commit and erasure of a Redis Cluster (``docs/keyspace.md``).

    A batch: (0) the partition watermark is read to refuse a batch that does not continue
    its partition (``STATELOST``), (1) every touched shard's step (check its watermark,
    apply its ops, advance it), (2) every user's step (check the watermark, write the
    state), (3) the partition watermark is raised. Each step is idempotent on its own,
    so a crash or a conflict between steps is repaired by folding the batch again: the
    shards whose watermark covers it and the users whose watermark covers their records
    drop their part. The shards' steps come first: a user written before a shard would
    let the refold skip the user's records and lose the shard's part.

    An erasure: (0) the record (every fold drops the user's events up to it from then
    on), (1) each shard's part, noted in the shard's erasure progress, (2) the state
    deleted if its watermark is still the planned one, (3) the progress notes removed.
    A retry plans without what the progress notes cover (``plan_erasure(done=...)``).

    Steps of one kind go in one cluster pipeline (one round trip per node).
    """

    def __init__(self, redis: RedisCluster, keyspace: Keyspace) -> None:
        self._redis = redis
        self._keys = keyspace
        self._shard = redis.register_script(COMMIT_SHARD_LUA)
        self._user = redis.register_script(COMMIT_USER_LUA)
        self._raise = redis.register_script(RAISE_WATERMARK_LUA)
        self._record = redis.register_script(ERASURE_RECORD_LUA)
        self._erase_shard = redis.register_script(ERASE_SHARD_LUA)
        self._erase_state = redis.register_script(ERASE_STATE_LUA)

    async def commit(self, commit: BatchCommit) -> None:
        partition = str(commit.partition)
        last = str(commit.last_offset)
        topic = commit.topic
        if commit.read_from is not None:
            raw = await self._redis.hget(self._keys.partition_watermarks(topic), partition)
            mark = int(raw) if raw is not None else None
            floor = mark + 1 if mark is not None else commit.log_start
            if commit.read_from > floor:
                raise StateLostError(topic, commit.partition, mark)
        await self._run(
            self._shard,
            [
                (
                    [self._keys.shard_watermarks(shard.shard, topic)],
                    [orjson.dumps([partition, last, str(shard.expected), _flat_ops(shard.ops)])],
                )
                for shard in commit.shards
            ],
        )
        ttl = str(self._keys.user_ttl_seconds)
        users: list[tuple[list[str], list[Any]]] = []
        for write in commit.writes:
            state = write.state
            assert state.watermark is not None, "a written state has applied a record"
            expected = write.expected.encode() if write.expected else ""
            users.append(
                (
                    [self._keys.user_state(state.user_id)],
                    [expected, state.watermark.encode(), ttl, state.to_stored()],
                )
            )
        await self._run(self._user, users)
        await self._run(
            self._raise, [([self._keys.partition_watermarks(topic)], [partition, last])]
        )

    async def lost_slots(self) -> int:
        if await self._redis.get(self._keys.slot_markers()) is None:
            await self.mark_slots()  # a new keyspace, or the primary of {wm} lost it too
            return 0
        async with self._redis.pipeline() as pipe:
            for tag in slot_tags():
                pipe.execute_command("EXISTS", self._keys.slot_marker(tag))
            found: list[Any] = await pipe.execute()
        return found.count(0)

    async def mark_slots(self) -> None:
        async with self._redis.pipeline() as pipe:
            for tag in slot_tags():
                pipe.execute_command("SET", self._keys.slot_marker(tag), "1")
            await pipe.execute()
        await self._redis.set(self._keys.slot_markers(), str(REDIS_CLUSTER_HASH_SLOTS))

    async def erasure_progress(self, user_id: str) -> dict[int, int]:
        shards = range(self._keys.shards)
        async with self._redis.pipeline() as pipe:
            for shard in shards:
                pipe.hget(self._keys.erasure_progress(shard), user_id)
            rows: list[Any] = await pipe.execute()
        return {shard: int(row) for shard, row in zip(shards, rows, strict=True) if row}

    async def erase(self, plan: ErasurePlan, expected: Watermark | None, record: bytes) -> bool:
        user = plan.user_id
        has_state = "1" if expected is not None else "0"
        recorded = await self._run(
            self._record, [([self._keys.erasures()], [user, record, has_state])]
        )
        done = dict(plan.done)
        by_shard: dict[int, list[str]] = {}
        for code, key, a, b in plan.ops:
            shard = int(_hash_tag(key).removeprefix("s:"))
            by_shard.setdefault(shard, []).extend(_flat_ops([ShardOp(code, key, a, b)]))
        progress = str(expected.offset) if expected is not None else "-1"
        await self._run(
            self._erase_shard,
            [
                (
                    [self._keys.erasure_progress(shard)],
                    [user, str(done[shard]) if shard in done else "", progress, *ops],
                )
                for shard, ops in sorted(by_shard.items())
            ],
        )
        if expected is not None:
            await self._run(
                self._erase_state, [([self._keys.user_state(user)], [expected.encode()])]
            )
        if done or by_shard:
            async with self._redis.pipeline() as pipe:
                for shard in sorted(set(done) | set(by_shard)):
                    pipe.hdel(self._keys.erasure_progress(shard), user)
                await pipe.execute()
        return bool(recorded[0])

    async def _run(
        self, script: AsyncScript, calls: list[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        """Run ``script`` once per ``(keys, args)`` in one cluster pipeline; a script a node
        does not know yet (a node restarted empty) is loaded and its calls sent again.
        Raises :class:`WatermarkConflictError` for a ``WMCONFLICT``, after every call ran."""
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in range(2):
            if not pending:
                break
            async with self._redis.pipeline() as pipe:
                for i in pending:
                    keys, args = calls[i]
                    # redis-py blocks pipe.evalsha on a cluster; the raw command is routed
                    # by its first key like any other
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
            missing = []
            for i, reply in zip(pending, replies, strict=True):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    missing.append(i)
                else:
                    results[i] = reply
            if missing:
                await self._redis.script_load(script.script)  # on every primary
            pending = missing
        for reply in results:
            if isinstance(reply, BaseException):
                if str(reply).startswith("WMCONFLICT"):
                    raise WatermarkConflictError(str(reply)) from reply
                raise reply
        return results


@functools.cache
def slot_tags() -> tuple[str, ...]:
    """One hash tag per Redis Cluster slot, in slot order: ``m:<n>`` with the smallest
    ``n`` that hashes to the slot."""
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    missing, n = REDIS_CLUSTER_HASH_SLOTS, 0
    while missing:
        tag = f"m:{n}"
        slot = key_slot(tag.encode())
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def _flat_ops(ops: Sequence[ShardOp]) -> list[str]:
    """``code, key, a, b`` of every op, as strings (see :data:`COMMIT_BATCH_LUA`)."""
    flat: list[str] = []
    for code, key, a, b in ops:
        flat += (code, key, a if type(a) is str else str(a), b if type(b) is str else str(b))
    return flat


def _text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def _hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: the first non-empty ``{...}``, else the key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def _positions_by_hash_tag(keys: Sequence[str]) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(_hash_tag(key), []).append(i)
    return list(groups.values())


def _decode_reads(
    requests: Sequence[Read], rows: list[Any], mgets: list[list[list[int]]]
) -> list[Any]:
    """The answers of ``requests`` from the pipeline's replies (a StringsRead's values are
    put back in key order from its MGETs)."""
    answers: list[Any] = []
    at = 0
    pending = iter(mgets)
    for request in requests:
        if isinstance(request, StringsRead):
            values: list[str | None] = [None] * len(request.keys)
            for positions in next(pending):
                for i, raw in zip(positions, rows[at], strict=True):
                    values[i] = _text(raw)
                at += 1
            answers.append(values)
        else:
            answers.append(_decode_read(request, rows[at]))
            at += 1
    return answers


def _score_pairs(row: list[Any]) -> list[tuple[str, float]]:
    """``ZREVRANGE ... WITHSCORES`` as (member, score) pairs, from a RESP3 reply
    (``[[member, score], ...]``) or a RESP2 one (``[member, score, member, score, ...]``)."""
    if row and isinstance(row[0], list):
        pairs: Iterable[tuple[bytes | str, Any]] = row
    else:
        flat = iter(row)
        pairs = zip(flat, flat, strict=True)
    return [(m.decode() if isinstance(m, bytes) else m, float(s)) for m, s in pairs]


def _decode_read(request: Read, row: Any) -> Any:
    if isinstance(request, UserRead):
        return _decode_user(request.user_id, row) if row[1] is not None else None
    if isinstance(request, TopRead):
        return _score_pairs(row)
    if isinstance(request, StringRead):
        return _text(row)
    if isinstance(request, HashRead):
        return {_text(k): _text(v) for k, v in row.items()}
    assert isinstance(request, FieldsRead)
    return [_text(value) for value in row]


def _decode_user(user_id: str, row: Sequence[bytes | str | None]) -> UserState:
    watermark_raw, state_raw = row[0], row[1]
    if state_raw is None:
        return UserState(user_id=user_id)
    if isinstance(state_raw, str):
        state_raw = state_raw.encode()
    return UserState.from_stored(user_id, state_raw, Watermark.decode(watermark_raw))
