"""Reference baselines of the next-item protocol, trained on the training sessions (pure).

- :class:`MostPopular`: items by their number of training events (session-rec's
  ``Pop``), the same list for every case.
- :class:`VSKNN`: vector session-kNN as session-rec's ``VMContextKNN`` with its
  published defaults (k=100, sample_size=500, sampling='recent',
  weighting='div', weighting_score='div', remind=True, no idf, no extension):

  1. candidate neighbours: the training sessions that contain any item of the
     current session, of which the ``sample_size`` most recent (by their last
     event) are compared;
  2. similarity: each current-session position ``i`` of ``n`` (repeats counted)
     gives its item the weight ``i / n`` (a later repeat overrides an earlier one);
     a neighbour's similarity is the sum of the weights of the items it shares,
     divided by the number of distinct current items;
  3. the ``k`` most similar neighbours vote: every item of a neighbour gets the
     neighbour's similarity times ``1 / s``, where ``s`` is how many positions
     back (repeats counted, 1 = the last) the newest item it shares is.

Ties are broken deterministically: neighbours by recency then session key,
items by item id; sums run in a fixed order, so every process gives the same
numbers whatever its hash seed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from recstream.evaluation.protocol import EventSession


def top_items(scores: dict[str, float], k: int) -> list[str]:
    """The ``k`` best positive scores, ties by item id."""
    best = heapq.nsmallest(k, ((-s, i) for i, s in scores.items() if s > 0))
    return [item for _, item in best]


class MostPopular:
    name = "pop-baseline"

    def __init__(self, sessions: Iterable[EventSession]) -> None:
        counts: dict[str, int] = {}
        for session in sessions:
            for item in session.items:
                counts[item] = counts.get(item, 0) + 1
        self.ranking = [i for _, i in sorted((-n, i) for i, n in counts.items())]

    def recommend(self, items: Sequence[str], k: int) -> list[str]:
        return self.ranking[:k]


@dataclass(frozen=True, slots=True)
class _Neighbour:
    key: int
    last_at: float
    items: frozenset[str]


class VSKNN:
    name = "vsknn"

    def __init__(
        self, sessions: Iterable[EventSession], *, k: int = 100, sample_size: int = 500
    ) -> None:
        self.k = k
        self.sample_size = sample_size
        self.sessions: list[_Neighbour] = []
        by_item: dict[str, list[int]] = {}
        for session in sessions:
            items = frozenset(session.items)
            if not items:
                continue
            index = len(self.sessions)
            self.sessions.append(_Neighbour(index, session.end, items))
            for item in items:
                by_item.setdefault(item, []).append(index)
        # each item's sessions, most recent first: the most recent sample of a union of
        # these lists is within the first ``sample_size`` of each
        self.item_sessions = {
            item: sorted(ids, key=lambda s: (-self.sessions[s].last_at, s))[:sample_size]
            for item, ids in by_item.items()
        }

    def _sample(self, distinct: Iterable[str]) -> list[_Neighbour]:
        candidates: set[int] = set()
        for item in distinct:
            candidates.update(self.item_sessions.get(item, ()))
        chosen = heapq.nsmallest(
            self.sample_size, candidates, key=lambda s: (-self.sessions[s].last_at, s)
        )
        return [self.sessions[s] for s in chosen]

    def scores(self, items: Sequence[str]) -> dict[str, float]:
        """Item -> V-SKNN score after the current session's ``items`` (oldest first)."""
        if not items:
            return {}
        length = len(items)
        weights = {item: position / length for position, item in enumerate(items, start=1)}
        neighbours: list[tuple[float, _Neighbour]] = []
        for neighbour in self._sample(weights):
            # summed in session order: a set's order varies between processes (hash seed),
            # and so would the last bits of the sum, and with them the ties
            shared = (w for i, w in weights.items() if i in neighbour.items)
            similarity = sum(shared) / len(weights)
            if similarity > 0:
                neighbours.append((similarity, neighbour))
        best = heapq.nsmallest(
            self.k, neighbours, key=lambda sn: (-sn[0], -sn[1].last_at, sn[1].key)
        )
        scores: dict[str, float] = {}
        for similarity, neighbour in best:
            step = next(s for s, i in enumerate(reversed(items), start=1) if i in neighbour.items)
            vote = similarity / step
            for item in neighbour.items:
                scores[item] = scores.get(item, 0.0) + vote
        return scores

    def recommend(self, items: Sequence[str], k: int) -> list[str]:
        return top_items(self.scores(items), k)
