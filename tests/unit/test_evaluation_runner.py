"""The protocols run against the in-memory store: frozen vs prequential, top-N, determinism."""

from __future__ import annotations

import copy

import pytest

from recstream.contract.events import Event, EventType, validate_event
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.methods import ALL_METHODS, UnknownMethodError, parse_methods
from recstream.offline.evaluation.next_item import NextItemSetup, evaluate_next_item
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.report import next_item_summary, top_n_summary
from recstream.offline.evaluation.top_n import TopNSetup, evaluate_top_n, holdout_split
from recstream.offline.evaluation.training import build_state, landmark_for
from recstream.scoring.config import ScoringConfig
from recstream.scoring.learned import LearnedRanker
from recstream.store.memory import MemoryStore

from .eventgen import make_event
from .ranker_models import one_feature_artifact

GAP = 1800.0


def sessions_of(start_minute: float, prefix: str, *item_lists: list[str]) -> list[Event]:
    """One user per session, sessions two hours apart, items a minute apart."""
    events = []
    for n, items in enumerate(item_lists):
        user = f"{prefix}{n}"
        for i, item in enumerate(items):
            raw = make_event(
                f"{user}-{i}", EventType.PRODUCT_VIEW, user,
                minutes=start_minute + 120 * n + i, product_id=item, session_id=f"{user}s",
            )  # fmt: skip
            events.append(validate_event(raw))
    return events


TRAIN = sessions_of(0, "tr", ["X", "Q"], ["Y", "Q"], ["Y", "Z"], ["Z", "Q"])
TEST = sessions_of(1000, "te", ["X", "Y"], ["X", "Y"], ["X", "Y"])


async def trained(train: list[Event]) -> tuple[MemoryStore, RecordLog, CoreConfig]:
    core = CoreConfig(decay_landmark=landmark_for(train))
    store, log = MemoryStore(), RecordLog("eval", 3)
    stats = await build_state(store, train, log, core, batch_records=2)
    assert stats.applied == len(train)
    assert not stats.dead_letters
    return store, log, core


async def test_frozen_mode_leaves_the_store_alone_and_prequential_learns() -> None:
    store, log, core = await trained(TRAIN)
    # without the reminder (the anchor itself as a candidate), rank 1 is a transition
    scoring = ScoringConfig(reminder_weight=0.0)
    setup = NextItemSetup(1, ("sequential", "pop-baseline", "vsknn"), core, scoring)
    before = copy.deepcopy((store.users, store.zsets, store.hashes, store.strings))
    frozen = await evaluate_next_item(store, TRAIN, TEST, log, setup, "frozen")
    assert (store.users, store.zsets, store.hashes, store.strings) == before
    assert (frozen.cases, frozen.sessions, frozen.catalogue, frozen.targets_in_catalogue) == (
        3, 3, 4, 3,
    )  # fmt: skip
    # training has X -> Q only: frozen never predicts Y after X
    assert frozen.methods["sequential"].full.hit_rate(1) == 0.0
    assert frozen.methods["sequential"].full.revisit_cases == 0  # X, Y: no target seen before

    preq = await evaluate_next_item(store, TRAIN, TEST, log, setup, "prequential")
    assert preq.cases == 3
    assert {"te0", "te1", "te2"} <= set(store.users)
    # after the first test session, X -> Y is known and more recent than X -> Q
    assert preq.methods["sequential"].full.hit_rate(1) >= 1 / 3
    # the baselines learn from training only, in both modes
    for name in ("pop-baseline", "vsknn"):
        assert preq.methods[name].full.ranks == frozen.methods[name].full.ranks


async def test_every_method_runs_and_the_result_is_deterministic() -> None:
    results = []
    for _ in range(2):
        store, log, core = await trained(TRAIN)
        ranker = LearnedRanker(one_feature_artifact("v1", "sequential_score", prefer="high"))
        setup = NextItemSetup(3, ALL_METHODS, core, ranker=ranker)
        result = await evaluate_next_item(store, TRAIN, TEST, log, setup, "frozen")
        summary = next_item_summary(result, 3)
        for metrics in summary["methods"].values():
            assert metrics["cases"] == 3
            assert metrics["widget"]["cases"] == 3  # no re-visit among X, Y
            del metrics["latency_ms"], metrics["widget"]["latency_ms"], metrics["fit_seconds"]
        results.append(summary)
    assert results[0] == results[1]
    assert set(results[0]["methods"]) == set(ALL_METHODS)


