"""Pages of the stored users, walked with Redis ``SCAN`` over the keyspace's user keys.

A page costs at most ``max_calls`` SCAN calls of ``COUNT page_size`` each and
stops as soon as it holds ``page_size`` users, so one request does bounded
work however large the keyspace is. The cursor is Redis's: a user present for
the whole walk is returned at least once (SCAN's guarantee); a user may
appear on two pages.

On a Redis Cluster the walk goes through the primaries one after the other (in the
order of their addresses); the cursor then carries the node's own cursor and the
node's position (``node_cursor * primaries + position``). A walk during a resharding
may miss or repeat the keys of the slots that moved.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from recstream.contract.keyspace import Keyspace
from recstream.store.port import StoreUnavailableError
from recstream.store.redis import UNAVAILABLE, RedisClient


async def scan_users(
    redis: RedisClient, keyspace: Keyspace, cursor: int, page_size: int, max_calls: int
) -> tuple[list[str], int]:
    """The users of one page and the next cursor (0 when the walk is complete)."""
    users: dict[str, None] = {}
    pattern = keyspace.user_pattern()
    try:
        for _ in range(max_calls):
            cursor, keys = await _scan(redis, cursor, pattern, page_size)
            for key in keys:
                text = key.decode() if isinstance(key, bytes) else str(key)
                users[keyspace.user_id_of(text)] = None
            if cursor == 0 or len(users) >= page_size:
                break
    except UNAVAILABLE as exc:
        raise StoreUnavailableError(str(exc)) from exc
    return list(users), int(cursor)


async def _scan(redis: RedisClient, cursor: int, pattern: str, count: int) -> tuple[int, Any]:
    """One ``SCAN`` call: on one primary, or on the cluster's primary the cursor names."""
    if not isinstance(redis, RedisCluster):
        found, keys = await redis.scan(cursor=cursor, match=pattern, count=count)
        return int(found), keys
    primaries = sorted(redis.get_primaries(), key=lambda node: node.name)
    position, node_cursor = cursor % len(primaries), cursor // len(primaries)
    node = primaries[position]
    cursors: Any
    cursors, keys = await redis.scan(
        cursor=node_cursor, match=pattern, count=count, target_nodes=node
    )
    found = int(cursors[node.name])  # the cluster client answers {node name: cursor}
    if found != 0:
        return found * len(primaries) + position, keys
    return (position + 1 if position + 1 < len(primaries) else 0), keys
