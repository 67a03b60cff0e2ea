"""Ranking metrics (pure): next-item HR/MRR/NDCG at every cut-off, top-N set metrics.

Next item (one target per case), for a cut-off ``k``:

- ``HR@k`` (= Recall@k): the share of cases whose target is in the top ``k``;
- ``MRR@k``: the mean of ``1 / rank`` over cases, 0 when the target is below ``k``;
- ``NDCG@k``: the mean of ``1 / log2(rank + 1)``, 0 below ``k`` (one relevant item,
  so the ideal DCG is 1).

Each is also kept for the cases whose target is new to the session (not a
re-visit): the share of re-visits differs between datasets and a re-visit is
never shown by a widget, so the new-item figures compare what users can gain.

Top-N (a set of relevant items per user): Precision@k, Recall@k, NDCG@k with binary
gains, and the hit rate (the share of users with at least one relevant item in the
top ``k``). Item coverage is the share of the catalogue recommended to anyone.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field


def rank_of(target: str, ranking: Sequence[str], k: int) -> int | None:
    """1-based rank of ``target`` among the first ``k`` of ``ranking``, or None."""
    for position, item in enumerate(ranking[:k], start=1):
        if item == target:
            return position
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(slots=True)
class NextItemMetrics:
    """Accumulates next-item cases of one method: rank histogram, coverage, latency."""

    k: int
    cases: int = 0
    ranks: list[int] = field(default_factory=list)  # ranks[r - 1]: cases with target at r
    recommended: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)  # seconds per request
    # cases whose target is already in the session (a re-visit), and their hits at k
    revisit_cases: int = 0
    revisit_hits: int = 0
    new_ranks: list[int] = field(default_factory=list)  # as ``ranks``, new-item cases only

    def __post_init__(self) -> None:
        if not self.ranks:
            self.ranks = [0] * self.k
        if not self.new_ranks:
            self.new_ranks = [0] * self.k

    def add(
        self,
        ranking: Sequence[str],
        target: str,
        latency: float | None = None,
        *,
        revisit: bool = False,
    ) -> int | None:
        top = ranking[: self.k]
        self.cases += 1
        self.recommended.update(top)
        if latency is not None:
            self.latencies.append(latency)
        rank = rank_of(target, top, self.k)
        if rank is not None:
            self.ranks[rank - 1] += 1
        if revisit:
            self.revisit_cases += 1
            self.revisit_hits += rank is not None
        elif rank is not None:
            self.new_ranks[rank - 1] += 1
        return rank

    @property
    def new_cases(self) -> int:
        return self.cases - self.revisit_cases

    def revisit_share(self) -> float:
        return self.revisit_cases / self.cases if self.cases else 0.0

    def split_hit_rates(self) -> tuple[float, float]:
        """HR@k of the re-visit cases and of the cases whose target is new to the session."""
        new_cases = self.cases - self.revisit_cases
        new_hits = sum(self.ranks) - self.revisit_hits
        revisit = self.revisit_hits / self.revisit_cases if self.revisit_cases else 0.0
        return revisit, (new_hits / new_cases if new_cases else 0.0)

    def hit_rate(self, k: int) -> float:
        return sum(self.ranks[:k]) / self.cases if self.cases else 0.0

    def mrr(self, k: int) -> float:
        total = sum(n / r for r, n in enumerate(self.ranks[:k], start=1))
        return total / self.cases if self.cases else 0.0

    def new_hit_rate(self, k: int) -> float:
        """HR@k over the cases whose target is new to the session."""
        return sum(self.new_ranks[:k]) / self.new_cases if self.new_cases else 0.0

    def new_mrr(self, k: int) -> float:
        total = sum(n / r for r, n in enumerate(self.new_ranks[:k], start=1))
        return total / self.new_cases if self.new_cases else 0.0

    def mean_ms(self) -> float:
        """The mean cost of one case in milliseconds (what a method costs per request)."""
        return 1000.0 * sum(self.latencies) / len(self.latencies) if self.latencies else 0.0

    def ndcg(self, k: int) -> float:
        total = sum(n / math.log2(r + 1) for r, n in enumerate(self.ranks[:k], start=1))
        return total / self.cases if self.cases else 0.0

    def coverage(self, catalogue_size: int) -> float:
        return len(self.recommended) / catalogue_size if catalogue_size else 0.0


def dcg(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    return sum(1.0 / math.log2(i + 2) for i, item in enumerate(ranking[:k]) if item in relevant)


@dataclass(slots=True)
class TopNMetrics:
    """Accumulates per-user top-N results of one method."""

    k: int
    users: int = 0
    precision_sum: float = 0.0
    recall_sum: float = 0.0
    ndcg_sum: float = 0.0
    hits: int = 0
    recommended: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)

    def add(
        self, ranking: Sequence[str], relevant: Iterable[str], latency: float | None = None
    ) -> int:
        wanted = set(relevant)
        if not wanted:
            raise ValueError("a top-N case needs at least one relevant item")
        top = list(dict.fromkeys(ranking))[: self.k]
        found = sum(1 for item in top if item in wanted)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(wanted), self.k)))
        self.users += 1
        self.precision_sum += found / self.k
        self.recall_sum += found / len(wanted)
        self.ndcg_sum += dcg(top, wanted, self.k) / ideal
        self.hits += 1 if found else 0
        self.recommended.update(top)
        if latency is not None:
            self.latencies.append(latency)
        return found

    def mean(self, total: float) -> float:
        return total / self.users if self.users else 0.0

    def mean_ms(self) -> float:
        return 1000.0 * sum(self.latencies) / len(self.latencies) if self.latencies else 0.0

    def coverage(self, catalogue_size: int) -> float:
        return len(self.recommended) / catalogue_size if catalogue_size else 0.0
