"""The Redis adapter of :class:`~recstream.ports.StateStore` (the only module doing Redis I/O).

A partition batch is committed by one Lua script: it checks every user's
stored watermark against the one read before the fold, then writes all the
new states and advances the partition watermark, or writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from recstream.keyspace import Keyspace
from recstream.ports import BatchCommit, StoreUnavailableError, WatermarkConflictError
from recstream.state import UserState, Watermark

# KEYS[1]: partition watermark hash; KEYS[2..]: user state hashes.
# ARGV[1]: partition, ARGV[2]: last offset, ARGV[3]: user TTL (0 = none),
# then three per user: expected watermark ('' = absent), new watermark, state.
COMMIT_BATCH_LUA = """
local users = #KEYS - 1
for i = 1, users do
  local current = redis.call('HGET', KEYS[i + 1], 'wm') or ''
  if current ~= ARGV[4 + (i - 1) * 3] then
    return redis.error_reply('WMCONFLICT ' .. KEYS[i + 1])
  end
end
local ttl = tonumber(ARGV[3])
for i = 1, users do
  local base = 4 + (i - 1) * 3
  redis.call('HSET', KEYS[i + 1], 'wm', ARGV[base + 1], 'st', ARGV[base + 2])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i + 1], ttl) end
end
local previous = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > previous then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return users
"""

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisStore:
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        self._redis = redis
        self._keys = keyspace
        self._commit = redis.register_script(COMMIT_BATCH_LUA)

    @property
    def keyspace(self) -> Keyspace:
        return self._keys

    async def load_users(self, user_ids: Sequence[str]) -> Mapping[str, UserState]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.hmget(self._keys.user_state(user_id), "wm", "st")
                rows: list[list[bytes | str | None]] = await pipe.execute()
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        return {u: _decode_user(u, row) for u, row in zip(user_ids, rows, strict=True)}

    async def commit_batch(self, commit: BatchCommit) -> None:
        keys = [self._keys.partition_watermarks(commit.topic)]
        args: list[Any] = [commit.partition, commit.last_offset, self._keys.user_ttl_seconds]
        for write in commit.writes:
            state = write.state
            assert state.watermark is not None, "a written state has applied a record"
            keys.append(self._keys.user_state(state.user_id))
            args += [
                write.expected.encode() if write.expected else "",
                state.watermark.encode(),
                state.to_json(),
            ]
        try:
            await self._commit(keys=keys, args=args)
        except ResponseError as exc:
            if str(exc).startswith("WMCONFLICT"):
                raise WatermarkConflictError(str(exc)) from exc
            raise
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc

    async def get_user(self, user_id: str) -> UserState | None:
        try:
            row = await self._redis.hmget(self._keys.user_state(user_id), "wm", "st")
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        if row[1] is None:
            return None
        return _decode_user(user_id, row)

    async def partition_watermarks(self, topic: str) -> dict[int, int]:
        try:
            raw = await self._redis.hgetall(self._keys.partition_watermarks(topic))
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(str(exc)) from exc
        return {int(p): int(o) for p, o in raw.items()}


def _decode_user(user_id: str, row: Sequence[bytes | str | None]) -> UserState:
    watermark_raw, state_raw = row[0], row[1]
    if state_raw is None:
        return UserState(user_id=user_id)
    if isinstance(state_raw, str):
        state_raw = state_raw.encode()
    return UserState.from_json(user_id, state_raw, Watermark.decode(watermark_raw))
