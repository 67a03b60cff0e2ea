"""The next-item protocol run against a store, in frozen or prequential mode.

The store holds the training state (see :mod:`recstream.offline.evaluation.training`).
For every case the read model is loaded with :func:`recstream.readmodel.load.load_context`
at ``now`` = the time of the session's latest event before the target (the
moment a request would follow that event), and each system method ranks from
it; the baselines rank from the session's items.

- **frozen**: a test session's events are folded only into a private copy of
  its user's state (:func:`recstream.model.fold.fold_user`), passed to
  ``load_context(state=...)``; the shared statistics stay those of training, and
  sessions are independent of each other (comparable with published tables).
- **prequential** (test, then learn): all test events in time order; each is
  predicted from the stored state, then applied with
  :func:`recstream.apply.batch.apply_batch`, so later cases see it, as live.

The baselines are trained on the training sessions only, in both modes.

Every method gives two lists per case (see :mod:`recstream.offline.evaluation.methods`):
the full list is scored on every case (the published protocol) and split into
re-visit and new-item cases; the widget list, which shows nothing of the
session, is scored on the new-item cases (a re-visit is never in it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from recstream.apply.batch import apply_batch
from recstream.contract.events import Event
from recstream.model.config import CoreConfig
from recstream.model.fold import PositionedEvent, fold_user
from recstream.model.state import UserState
from recstream.offline.evaluation.methods import fit_baselines, split_methods, system_ranking
from recstream.offline.evaluation.metrics import NextItemMetrics
from recstream.offline.evaluation.protocol import (
    EventSession,
    catalogue,
    count_cases,
    group_sessions,
    session_cases,
)
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.training import EvalStore, Progress
from recstream.readmodel.context import RecommendationContext
from recstream.readmodel.load import load_context
from recstream.scoring.config import ScoringConfig
from recstream.scoring.learned import LearnedRanker

Mode = Literal["frozen", "prequential"]
MODES: tuple[Mode, ...] = ("frozen", "prequential")


@dataclass(frozen=True, slots=True)
class NextItemSetup:
    k: int
    methods: tuple[str, ...]
    core: CoreConfig
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    baseline_params: str = "default"  # a published parameter set of the baselines
    ranker: LearnedRanker | None = None  # the model of the ``ranker`` method


@dataclass(slots=True)
class MethodScores:
    """One method: the full list on every case, the widget list on the new-item cases."""

    full: NextItemMetrics
    widget: NextItemMetrics
    fit_seconds: float = 0.0  # training time (baselines; the system's state is the fold's)


@dataclass(slots=True)
class NextItemResult:
    mode: Mode
    sessions: int
    cases: int
    catalogue: int
    targets_in_catalogue: int
    methods: dict[str, MethodScores]


# Called after each method ranked a case: the method and the seconds its lists took.
MethodProgress = Callable[[str, float], None]


class _Scorer:
    """Runs every method on one case and records it."""

    def __init__(
        self,
        setup: NextItemSetup,
        train_sessions: Sequence[EventSession],
        result: NextItemResult,
        on_method: MethodProgress | None = None,
    ) -> None:
        self.setup = setup
        self.on_method = on_method
        self.system, baselines = split_methods(setup.methods)
        self.result = result
        self.baselines = fit_baselines(
            baselines, train_sessions, level="session", params=setup.baseline_params
        )
        for name, fitted in self.baselines.items():
            result.methods[name].fit_seconds = fitted.fit_seconds

    def case(
        self, ctx: RecommendationContext, load_seconds: float, items: Sequence[str], target: str
    ) -> None:
        """Every method's top K for one case: the context for the system, ``items`` (the
        session's items so far, oldest first) for the baselines."""
        setup, revisit = self.setup, target in items
        current = frozenset(items[-1:])  # the product just viewed is on screen
        for method in self.system:
            scores = self.result.methods[method]
            started = time.perf_counter()
            ranking = system_ranking(
                method, ctx, setup.k, setup.scoring, setup.core, ranker=setup.ranker
            )
            latency = load_seconds + time.perf_counter() - started
            scores.full.add(ranking, target, latency, revisit=revisit)
            spent = latency
            if not revisit:
                started = time.perf_counter()
                widget = system_ranking(
                    method, ctx, setup.k, setup.scoring, setup.core,
                    current=current, include_seen=False, ranker=setup.ranker,
                )  # fmt: skip
                latency = load_seconds + time.perf_counter() - started
                scores.widget.add(widget, target, latency)
                spent += latency
            self._done(method, spent)
        seen = frozenset(items)
        for name, fitted in self.baselines.items():
            scores = self.result.methods[name]
            first = time.perf_counter()
            ranking = fitted.model.recommend(items, setup.k)
            scores.full.add(ranking, target, time.perf_counter() - first, revisit=revisit)
            if not revisit:
                started = time.perf_counter()
                widget = fitted.model.recommend(items, setup.k, exclude=seen)
                scores.widget.add(widget, target, time.perf_counter() - started)
            self._done(name, time.perf_counter() - first)

    def _done(self, method: str, seconds: float) -> None:
        if self.on_method is not None:
            self.on_method(method, seconds)


