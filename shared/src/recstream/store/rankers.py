"""The registry of learned ranker models in Redis: publish, activate, deactivate, read.

Models are published through Redis, not a mounted file: every API replica
already reads Redis, so a new version reaches all of them within one poll
interval without a redeploy or a shared volume, and the active version is one
key that an operator (or ``recstream model``) switches atomically. An artifact
is a few hundred kilobytes; the registry keeps every published version until it
is removed, so rolling back is one ``activate``.

Keys (see ``docs/keyspace.md``): ``<prefix>:rankers:models`` (hash version ->
artifact JSON) and ``<prefix>:rankers:active`` (string, the served version). On
a Redis Cluster the two keys are in different slots: publishing writes the
model first, then the version, so a replica never reads an active version whose
model is missing.
"""

from __future__ import annotations

from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisClient


class RankerRegistry:
    def __init__(self, redis: RedisClient, keyspace: Keyspace) -> None:
        self._redis = redis
        self._keys = keyspace

    async def publish(self, version: str, artifact: bytes, *, activate: bool = True) -> None:
        await self._redis.hset(self._keys.ranker_models(), version, artifact)
        if activate:
            await self.activate(version)

    async def activate(self, version: str) -> None:
        """Serve ``version``; raises ``KeyError`` when it was never published."""
        if not await self._redis.hexists(self._keys.ranker_models(), version):
            raise KeyError(f"no published ranker model {version!r}")
        await self._redis.set(self._keys.active_ranker(), version)

    async def deactivate(self) -> None:
        """Serve the hand-tuned blend again."""
        await self._redis.delete(self._keys.active_ranker())

    async def remove(self, version: str) -> None:
        """Delete a published model (deactivating it first when it is the active one)."""
        if await self.active_version() == version:
            await self.deactivate()
        await self._redis.hdel(self._keys.ranker_models(), version)

    async def active_version(self) -> str | None:
        raw = await self._redis.get(self._keys.active_ranker())
        return raw.decode() if isinstance(raw, bytes) else raw

    async def artifact(self, version: str) -> bytes | None:
        raw = await self._redis.hget(self._keys.ranker_models(), version)
        return raw.encode() if isinstance(raw, str) else raw

    async def versions(self) -> list[str]:
        keys = await self._redis.hkeys(self._keys.ranker_models())
        return sorted(k.decode() if isinstance(k, bytes) else k for k in keys)
