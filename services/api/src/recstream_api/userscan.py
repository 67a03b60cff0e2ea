"""Pages of the stored users, walked with Redis ``SCAN`` over the keyspace's user keys.

A page costs at most ``max_calls`` SCAN calls of ``COUNT page_size`` each and
stops as soon as it holds ``page_size`` users, so one request does bounded
work however large the keyspace is. The cursor is Redis's: a user present for
the whole walk is returned at least once (SCAN's guarantee); a user may
appear on two pages.
"""

from __future__ import annotations

from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace
from recstream.store.port import StoreUnavailableError
from recstream.store.redis import UNAVAILABLE


async def scan_users(
    redis: Redis, keyspace: Keyspace, cursor: int, page_size: int, max_calls: int
) -> tuple[list[str], int]:
    """The users of one page and the next cursor (0 when the walk is complete)."""
    users: dict[str, None] = {}
    pattern = keyspace.user_pattern()
    try:
        for _ in range(max_calls):
            cursor, keys = await redis.scan(cursor=cursor, match=pattern, count=page_size)
            for key in keys:
                text = key.decode() if isinstance(key, bytes) else str(key)
                users[keyspace.user_id_of(text)] = None
            if cursor == 0 or len(users) >= page_size:
                break
    except UNAVAILABLE as exc:
        raise StoreUnavailableError(str(exc)) from exc
    return list(users), int(cursor)
