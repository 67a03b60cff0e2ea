"""Exponentially decayed sums that are exact at any query time.

A decayed sum is stored as ``(score, ref)``: the value of the sum at time
``ref``. Adding an event at time ``t`` moves the reference forward when the
event is newer and discounts the event when it is older, so the order of
arrival does not change the value (up to float rounding).
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
