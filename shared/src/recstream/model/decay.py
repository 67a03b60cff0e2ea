"""Exponentially decayed sums that are exact at any query time.

A user's decayed sum is stored as ``(score, ref)``: the value of the sum at time
``ref``. Adding an event at time ``t`` moves the reference forward when the
event is newer and discounts the event when it is older, so the order of
arrival does not change the value (up to float rounding).

The statistics shared by all users are added to by many writers at once, so they
cannot move a reference: they are *forward-decayed* sums kept in log space. An
event of weight ``w`` at time ``t`` adds ``2 ** (log2(w) + (t - landmark) /
half_life)``; the stored score is the base-2 logarithm of the sum, added to with
:func:`log_add`. Its logarithm grows linearly with time, so a score never
overflows at any representable time, and scores rank exactly as time-decayed
sums do. :func:`value_at_now` turns a stored score back into the sum's value at a
query time. ``store/lua/apply_op.lua`` does the same arithmetic on Redis, with the
same libm calls, so both stores hold the same floats.
"""

from __future__ import annotations

import math


def decay_factor(elapsed_seconds: float, half_life_seconds: float) -> float:
    return math.pow(2.0, -elapsed_seconds / half_life_seconds)


def add_decayed(
    score: float, ref: float, weight: float, at: float, half_life_seconds: float
) -> tuple[float, float]:
    """Add ``weight`` observed at time ``at`` to the sum ``(score, ref)``."""
    if at >= ref:
        return score * decay_factor(at - ref, half_life_seconds) + weight, at
    return score + weight * decay_factor(ref - at, half_life_seconds), ref


def value_at(score: float, ref: float, now: float, half_life_seconds: float) -> float:
    """The sum's value at ``now`` (events after ``now`` are counted undecayed)."""
    if now <= ref:
        return score
    return score * decay_factor(now - ref, half_life_seconds)


LN2 = math.log(2.0)
# A subtraction that leaves less than this share of a score leaves rounding only:
# the member is removed (an erasure that takes back all of a score).
REMAINDER_FLOOR = 1e-9


def log_add(a: float, b: float) -> float:
    """``log2(2 ** a + 2 ** b)``, without leaving log space."""
    high, low = (a, b) if a >= b else (b, a)
    return high + math.log(1.0 + 2.0 ** (low - high)) / LN2


def log_subtract(a: float, b: float) -> float | None:
    """``log2(2 ** a - 2 ** b)``, or None when less than :data:`REMAINDER_FLOOR` of
    ``2 ** a`` would be left."""
    if b >= a:
        return None
    share = 1.0 - 2.0 ** (b - a)
    if share < REMAINDER_FLOOR:
        return None
    return a + math.log(share) / LN2


def value_at_now(score: float, now: float, landmark: float, half_life_seconds: float) -> float:
    """The value at ``now`` of a forward-decayed sum whose log2 is ``score``: 0.0 once it
    has decayed below the smallest float."""
    return math.pow(2.0, min(score - (now - landmark) / half_life_seconds, 1023.0))
