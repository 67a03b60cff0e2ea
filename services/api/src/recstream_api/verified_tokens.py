"""Bearer tokens verified recently, so a client that sends the same token on every request
pays for the signature check and the claim checks once (about 70 µs of CPU each with HS256,
more with RS256).

An entry is the exact token string that passed :meth:`recstream_api.auth.Authenticator.
verify_token` and the principal it yielded. It is used until the token's ``exp`` (without
the leeway: past ``exp`` the full check decides again) and at most ``max_age`` seconds
after the check, which also bounds how long a token outlives a key removed from a JWKS.
The least recently used entries are dropped beyond ``size``. Failed checks are never
stored. Everything runs on the event loop thread, so no lock is needed. The cache is
cachetools' ``TLRUCache`` (a per-entry time to use, least recently used eviction).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from cachetools import TLRUCache

T = TypeVar("T")


def _until(_token: str, entry: tuple[object, float], _now: float) -> float:
    return entry[1]


class VerifiedTokens(Generic[T]):
    def __init__(self, size: int, max_age: float, clock: Callable[[], float] = time.time) -> None:
        self._size = size
        self._max_age = max_age
        self._clock = clock
        self._entries: TLRUCache[str, tuple[T, float]] = TLRUCache(
            maxsize=max(size, 1), ttu=_until, timer=clock
        )

    def __len__(self) -> int:
        self._entries.expire()
        return len(self._entries)

    def get(self, token: str) -> T | None:
        entry = self._entries.get(token)
        return None if entry is None else entry[0]

    def put(self, token: str, value: T, expires_at: float) -> None:
        """Remember ``value`` for ``token`` until ``expires_at`` (epoch seconds) at most."""
        now = self._clock()
        until = min(expires_at, now + self._max_age)
        if self._size <= 0 or until <= now:
            return
        self._entries[token] = (value, until)
