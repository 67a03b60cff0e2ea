"""The feedback loop, simulated on a dataset: lists shown, a simulated user's clicks, the
outcome counters, and an experiment (fixed variants and a bandit) that reads them.

The test sessions are played in time order, as the API would see them (prequential: every
event is applied after it is predicted). Before each item event after a session's first,
the experiment picks the user's variant (a bandit arm by Thompson sampling on the arms'
counters as they stand), the blend ranks a widget list (the session's last item is on
screen and never listed; items seen in the session are not listed), and the list's
``recommendation_shown`` record is applied. The simulated user then does what the log
says they did next: when that item is on the list, the event names the list (a click on
it); else it does not, and no list gets it (with ``attribution_fallback`` off, as the
command runs it; with it on, a later view of a listed item within the window counts too).
Both records go through the consumer's own write path
(:func:`recstream.apply.batch.apply_batch`), so the counters read back are the ones the
consumer would keep, and a variant's CTR is its widget HR@k.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from recstream.apply.batch import apply_batch
from recstream.contract.events import Event, RecommendationShown, ShownItem
from recstream.contract.items import split_key
from recstream.model.attribution import OUTCOMES
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.protocol import EventSession
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.training import EvalStore
from recstream.readmodel.load import load_context
from recstream.readmodel.outcomes import ArmRecord, Rate, load_arm_records, load_outcomes
from recstream.scoring import RecommendationRequest, recommend
from recstream.scoring.config import BlendWeights, ScoringConfig
from recstream.scoring.experiments import Experiment, assign, choose, served_variants

DEFAULT_ARMS = {  # blend weights the default experiment tries: the blend, each component alone
    "blend": BlendWeights(),
    "sequential": BlendWeights(content=0, sequential=1, session=0),
    "session": BlendWeights(content=0, sequential=0, session=1),
    "content": BlendWeights(content=1, sequential=0, session=0),
}


def default_experiment(exploration: float = 0.05) -> Experiment:
    """Each of :data:`DEFAULT_ARMS` as a fixed variant (15% of the users each), and a
    bandit over all of them (the other 40%)."""
    fixed = [{"name": name, "share": 0.15, "weights": w} for name, w in DEFAULT_ARMS.items()]
    bandit = {"name": "bandit", "share": 0.4, "arms": list(DEFAULT_ARMS.values())}
    return Experiment.model_validate(
        {"id": "sim", "exploration": exploration, "variants": [*fixed, bandit]}
    )


@dataclass(frozen=True, slots=True)
class LoopSetup:
    core: CoreConfig
    scoring: ScoringConfig
    experiment: Experiment
    k: int = 10
    max_cases: int | None = None
    seed: int = 7
    # the bandit reads its counters every this many cases (the API's cache, in cases)
    refresh_every: int = 20


@dataclass(slots=True)
class LoopResult:
    cases: int = 0
    seconds: float = 0.0
    # served name -> (lists clicked, lists shown), from the counters the consumer's write
    # path kept, and as the loop itself saw them (the two agree: attribution is exact)
    counters: dict[str, Rate] = field(default_factory=dict)
    tally: dict[str, Rate] = field(default_factory=dict)
    # each bandit arm's share of the bandit's lists, per tenth of the cases
    arm_shares: list[dict[str, float]] = field(default_factory=list)


def _shown(
    user: str,
    session: str | None,
    at: float,
    list_id: str,
    variant: str,
    items: Sequence[str],
    on_screen: str,
) -> Event:
    kind, screen_id = split_key(on_screen)
    return RecommendationShown(
        event_id=f"shown-{list_id}",
        event_type="recommendation_shown",
        user_id=user,
        session_id=session,
        occurred_at=datetime.fromtimestamp(at, UTC),
        product_id=screen_id if kind == "product" else None,
        group_id=screen_id if kind == "group" else None,
        recommendation_id=list_id,
        variant=variant,
        items=[
            ShownItem(kind=split_key(i)[0], id=split_key(i)[1], position=n)
            for n, i in enumerate(items, start=1)
        ],
    )


async def simulate_loop(
    store: EvalStore,
    sessions: Sequence[EventSession],
    log: RecordLog,
    setup: LoopSetup,
    progress: Callable[[int], None] | None = None,
) -> LoopResult:
    """Play ``sessions`` (the test data) through the loop on a store holding the training
    state; ``log`` continues the training records' offsets."""
    started = time.monotonic()
    core, experiment = setup.core, setup.experiment
    rng = random.Random(setup.seed)
    bandits = {v.name: experiment.arm_names(v) for v in experiment.variants if v.arms}
    records: dict[str, ArmRecord] = {}
    timeline = sorted(
        (e.occurred_at.timestamp(), n, i, e)
        for n, s in enumerate(sessions)
        for i, e in enumerate(s.events)
    )
    seen: dict[int, list[str]] = {}
    last_at: dict[int, float] = {}
    served: list[str] = []
    result = LoopResult()
    for at, n, _, event in timeline:
        item = event.item_key
        items = seen.setdefault(n, [])
        batch: list[Event] = []
        if (
            item is not None
            and items
            and (setup.max_cases is None or result.cases < setup.max_cases)
        ):
            user = sessions[n].user_id
            if result.cases % setup.refresh_every == 0:
                records = await load_arm_records(
                    store, [a for arms in bandits.values() for a in arms]
                )
            choice = choose(experiment, user, records, rng)
            scoring = choice.scoring(setup.scoring)
            ctx = await load_context(store, user, last_at[n], core)
            request = RecommendationRequest(
                limit=setup.k, current_items=frozenset({items[-1]}), include_seen=False
            )
            listed = [s.item for s in recommend(ctx, request, scoring, core).items]
            list_id = f"sim-{result.cases}"
            if listed:
                batch.append(
                    _shown(
                        user, event.session_id, last_at[n], list_id, choice.name, listed, items[-1]
                    )
                )
                if item in listed:  # the user went to it from the list
                    event = event.model_copy(update={"recommendation_id": list_id})
                clicked = item in listed and OUTCOMES.get(event.event_type) == "click"
                before = result.tally.get(choice.name, Rate(0, 0))
                result.tally[choice.name] = Rate(before.count + clicked, before.total + 1)
                if assign(experiment, user).arms:
                    served.append(choice.name)
            result.cases += 1
            if progress is not None:
                progress(1)
        batch.append(event)
        report = await apply_batch(store, [log.append(e) for e in batch], core)
        if report.dead_letters:
            letter = report.dead_letters[0]
            raise ValueError(f"a simulated record was rejected: {letter.reason}: {letter.detail}")
        last_at[n] = at
        if item is not None:
            items.append(item)
    found = await load_outcomes(store, variants=served_variants(experiment))
    result.counters = {
        v.variant: Rate(v.total.counts.get("click", 0), v.total.impressions) for v in found
    }
    tenth = max(1, -(-len(served) // 10))  # ceiling: ten parts at most
    for start in range(0, len(served), tenth):
        part = served[start : start + tenth]
        names = [a for arms in bandits.values() for a in arms]
        result.arm_shares.append({a: part.count(a) / len(part) for a in names})
    result.seconds = time.monotonic() - started
    return result
