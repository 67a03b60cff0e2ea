"""A keyspace's content as plain values: from the oracle's memory store or from the real Redis.

Both sides are read into the same :class:`Snapshot` so the checker compares like
with like: user states decoded with their watermark, sorted sets as
``member -> score``, hashes and strings as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recstream.contract.keyspace import Keyspace
from recstream.model.state import UserState, Watermark
from recstream.store.memory import MemoryStore
from recstream.store.redis import RedisClient

PAGE = 500


@dataclass
class Snapshot:
    users: dict[str, UserState] = field(default_factory=dict)
    zsets: dict[str, dict[str, float]] = field(default_factory=dict)
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    strings: dict[str, str] = field(default_factory=dict)

    def keys(self) -> int:
        return len(self.users) + len(self.zsets) + len(self.hashes) + len(self.strings)


def memory_snapshot(store: MemoryStore) -> Snapshot:
    """What the memory store holds, laid out under the Redis key names."""
    keys = store.keyspace
    hashes = {k: dict(v) for k, v in store.hashes.items() if v}
    for topic, marks in store.watermarks.items():
        hashes[keys.partition_watermarks(topic)] = {str(p): str(o) for p, o in marks.items()}
    return Snapshot(
        users={u: s.copy() for u, s in store.users.items()},
        zsets={k: dict(v) for k, v in store.zsets.items() if v},
        hashes=hashes,
        strings=dict(store.strings),
    )


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


async def redis_snapshot(redis: RedisClient, keyspace: Keyspace) -> Snapshot:
    """Every key under the keyspace's prefix (all versions, and the erasure records), but a
    Redis Cluster's slot markers (bookkeeping, not state the oracle builds)."""
    found = [_text(k) async for k in redis.scan_iter(match=f"{keyspace.prefix}:*", count=2000)]
    names = [name for name in found if not Keyspace.is_slot_marker(name)]
    snapshot = Snapshot()
    for start in range(0, len(names), PAGE):
        page = names[start : start + PAGE]
        async with redis.pipeline(transaction=False) as pipe:
            for name in page:
                pipe.type(name)
            kinds = [_text(t) for t in await pipe.execute()]
        async with redis.pipeline(transaction=False) as pipe:
            for name, kind in zip(page, kinds, strict=True):
                if kind == "zset":
                    pipe.zrange(name, 0, -1, withscores=True)
                elif kind == "hash":
                    pipe.hgetall(name)
                elif kind == "string":
                    pipe.get(name)
                else:
                    pipe.type(name)  # keeps the positions; reported as an unknown key below
            rows: list[Any] = await pipe.execute()
        for name, kind, row in zip(page, kinds, rows, strict=True):
            _add(snapshot, keyspace, name, kind, row)
    return snapshot


def _add(snapshot: Snapshot, keyspace: Keyspace, name: str, kind: str, row: Any) -> None:
    if kind == "zset":
        snapshot.zsets[name] = {_text(m): float(s) for m, s in row}
    elif kind == "hash":
        raw = {_text(k): v for k, v in row.items()}
        if "{u:" in name and name.endswith(":state") and "st" in raw:
            user = keyspace.user_id_of(name)
            stored = raw["st"] if isinstance(raw["st"], bytes) else raw["st"].encode()
            snapshot.users[user] = UserState.from_stored(
                user, stored, Watermark.decode(raw.get("wm"))
            )
        else:
            snapshot.hashes[name] = {k: _text(v) for k, v in raw.items()}
    elif kind == "string" and row is not None:
        snapshot.strings[name] = _text(row)
    elif row is not None:
        snapshot.strings[name] = f"<{kind}>"
