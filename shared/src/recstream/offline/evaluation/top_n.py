"""The per-user top-N protocol: hold out each user's last interactions, recommend N.

For every user with at least ``min_events`` item events, the last
``holdout_fraction`` of them (at least one) by time are held out; everything
else (all other users' events included) is training. The recommender is asked
for the top N at the time of the user's last training event, from the stored
state (:func:`recstream.readmodel.load.load_context`), and the held-out items are the
relevant set (items seen before count too: a re-visit is a correct guess).
Session baselines rank from the user's last training session, user-level ones
(EASE, ALS) from all of the user's training items.

As in the next-item protocol, every method also gives the widget list, as the
API serves it by default: nothing of the user's current (last) session; it is
scored against the held-out items that are not in that session, for the users
who have any.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from recstream.contract.events import Event
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.methods import fit_baselines, split_methods, system_ranking
from recstream.offline.evaluation.metrics import TopNMetrics
from recstream.offline.evaluation.next_item import MethodProgress
from recstream.offline.evaluation.protocol import catalogue, group_sessions
from recstream.offline.evaluation.training import EvalStore, Progress
from recstream.readmodel.load import load_context
from recstream.scoring.config import ScoringConfig
from recstream.scoring.learned import LearnedRanker


@dataclass(frozen=True, slots=True)
class Holdout:
    user_id: str
    at: float  # the user's last training event: when the recommendation is asked for
    history: tuple[str, ...]  # the items of the user's last training session
    relevant: frozenset[str]
    profile: tuple[str, ...] = ()  # all of the user's training items, oldest first

    @property
    def relevant_new(self) -> frozenset[str]:
        """The held-out items a widget can show: those not in the last session."""
        return self.relevant - set(self.history)


@dataclass(frozen=True, slots=True)
class TopNSetup:
    k: int
    methods: tuple[str, ...]
    core: CoreConfig
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    baseline_params: str = "default"  # a published parameter set of the baselines
    ranker: LearnedRanker | None = None  # the model of the ``ranker`` method


@dataclass(slots=True)
class TopNScores:
    """One method: the full list against every held-out item, the widget list (nothing of
    the last session) against the held-out items new to it."""

    full: TopNMetrics
    widget: TopNMetrics
    fit_seconds: float = 0.0


@dataclass(slots=True)
class TopNResult:
    users: int
    catalogue: int
    min_events: int
    holdout_fraction: float
    methods: dict[str, TopNScores]


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
    profiles: dict[str, list[str]] = {}
    for session in group_sessions((e for e in train if e.user_id in held_by_user), gap_seconds):
        last_sessions[session.user_id] = session  # sessions come in start order
        profiles.setdefault(session.user_id, []).extend(session.items)
    holdouts = [
        Holdout(
            user,
            last_sessions[user].end,
            tuple(last_sessions[user].items),
            frozenset(items),
            tuple(profiles[user]),
        )
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
    on_method: MethodProgress | None = None,
) -> TopNResult:
    """Ask every held-out user's top N from ``store`` (which holds ``train``)."""
    system, baseline_names = split_methods(setup.methods)
    sessions = group_sessions(train, setup.core.session_gap_minutes * 60.0)
    baselines = fit_baselines(baseline_names, sessions, level="user", params=setup.baseline_params)
    result = TopNResult(
        users=len(holdouts),
        catalogue=len(catalogue(train)),
        min_events=min_events,
        holdout_fraction=fraction,
        methods={m: TopNScores(TopNMetrics(setup.k), TopNMetrics(setup.k)) for m in setup.methods},
    )
    for name, fitted in baselines.items():
        result.methods[name].fit_seconds = fitted.fit_seconds
    for case in holdouts:
        started = time.perf_counter()
        ctx = await load_context(store, case.user_id, case.at, setup.core)
        loaded = time.perf_counter() - started
        new = case.relevant_new
        current = frozenset(case.history[-1:])
        for method in system:
            scores = result.methods[method]
            first = started = time.perf_counter()
            ranking = system_ranking(
                method, ctx, setup.k, setup.scoring, setup.core, ranker=setup.ranker
            )
            scores.full.add(ranking, case.relevant, loaded + time.perf_counter() - started)
            if new:
                started = time.perf_counter()
                widget = system_ranking(
                    method, ctx, setup.k, setup.scoring, setup.core,
                    current=current, include_seen=False, ranker=setup.ranker,
                )  # fmt: skip
                scores.widget.add(widget, new, loaded + time.perf_counter() - started)
            if on_method is not None:
                on_method(method, time.perf_counter() - first)
        seen = frozenset(case.history)
        for name, fitted in baselines.items():
            scores = result.methods[name]
            history = case.history if fitted.model.level == "session" else case.profile
            first = started = time.perf_counter()
            ranking = fitted.model.recommend(history, setup.k)
            scores.full.add(ranking, case.relevant, time.perf_counter() - started)
            if new:
                started = time.perf_counter()
                widget = fitted.model.recommend(history, setup.k, exclude=seen)
                scores.widget.add(widget, new, time.perf_counter() - started)
            if on_method is not None:
                on_method(name, time.perf_counter() - first)
        if progress is not None:
            progress(1)
    return result
