"""Most popular items: the same list for every history (pure)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from recstream.offline.evaluation.baselines.base import Level
from recstream.offline.evaluation.protocol import EventSession


class MostPopular:
    """Items by their number of training events, ties by item id (session-rec's ``Pop``,
    rn5l/session-rec ``algorithms/baselines/pop.py``). No parameters."""

    name = "pop-baseline"
    level: Level = "session"

    def __init__(self, sessions: Iterable[EventSession]) -> None:
        counts: dict[str, int] = {}
        for session in sessions:
            for item in session.items:
                counts[item] = counts.get(item, 0) + 1
        self.ranking = [i for _, i in sorted((-n, i) for i, n in counts.items())]

    def recommend(
        self, items: Sequence[str], k: int, *, exclude: Collection[str] = ()
    ) -> list[str]:
        if not exclude:
            return self.ranking[:k]
        top: list[str] = []
        for item in self.ranking:
            if len(top) == k:
                break
            if item not in exclude:
                top.append(item)
        return top
