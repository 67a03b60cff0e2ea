"""Session-based k-nearest neighbours: the shared neighbour index, SKNN and V-SKNN (pure).

Every session kNN of session-rec (rn5l/session-rec ``algorithms/knn/``) works in three
steps, which :class:`SessionIndex` and :func:`nearest` share here:

1. candidate neighbours: the training sessions that contain any item of the current
   session, of which the ``sample_size`` most recent (by their last event) are
   compared (session-rec's ``sampling='recent'``);
2. a similarity between the current session and each candidate; the ``k`` most similar
   with a positive similarity are the neighbours;
3. the neighbours vote for their items, each vote a function of the similarity.

Ties are broken deterministically: neighbours by recency then session key, items by
item id; sums run in a fixed order, so every process gives the same numbers whatever
its hash seed.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

from recstream.offline.evaluation.baselines.base import Level, top_items
from recstream.offline.evaluation.protocol import EventSession

Similarity = Literal["cosine", "jaccard"]


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A training session as a neighbour: its items in order, and as a set."""

    key: int  # its index in the training sessions that have items
    last_at: float  # its last event (Unix seconds)
    items: frozenset[str]
    sequence: tuple[str, ...]


class SessionIndex:
    """The training sessions by item, most recent first, to sample neighbours from."""

    def __init__(self, sessions: Iterable[EventSession], sample_size: int) -> None:
        if sample_size < 1:
            raise ValueError("sample_size must be at least 1")
        self.sample_size = sample_size
        self.sessions: list[Neighbour] = []
        by_item: dict[str, list[int]] = {}
        for session in sessions:
            sequence = tuple(session.items)
            if not sequence:
                continue
            index = len(self.sessions)
            items = frozenset(sequence)
            self.sessions.append(Neighbour(index, session.end, items, sequence))
            for item in items:
                by_item.setdefault(item, []).append(index)
        # each item's sessions, most recent first: the most recent sample of a union of
        # these lists is within the first ``sample_size`` of each
        self.item_sessions = {
            item: sorted(ids, key=lambda s: (-self.sessions[s].last_at, s))[:sample_size]
            for item, ids in by_item.items()
        }
        self.latest = max((s.last_at for s in self.sessions), default=0.0)

    def sample(self, distinct: Iterable[str]) -> list[Neighbour]:
        """The ``sample_size`` most recent sessions sharing an item with ``distinct``."""
        candidates: set[int] = set()
        for item in distinct:
            candidates.update(self.item_sessions.get(item, ()))
        chosen = heapq.nsmallest(
            self.sample_size, candidates, key=lambda s: (-self.sessions[s].last_at, s)
        )
        return [self.sessions[s] for s in chosen]


def nearest(
    similarities: Iterable[tuple[float, Neighbour]], k: int
) -> list[tuple[float, Neighbour]]:
    """The ``k`` most similar neighbours with a positive similarity, most similar first
    (ties: the more recent, then the lower key)."""
    positive = (sn for sn in similarities if sn[0] > 0)
    return heapq.nsmallest(k, positive, key=lambda sn: (-sn[0], -sn[1].last_at, sn[1].key))


class SKNNOptions(TypedDict, total=False):
    k: int
    sample_size: int
    similarity: Similarity


