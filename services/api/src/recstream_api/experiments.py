"""Which variant ranks a ``POST /recommendations`` request: the running experiment's, or
what serves without one (:mod:`recstream.scoring.experiments`).

A bandit variant reads its arms' outcome counters from Redis (lists shown and clicked,
counted by the consumer); a process reuses what it read for
``RECSTREAM_BANDIT_COUNTERS_SECONDS``, so the bandit learns from clicks at most that late.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from recstream.readmodel.outcomes import ArmRecord, load_arm_records
from recstream.scoring.config import ScoringConfig
from recstream.scoring.experiments import Experiment, assign, choose
from recstream.scoring.learned import LearnedRanker
from recstream.store.reads import StatsReader


@dataclass(frozen=True, slots=True)
class Serving:
    """How one request is ranked: the served variant's name (None: no experiment runs, the
    name follows what ranked), the blend's settings and the learned model, if any."""

    variant: str | None
    scoring: ScoringConfig
    ranker: LearnedRanker | None


def running(experiments: Sequence[Experiment], at: datetime) -> Experiment | None:
    return next((e for e in experiments if e.running(at)), None)


class ArmCounters:
    """The bandits' arm counters, read from the store and reused for ``ttl`` seconds."""

    def __init__(
        self, reader: StatsReader, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._reader = reader
        self._ttl = ttl
        self._clock = clock
        self._cached: dict[tuple[str, ...], tuple[float, dict[str, ArmRecord]]] = {}

    async def records(self, names: Sequence[str]) -> dict[str, ArmRecord]:
        key = tuple(names)
        now = self._clock()
        cached = self._cached.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        found = await load_arm_records(self._reader, names)
        self._cached[key] = (now, found)
        return found


async def serving(
    experiments: Sequence[Experiment],
    user_id: str,
    at: datetime,
    scoring: ScoringConfig,
    ranker: LearnedRanker | None,
    counters: ArmCounters,
    rng: random.Random,
    served: str | None = None,
) -> Serving:
    """The variant of ``user_id`` in the experiment running at ``at``, if any (``served``:
    a bandit arm of the user's that ranked an earlier list, served again without a draw)."""
    experiment = running(experiments, at)
    if experiment is None:
        return Serving(None, scoring, ranker)
    variant = assign(experiment, user_id)
    records = await counters.records(experiment.arm_names(variant)) if variant.arms else {}
    choice = choose(experiment, user_id, records, rng, served)
    return Serving(choice.name, choice.scoring(scoring), ranker if choice.ranker else None)
