"""Pure parts of the live quality monitor: which events to sample, the rolling window, the budget.

- :func:`is_sampled` picks a fixed share of events by a hash of their
  ``event_id``, so every replay (and every instance) samples the same events.
- :class:`RollingQuality` keeps the ranks of the last ``size`` samples and
  gives hit rate at ``k`` and MRR at ``k`` over them, exactly (counts, no
  floating sums that drift).
- :class:`TimeBudget` caps the share of time scoring may take: a token
  bucket of seconds that refills at ``share`` seconds per second.

Nothing here reads a clock: callers pass ``now``.
"""

from __future__ import annotations

import zlib
from collections import deque

_HASH_SPACE = float(2**32)


def is_sampled(event_id: str, rate: float) -> bool:
    """True for a ``rate`` share of event ids, the same ones every time (CRC-32 of the id)."""
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    return zlib.crc32(event_id.encode()) < rate * _HASH_SPACE


class RollingQuality:
    """Hit rate and MRR at ``k`` over the last ``size`` samples."""

    def __init__(self, k: int, size: int) -> None:
        if k < 1 or size < 1:
            raise ValueError("k and size must be positive")
        self.k = k
        self._ranks: deque[int] = deque(maxlen=size)  # 0 = a miss
        self._at_rank = [0] * (k + 1)  # _at_rank[r]: samples in the window with rank r

    def add(self, rank: int | None) -> None:
        """One sample: the 1-based rank of its item in the top ``k``, or None (a miss)."""
        value = rank if rank is not None and 1 <= rank <= self.k else 0
        if len(self._ranks) == self._ranks.maxlen:
            self._at_rank[self._ranks[0]] -= 1
        self._ranks.append(value)
        self._at_rank[value] += 1

    @property
    def samples(self) -> int:
        return len(self._ranks)

    @property
    def hit_rate(self) -> float:
        n = len(self._ranks)
        return (n - self._at_rank[0]) / n if n else 0.0

    @property
    def mrr(self) -> float:
        n = len(self._ranks)
        if not n:
            return 0.0
        return sum(count / rank for rank, count in enumerate(self._at_rank) if rank) / n


class TimeBudget:
    """At most ``share`` of the time on average, in bursts of at most ``burst`` seconds."""

    def __init__(self, share: float, burst: float, now: float) -> None:
        if share < 0 or burst < 0:
            raise ValueError("share and burst must not be negative")
        self.share = share
        self.burst = burst
        self._tokens = burst
        self._last = now

    def available(self, now: float) -> bool:
        """May more time be spent now? (Refills first.)"""
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.share)
            self._last = now
        return self.share > 0 and self._tokens > 0

    def spend(self, seconds: float) -> None:
        """Time actually spent: the balance may go below zero, then it waits to be repaid."""
        self._tokens -= seconds
