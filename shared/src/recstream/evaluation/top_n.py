"""The per-user top-N protocol: hold out each user's last interactions, recommend N.

For every user with at least ``min_events`` item events, the last
``holdout_fraction`` of them (at least one) by time are held out; everything
else (all other users' events included) is training. The recommender is asked
for the top N at the time of the user's last training event, from the stored
state (:func:`recstream.reads.load_context`), and the held-out items are the
relevant set (items seen before count too: a re-visit is a correct guess).
The baselines rank from the user's last training session.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from recstream.config import CoreConfig
from recstream.evaluation.baselines import VSKNN, MostPopular
from recstream.evaluation.methods import split_methods, system_ranking
from recstream.evaluation.metrics import TopNMetrics
from recstream.evaluation.protocol import catalogue, group_sessions
from recstream.evaluation.training import EvalStore, Progress
from recstream.events import Event
from recstream.reads import load_context
from recstream.scoring.config import ScoringConfig


@dataclass(frozen=True, slots=True)
class Holdout:
    user_id: str
    at: float  # the user's last training event: when the recommendation is asked for
    history: tuple[str, ...]  # the items of the user's last training session
    relevant: frozenset[str]


@dataclass(frozen=True, slots=True)
class TopNSetup:
    k: int
    methods: tuple[str, ...]
    core: CoreConfig
    scoring: ScoringConfig = field(default_factory=ScoringConfig)


@dataclass(slots=True)
class TopNResult:
    users: int
    catalogue: int
    min_events: int
    holdout_fraction: float
    methods: dict[str, TopNMetrics]


def holdout_split(
    events: Sequence[Event], *, min_events: int, fraction: float, gap_seconds: float
) -> tuple[list[Event], list[Holdout]]:
    """Training events and the held-out part of every user with enough history."""
    if min_events < 2 or not 0.0 < fraction < 1.0:
        raise ValueError("min_events must be >= 2 and fraction between 0 and 1")
    by_user: dict[str, list[tuple[float, int]]] = {}
    for index, event in enumerate(events):
        if event.item_key is not None:
            by_user.setdefault(event.user_id, []).append((event.occurred_at.timestamp(), index))
    held: set[int] = set()
    for rows in by_user.values():
        if len(rows) >= min_events:
            rows.sort()
            count = max(1, math.floor(len(rows) * fraction))
            held.update(index for _, index in rows[-count:])
    train = [e for i, e in enumerate(events) if i not in held]
    held_by_user: dict[str, set[str]] = {}
    for index in sorted(held):
        event = events[index]
        assert event.item_key is not None
        held_by_user.setdefault(event.user_id, set()).add(event.item_key)
    last_sessions = {}
    for session in group_sessions((e for e in train if e.user_id in held_by_user), gap_seconds):
        last_sessions[session.user_id] = session  # sessions come in start order
    holdouts = [
        Holdout(user, last_sessions[user].end, tuple(last_sessions[user].items), frozenset(items))
        for user, items in sorted(held_by_user.items())
    ]
    return train, holdouts


async def evaluate_top_n(
    store: EvalStore,
    train: Sequence[Event],
    holdouts: Sequence[Holdout],
    setup: TopNSetup,
    *,
    min_events: int,
    fraction: float,
    progress: Progress | None = None,
) -> TopNResult:
    """Ask every held-out user's top N from ``store`` (which holds ``train``)."""
    system, baseline_names = split_methods(setup.methods)
    sessions = group_sessions(train, setup.core.session_gap_minutes * 60.0)
    baselines = {
        name: (MostPopular(sessions) if name == "pop-baseline" else VSKNN(sessions))
        for name in baseline_names
    }
    result = TopNResult(
        users=len(holdouts),
        catalogue=len(catalogue(train)),
        min_events=min_events,
        holdout_fraction=fraction,
        methods={m: TopNMetrics(setup.k) for m in setup.methods},
    )
    for case in holdouts:
        started = time.perf_counter()
        ctx = await load_context(store, case.user_id, case.at, setup.core)
        loaded = time.perf_counter() - started
        for method in system:
            started = time.perf_counter()
            ranking = system_ranking(method, ctx, setup.k, setup.scoring, setup.core)
            latency = loaded + time.perf_counter() - started
            result.methods[method].add(ranking, case.relevant, latency)
        for name, model in baselines.items():
            started = time.perf_counter()
            ranking = model.recommend(case.history, setup.k)
            result.methods[name].add(ranking, case.relevant, time.perf_counter() - started)
        if progress is not None:
            progress(1)
    return result