def _new_result(
    mode: Mode, setup: NextItemSetup, train: Sequence[Event], test: Sequence[EventSession]
) -> NextItemResult:
    items = catalogue(train)
    targets = [c.target_item for s in test for c in session_cases(s)]
    return NextItemResult(
        mode=mode,
        sessions=len(test),
        cases=count_cases(test),
        catalogue=len(items),
        targets_in_catalogue=sum(1 for t in targets if t in items),
        methods={
            m: MethodScores(NextItemMetrics(setup.k), NextItemMetrics(setup.k))
            for m in setup.methods
        },
    )


async def evaluate_next_item(
    store: EvalStore,
    train: Sequence[Event],
    test: Sequence[Event],
    log: RecordLog,
    setup: NextItemSetup,
    mode: Mode,
    *,
    progress: Progress | None = None,
    on_method: MethodProgress | None = None,
) -> NextItemResult:
    """Run the protocol over ``test`` against ``store`` (which holds ``train`` applied
    through ``log``); prequential mode appends the test events to ``log`` and the store."""
    gap = setup.core.session_gap_minutes * 60.0
    train_sessions = group_sessions(train, gap)
    test_sessions = group_sessions(test, gap)
    result = _new_result(mode, setup, train, test_sessions)
    scorer = _Scorer(setup, train_sessions, result, on_method)
    if mode == "frozen":
        await play_frozen(store, test_sessions, log, setup.core, scorer.case, progress)
    else:
        await _prequential(store, test_sessions, log, scorer, progress)
    return result


# Called for every case: the loaded context, the seconds loading it took, the session's
# items so far (oldest first) and the target item.
CaseHandler = Callable[[RecommendationContext, float, Sequence[str], str], None]


async def play_frozen(
    store: EvalStore,
    sessions: Sequence[EventSession],
    log: RecordLog,
    core: CoreConfig,
    on_case: CaseHandler,
    progress: Progress | None = None,
) -> None:
    """Every case of ``sessions`` in frozen mode: each session's events are folded only into
    a private copy of its user's state; the store is read, never written."""
    scratch = RecordLog(log.topic, log.partitions, log.next_offsets)  # never committed
    for session in sessions:
        state = await store.get_user(session.user_id) or UserState(session.user_id)
        items: list[str] = []
        now = 0.0
        for event in session.events:
            item = event.item_key
            if item is not None and items:
                started = time.perf_counter()
                ctx = await load_context(store, session.user_id, now, core, state=state)
                on_case(ctx, time.perf_counter() - started, items, item)
                if progress is not None:
                    progress(1)
            record = scratch.append(event)
            positioned = PositionedEvent(
                event, record.partition, record.offset, record.timestamp_ms / 1000.0
            )
            state = fold_user(state, [positioned], core).state
            now = event.occurred_at.timestamp()
            if item is not None:
                items.append(item)


async def score_frozen(
    store: EvalStore,
    sessions: Sequence[EventSession],
    log: RecordLog,
    setup: NextItemSetup,
    progress: Progress | None = None,
) -> dict[str, MethodScores]:
    """The system methods of ``setup`` on ``sessions`` in frozen mode (no baselines): what
    ``recstream train`` reports on its validation sessions."""
    result = NextItemResult(
        "frozen",
        len(sessions),
        count_cases(sessions),
        0,
        0,
        {
            m: MethodScores(NextItemMetrics(setup.k), NextItemMetrics(setup.k))
            for m in setup.methods
        },
    )
    scorer = _Scorer(setup, [], result)
    await play_frozen(store, sessions, log, setup.core, scorer.case, progress)
    return result.methods


async def _prequential(
    store: EvalStore,
    sessions: Sequence[EventSession],
    log: RecordLog,
    scorer: _Scorer,
    progress: Progress | None,
) -> None:
    core = scorer.setup.core
    timeline = sorted(
        (
            (e.occurred_at.timestamp(), n, i, e)
            for n, s in enumerate(sessions)
            for i, e in enumerate(s.events)
        ),
        key=lambda row: (row[0], row[1], row[2]),
    )
    seen: dict[int, list[str]] = {}
    last_at: dict[int, float] = {}
    for at, n, _, event in timeline:
        session = sessions[n]
        items = seen.setdefault(n, [])
        item = event.item_key
        if item is not None and items:
            started = time.perf_counter()
            ctx = await load_context(store, session.user_id, last_at[n], core)
            scorer.case(ctx, time.perf_counter() - started, items, item)
            if progress is not None:
                progress(1)
        report = await apply_batch(store, [log.append(event)], core)
        if report.dead_letters:
            letter = report.dead_letters[0]
            raise ValueError(f"test event {event.event_id} rejected: {letter.reason}")
        last_at[n] = at
        if item is not None:
            items.append(item)
