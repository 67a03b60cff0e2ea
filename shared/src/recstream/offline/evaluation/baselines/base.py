"""What every reference baseline offers, and the deterministic top-k they share (pure).

A baseline is trained once on the training sessions, then asked for the top ``k``
after an item history (oldest first). The history is the current session's items
(``level = "session"``) or, where a protocol can give it, the user's whole history
(``level = "user"``); the class attribute says which one the method wants.

Rankings are deterministic whatever the process's hash seed: ties are broken by item
id, and the methods sum in a fixed order (never over a set's iteration order).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence
from typing import Literal, Protocol

Level = Literal["session", "user"]
LEVELS: tuple[Level, ...] = ("session", "user")


class Baseline(Protocol):
    """A trained reference method of the offline evaluation."""

    name: str
    level: Level  # the history it wants: the current session's items, or the user's

    def recommend(
        self, items: Sequence[str], k: int, *, exclude: Collection[str] = ()
    ) -> list[str]:
        """The top ``k`` after ``items`` (oldest first), none of ``exclude``; shorter only
        when fewer items are scored."""
        ...


class ScoringBaseline(Baseline, Protocol):
    """A baseline whose ranking is the order of a score per item."""

    def scores(self, items: Sequence[str]) -> dict[str, float]:
        """Item -> score after ``items``; an item left out is not scored (not ranked)."""
        ...


def top_items(scores: Mapping[str, float], k: int, exclude: Collection[str] = ()) -> list[str]:
    """The ``k`` best positive scores, ties by item id, none of ``exclude``.

    An excluded item leaves its place to the next one down, so the list stays ``k``
    long while enough items have a positive score.
    """
    best = heapq.nsmallest(
        k, ((-s, i) for i, s in scores.items() if s > 0 and (not exclude or i not in exclude))
    )
    return [item for _, item in best]