async def test_top_n_holds_out_the_last_events_of_users_with_enough_history() -> None:
    events = sessions_of(0, "u", ["A", "B", "C", "D", "E"], ["A", "B"], ["B", "C", "D", "E", "F"])
    train, holdouts = holdout_split(events, min_events=5, fraction=0.2, gap_seconds=GAP)
    assert [(h.user_id, sorted(h.relevant)) for h in holdouts] == [
        ("u0", ["p:E"]),
        ("u2", ["p:F"]),
    ]
    assert len(train) == len(events) - 2
    assert holdouts[0].history == ("p:A", "p:B", "p:C", "p:D")
    assert holdouts[0].at == max(e.occurred_at.timestamp() for e in train if e.user_id == "u0")

    store, _, core = await trained(train)
    setup = TopNSetup(2, ("popular", "pop-baseline"), core)
    result = await evaluate_top_n(store, train, holdouts, setup, min_events=5, fraction=0.2)
    summary = top_n_summary(result, 2)
    assert summary["users"] == 2
    pop = result.methods["pop-baseline"].full
    assert pop.users == 2
    # most popular in training: B (3 events), then C and D (2 each): no held-out item in the top 2
    assert pop.hits == 0
    assert summary["methods"]["pop-baseline"]["precision@2"] == 0.0


def test_parse_methods() -> None:
    assert parse_methods("vsknn, blend") == ("blend", "vsknn")
    with pytest.raises(UnknownMethodError, match="gru4rec"):
        parse_methods("blend,gru4rec")
    with pytest.raises(UnknownMethodError):
        parse_methods(" , ")


REVISITS = sessions_of(1000, "rv", ["X", "Q", "X"], ["Y", "Q", "Y"])


async def test_the_widget_list_shows_nothing_of_the_session_and_counts_new_items_only() -> None:
    store, log, core = await trained(TRAIN)
    methods = ("blend", "next-items", "pop-baseline", "vsknn")
    setup = NextItemSetup(4, methods, core)
    result = await evaluate_next_item(store, TRAIN, REVISITS, log, setup, "frozen")
    assert result.cases == 4  # two per session: Q new, then X / Y a re-visit
    for name in methods:
        scores = result.methods[name]
        assert (scores.full.cases, scores.full.revisit_cases) == (4, 2), name
        assert scores.widget.cases == 2, name
    # a re-visit is a hit of the full list (the session's item comes back) ...
    assert result.methods["blend"].full.split_hit_rates()[0] == 1.0
    # ... and Q after X or Y is in every list: the widget scores it like the full list
    assert result.methods["blend"].widget.hit_rate(4) == 1.0
    summary = next_item_summary(result, 4)
    assert summary["methods"]["blend"]["widget"]["cases"] == 2


async def test_top_n_widget_is_scored_on_items_new_to_the_last_session() -> None:
    events = sessions_of(0, "u", ["A", "B", "C", "D", "B"], ["C", "D"], ["B", "C", "D", "E", "F"])
    train, holdouts = holdout_split(events, min_events=5, fraction=0.2, gap_seconds=GAP)
    assert [sorted(h.relevant_new) for h in holdouts] == [[], ["p:F"]]  # u0 re-visits B
    assert holdouts[0].profile == ("p:A", "p:B", "p:C", "p:D")
    store, _, core = await trained(train)
    setup = TopNSetup(3, ("blend", "pop-baseline"), core)
    result = await evaluate_top_n(store, train, holdouts, setup, min_events=5, fraction=0.2)
    for name in ("blend", "pop-baseline"):
        assert (result.methods[name].full.users, result.methods[name].widget.users) == (2, 1)