class SKNN:
    """Session kNN (Jannach & Ludewig, RecSys 2017, "When Recurrent Neural Networks meet
    the Neighborhood for Session-Based Recommendation"), as session-rec's ``ContextKNN``
    (rn5l/session-rec ``algorithms/knn/sknn.py``).

    The current session and a neighbour are binary item sets ``a`` and ``b``:
    ``cosine = |a & b| / sqrt(|a| |b|)`` (``jaccard = |a & b| / |a | b|``); an item's
    score is the sum of the similarities of the ``k`` nearest neighbours that contain
    it. The current session's own items are scored like any other.

    Defaults: ``k=100``, ``sample_size=500`` (recent), cosine: the paper's cosine and the
    defaults that ``ContextKNN``'s docstring states (its code defaults are jaccard and
    ``sample_size=1000``). Tuned values per dataset: :data:`SKNN_PRESETS`.
    (session-rec's cosine divides by ``sqrt(|b|)`` and multiplies by ``sqrt(|a|)``, a
    constant per case: its rankings are this cosine's.)
    """

    name = "sknn"
    level: Level = "session"

    def __init__(
        self,
        sessions: Iterable[EventSession],
        *,
        k: int = 100,
        sample_size: int = 500,
        similarity: Similarity = "cosine",
    ) -> None:
        if similarity not in ("cosine", "jaccard"):
            raise ValueError(f"unknown similarity {similarity!r}")
        self.k = k
        self.similarity: Similarity = similarity
        self.index = SessionIndex(sessions, sample_size)

    def _similarity(self, current: frozenset[str], neighbour: Neighbour) -> float:
        shared = len(current & neighbour.items)
        if self.similarity == "cosine":
            return shared / math.sqrt(len(current) * len(neighbour.items))
        return shared / len(current | neighbour.items)

    def neighbours(self, items: Sequence[str]) -> list[tuple[float, Neighbour]]:
        """The ``k`` nearest neighbours of ``items`` with their similarity."""
        current = frozenset(items)
        candidates = self.index.sample(current)
        return nearest(((self._similarity(current, n), n) for n in candidates), self.k)

    def scores(self, items: Sequence[str]) -> dict[str, float]:
        """Item -> SKNN score after the current session's ``items`` (oldest first)."""
        scores: dict[str, float] = {}
        for similarity, neighbour in self.neighbours(items):
            for item in neighbour.items:  # each item once per neighbour, so any order
                scores[item] = scores.get(item, 0.0) + similarity
        return scores

    def recommend(
        self, items: Sequence[str], k: int, *, exclude: Collection[str] = ()
    ) -> list[str]:
        return top_items(self.scores(items), k, exclude)


SKNN_PRESETS: dict[str, SKNNOptions] = {
    # rn5l/session-rec conf/save/rsc15/window/window_rsc15_baselines.yml
    "rsc15": {"k": 500, "sample_size": 10_000, "similarity": "jaccard"},
    # conf/save/diginetica/window/window_digi_baselines.yml (the file spells the sample
    # size ``sampling_size``)
    "diginetica": {"k": 100, "sample_size": 500, "similarity": "cosine"},
    # conf/save/retailrocket/session_based/window/window_retailr_baselines.yml
    "retailrocket": {"k": 50, "sample_size": 5000, "similarity": "cosine"},
}


class VSKNN:
    """Vector session kNN as session-rec's ``VMContextKNN`` (rn5l/session-rec
    ``algorithms/knn/vsknn.py``; Ludewig & Jannach 2018, "Evaluation of Session-based
    Recommendation Algorithms") with its published defaults (k=100, sample_size=500,
    sampling='recent', weighting='div', weighting_score='div', remind=True, no idf, no
    extension):

    1. similarity: each current-session position ``i`` of ``n`` (repeats counted)
       gives its item the weight ``i / n`` (a later repeat overrides an earlier one);
       a neighbour's similarity is the sum of the weights of the items it shares,
       divided by the number of distinct current items;
    2. the ``k`` most similar neighbours vote: every item of a neighbour gets the
       neighbour's similarity times ``1 / s``, where ``s`` is how many positions
       back (repeats counted, 1 = the last) the newest item it shares is.
    """

    name = "vsknn"
    level: Level = "session"

    def __init__(
        self, sessions: Iterable[EventSession], *, k: int = 100, sample_size: int = 500
    ) -> None:
        self.k = k
        self.sample_size = sample_size
        self.index = SessionIndex(sessions, sample_size)

    def scores(self, items: Sequence[str]) -> dict[str, float]:
        """Item -> V-SKNN score after the current session's ``items`` (oldest first)."""
        if not items:
            return {}
        length = len(items)
        weights = {item: position / length for position, item in enumerate(items, start=1)}
        similarities: list[tuple[float, Neighbour]] = []
        for neighbour in self.index.sample(weights):
            # summed in session order: a set's order varies between processes (hash seed),
            # and so would the last bits of the sum, and with them the ties
            shared = (w for i, w in weights.items() if i in neighbour.items)
            similarities.append((sum(shared) / len(weights), neighbour))
        scores: dict[str, float] = {}
        for similarity, neighbour in nearest(similarities, self.k):
            step = next(s for s, i in enumerate(reversed(items), start=1) if i in neighbour.items)
            vote = similarity / step
            for item in neighbour.items:
                scores[item] = scores.get(item, 0.0) + vote
        return scores

    def recommend(
        self, items: Sequence[str], k: int, *, exclude: Collection[str] = ()
    ) -> list[str]:
        return top_items(self.scores(items), k, exclude)
