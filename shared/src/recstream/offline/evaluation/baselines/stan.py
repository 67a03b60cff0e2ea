"""Sequence and time aware session kNN: STAN and V-STAN (pure).

STAN (Garg, Gupta, Malhotra, Vig, Shroff; SIGIR 2019, "Sequence and Time Aware
Neighborhood for Session-based Recommendations: STAN") adds three exponential decays
to session kNN, written here as session-rec computes them (rn5l/session-rec
``algorithms/knn/stan.py``):

1. position in the current session (``lambda_spw``): the item at position ``p`` of
   ``n`` (1-based, repeats counted, a later repeat overrides an earlier one) weighs
   ``w(i) = exp((p - n) / lambda_spw)``; the similarity of a neighbour ``b`` (a set) is
   the cosine ``sum(w(i) for shared i) / (sqrt(sum(w(i)^2)) * sqrt(|b|))``;
2. recency of the neighbour (``lambda_snh``, in days): the similarity is multiplied by
   ``exp(-(t - t_b) / lambda_snh)``, ``t`` the current session's time and ``t_b`` the
   neighbour's last event;
3. position in the neighbour (``lambda_inh``): a neighbour gives each of its items
   ``similarity * exp(-|p_b(i) - p_b(i*)| / lambda_inh)``, where ``p_b`` is the (last)
   position in the neighbour, and ``i*`` the shared item that comes last in the
   neighbour (session-rec's ``pos_i_star``, also recpack's ``STAN``).

The current session's own items are scored too (session-rec's ``remind=True``).
``t`` defaults to the end of the latest training session: the decay of step 2 is then
a factor common to all neighbours of a case, so the ranking does not depend on ``t``.

V-STAN (Ludewig, Latifi, Jannach; 2021, "Empirical analysis of session-based
recommendation algorithms", UMUAI) combines STAN with V-SKNN's ideas, as session-rec's
``VSKNN_STAN`` (rn5l/session-rec ``algorithms/knn/vstan.py``) does:

- ``similarity="vec"``: V-SKNN's vector similarity, ``sum(w(i) for shared i)`` divided
  by the number of distinct current items (``"cosine"``: STAN's);
- idf (``lambda_idf``): a vote is multiplied by ``1 + lambda_idf * idf(item)``, with
  ``idf(item) = log(sessions / events of item)`` over the training data;
- position of the match in the current session (``lambda_ipw``): a neighbour's votes are
  multiplied by ``exp((p - n) / lambda_ipw)``, ``p`` the last position of the current
  session whose item the neighbour contains (V-SKNN's ``weighting_score``).

Neighbours are sampled and tie-broken as in :mod:`recstream.offline.evaluation.baselines.knn`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from typing import Literal, TypedDict

from recstream.contract.units import DAY
from recstream.offline.evaluation.baselines.base import Level, top_items
from recstream.offline.evaluation.baselines.knn import Neighbour, SessionIndex, nearest
from recstream.offline.evaluation.protocol import EventSession

VectorSimilarity = Literal["cosine", "vec"]


class STANOptions(TypedDict, total=False):
    k: int
    sample_size: int
    lambda_spw: float
    lambda_snh: float
    lambda_inh: float


class VSTANOptions(STANOptions, total=False):
    similarity: VectorSimilarity
    lambda_ipw: float
    lambda_idf: float


class _TimeAwareKNN:
    """STAN, and V-STAN when ``lambda_ipw`` / ``lambda_idf`` are given."""

    level: Level = "session"

    def __init__(
        self,
        sessions: Iterable[EventSession],
        *,
        k: int,
        sample_size: int,
        similarity: VectorSimilarity,
        lambda_spw: float,
        lambda_snh: float,
        lambda_inh: float,
        lambda_ipw: float | None,
        lambda_idf: float | None,
    ) -> None:
        if similarity not in ("cosine", "vec"):
            raise ValueError(f"unknown similarity {similarity!r}")
        decays = [lambda_spw, lambda_snh, lambda_inh]
        if lambda_ipw is not None:
            decays.append(lambda_ipw)
        if min(decays) <= 0:
            raise ValueError("the lambdas of the decays must be positive")
        self.k = k
        self.similarity: VectorSimilarity = similarity
        self.lambda_spw = lambda_spw
        self.lambda_snh = lambda_snh
        self.lambda_inh = lambda_inh
        self.lambda_ipw = lambda_ipw
        self.lambda_idf = lambda_idf
        self.index = SessionIndex(sessions, sample_size)
        self.idf: dict[str, float] = {}
        if lambda_idf is not None:
            events: dict[str, int] = {}
            for neighbour in self.index.sessions:
                for item in neighbour.sequence:
                    events[item] = events.get(item, 0) + 1
            total = len(self.index.sessions)
            self.idf = {item: math.log(total / n) for item, n in events.items()}

    def neighbours(
        self, items: Sequence[str], *, at: float | None = None
    ) -> list[tuple[float, Neighbour]]:
        """The ``k`` nearest neighbours of ``items`` with their time-decayed similarity."""
        if not items:
            return []
        now = self.index.latest if at is None else at
        length = len(items)
        weights = {
            item: math.exp((position - length) / self.lambda_spw)
            for position, item in enumerate(items, start=1)
        }
        # sums in session order, never a set's order (which depends on the hash seed)
        norm = math.sqrt(sum(w * w for w in weights.values()))
        similarities: list[tuple[float, Neighbour]] = []
        for neighbour in self.index.sample(weights):
            shared = sum(w for i, w in weights.items() if i in neighbour.items)
            if self.similarity == "cosine":
                similarity = shared / (norm * math.sqrt(len(neighbour.items)))
            else:
                similarity = shared / len(weights)
            decay = math.exp(-(now - neighbour.last_at) / (self.lambda_snh * DAY))
            similarities.append((similarity * decay, neighbour))
        return nearest(similarities, self.k)

    def scores(self, items: Sequence[str], *, at: float | None = None) -> dict[str, float]:
        """Item -> score after the current session's ``items`` (oldest first), the session
        being at ``at`` (Unix seconds; default: the end of the latest training session)."""
        current = frozenset(items)
        length = len(items)
        scores: dict[str, float] = {}
        for similarity, neighbour in self.neighbours(items, at=at):
            last: dict[str, int] = {}  # item -> its last position in the neighbour
            star = 0
            for position, item in enumerate(neighbour.sequence, start=1):
                last[item] = position
                if item in current:
                    star = position
            weight = similarity
            if self.lambda_ipw is not None:
                match = max(p for p, i in enumerate(items, start=1) if i in neighbour.items)
                weight *= math.exp((match - length) / self.lambda_ipw)
            for item, position in last.items():
                vote = weight * math.exp(-abs(position - star) / self.lambda_inh)
                if self.lambda_idf is not None:
                    vote *= 1.0 + self.lambda_idf * self.idf[item]
                scores[item] = scores.get(item, 0.0) + vote
        return scores

    def recommend(
        self, items: Sequence[str], k: int, *, exclude: Collection[str] = ()
    ) -> list[str]:
        return top_items(self.scores(items), k, exclude)


class STAN(_TimeAwareKNN):
    """STAN (see the module docstring).

    Defaults: session-rec's ``STAN`` (``algorithms/knn/stan.py``): ``k=100`` (its
    documented default), ``sample_size=5000``, ``lambda_spw=1.02``, ``lambda_snh=5``
    days, ``lambda_inh=2.05``. Tuned values per dataset: :data:`STAN_PRESETS`.
    """

    name = "stan"

    def __init__(
        self,
        sessions: Iterable[EventSession],
        *,
        k: int = 100,
        sample_size: int = 5000,
        lambda_spw: float = 1.02,
        lambda_snh: float = 5.0,
        lambda_inh: float = 2.05,
    ) -> None:
        super().__init__(
            sessions,
            k=k,
            sample_size=sample_size,
            similarity="cosine",
            lambda_spw=lambda_spw,
            lambda_snh=lambda_snh,
            lambda_inh=lambda_inh,
            lambda_ipw=None,
            lambda_idf=None,
        )


class VSTAN(_TimeAwareKNN):
    """V-STAN (see the module docstring).

    Defaults: session-rec's ``VSKNN_STAN`` (``algorithms/knn/vstan.py``): ``k=100`` (its
    documented default), ``sample_size=5000``, cosine, ``lambda_spw=1.02``,
    ``lambda_snh=5`` days, ``lambda_inh=2.05``, ``lambda_ipw=1.02``, ``lambda_idf=5``.
    Tuned values per dataset: :data:`VSTAN_PRESETS`.
    """

    name = "vstan"

    def __init__(
        self,
        sessions: Iterable[EventSession],
        *,
        k: int = 100,
        sample_size: int = 5000,
        similarity: VectorSimilarity = "cosine",
        lambda_spw: float = 1.02,
        lambda_snh: float = 5.0,
        lambda_inh: float = 2.05,
        lambda_ipw: float = 1.02,
        lambda_idf: float = 5.0,
    ) -> None:
        super().__init__(
            sessions,
            k=k,
            sample_size=sample_size,
            similarity=similarity,
            lambda_spw=lambda_spw,
            lambda_snh=lambda_snh,
            lambda_inh=lambda_inh,
            lambda_ipw=lambda_ipw,
            lambda_idf=lambda_idf,
        )


# session-rec's values tuned for MRR@20 (the ``*-mrr`` keys) in rn5l/session-rec
# conf/save/<dataset>/window/window_<dataset>_{stan,vstan}.yml (retailrocket:
# conf/save/retailrocket/session_based/window/window_retailr_{stan,vstan}.yml)
STAN_PRESETS: dict[str, STANOptions] = {
    "rsc15": {
        "k": 1000,
        "sample_size": 10_000,
        "lambda_spw": 0.00001,
        "lambda_snh": 10.0,
        "lambda_inh": 2.0,
    },
    "diginetica": {
        "k": 500,
        "sample_size": 10_000,
        "lambda_spw": 1.225,
        "lambda_snh": 20.0,
        "lambda_inh": 4.9,
    },
    "retailrocket": {
        "k": 500,
        "sample_size": 1000,
        "lambda_spw": 1.81,
        "lambda_snh": 100.0,
        "lambda_inh": 0.4525,
    },
}
VSTAN_PRESETS: dict[str, VSTANOptions] = {
    "rsc15": {
        "k": 1500,
        "sample_size": 10_000,
        "similarity": "cosine",
        "lambda_spw": 0.5,
        "lambda_snh": 5.0,
        "lambda_inh": 2.0,
        "lambda_ipw": 2.0,
        "lambda_idf": 2.0,
    },
    "diginetica": {
        "k": 1500,
        "sample_size": 5000,
        "similarity": "cosine",
        "lambda_spw": 4.9,
        "lambda_snh": 40.0,
        "lambda_inh": 4.9,
        "lambda_ipw": 1.225,
        "lambda_idf": 10.0,
    },
    "retailrocket": {
        "k": 1000,
        "sample_size": 2500,
        "similarity": "vec",
        "lambda_spw": 3.62,
        "lambda_snh": 100.0,
        "lambda_inh": 0.4525,
        "lambda_ipw": 3.62,
        "lambda_idf": 1.0,
    },
}
