from __future__ import annotations

import pytest

from recstream.readmodel.context import RecommendationContext
from recstream.scoring import (
    BlendWeights,
    Intent,
    RecommendationRequest,
    ScoringConfig,
    ScoringError,
    recommend,
)
from recstream.scoring.blend import blend, blend_weights, effective_weights, normalise_components

from .test_scoring_support import CORE, NOW, context, neighbour, product, session_of, user

CONFIG = ScoringConfig(intent_shift=False, reminder_weight=0.0)
ALL = {"content", "sequential", "session"}


def test_each_component_is_scaled_to_its_best_item() -> None:
    components = normalise_components({"sequential": {"a": 4.0, "b": 1.0}, "session": {"c": 0.2}})
    assert components == {"content": {}, "sequential": {"a": 1.0, "b": 0.25}, "session": {"c": 1.0}}


def test_weights_re_normalise_over_components_with_signal() -> None:
    weights = effective_weights(
        {"content": 0.5, "sequential": 0.3, "session": 0.2}, {"sequential", "session"}
    )
    assert weights == pytest.approx({"content": 0.0, "sequential": 0.6, "session": 0.4})
    assert effective_weights({"content": 1.0}, set()) == {
        "content": 0.0,
        "sequential": 0.0,
        "session": 0.0,
    }


def test_weights_mean_what_they_say() -> None:
    # the best item of each component gets exactly that component's weight
    components = normalise_components(
        {"content": {"a": 10.0, "b": 5.0}, "sequential": {"b": 0.3}, "session": {"c": 7.0}}
    )
    weights = blend_weights(None, Intent("unknown", 0.0), ALL, CONFIG)
    out = blend(components, weights)
    assert sum(out["a"].values()) == pytest.approx(0.5)
    assert out["b"] == pytest.approx({"content": 0.25, "sequential": 0.3})
    assert sum(out["c"].values()) == pytest.approx(0.2)


def test_an_override_replaces_the_configured_weights_and_is_not_shifted() -> None:
    intent = Intent("transactional", 1.0)
    shifted = blend_weights(None, intent, ALL, ScoringConfig(intent_shift=True))
    assert shifted["sequential"] > 0.3
    override = blend_weights({"session": 2.0, "sequential": 2.0}, intent, ALL, ScoringConfig())
    assert override == pytest.approx({"content": 0.0, "sequential": 0.5, "session": 0.5})


def test_intent_shifts_weights_by_its_confidence() -> None:
    config = ScoringConfig(intent_shift=True, intent_shift_strength=1.0)
    research = blend_weights(None, Intent("research", 0.5), ALL, config)
    # content 0.5 * 1.5 = 0.75, re-normalised with 0.3 and 0.2
    assert research["content"] == pytest.approx(0.75 / 1.25)
    unsure = blend_weights(None, Intent("research", 0.0), ALL, config)
    assert unsure == pytest.approx({"content": 0.5, "sequential": 0.3, "session": 0.2})
    off = blend_weights(None, Intent("research", 1.0), ALL, ScoringConfig(intent_shift=False))
    assert off == unsure


def test_bad_overrides_are_refused() -> None:
    with pytest.raises(ScoringError, match="unknown components"):
        blend_weights({"magic": 1.0}, Intent("unknown", 0.0), ALL, CONFIG)
    with pytest.raises(ScoringError, match="negative"):
        blend_weights({"content": -1.0}, Intent("unknown", 0.0), ALL, CONFIG)


def _two_source_context(scale: float = 1.0) -> RecommendationContext:
    state = user(session=session_of(["p:a"], last_at=NOW))
    return context(
        state,
        transitions={"p:a": {"p:seq": 1.0 * scale, "p:both": 1.0 * scale}},
        neighbours=[neighbour("n1", ["p:a", "p:knn", "p:both"])],
        catalog=[product("p:seq"), product("p:knn"), product("p:both")],
    )


def test_recommend_blends_with_contributions_that_add_up() -> None:
    got = recommend(_two_source_context(), RecommendationRequest(limit=5), CONFIG, CORE)
    assert got.weights == pytest.approx({"content": 0.0, "sequential": 0.6, "session": 0.4})
    by_item = {s.item: s for s in got.items}
    assert by_item["p:both"].score == pytest.approx(0.6 * 1.0 + 0.4 * 1.0)
    assert by_item["p:seq"].components == pytest.approx({"sequential": 0.6})
    assert by_item["p:knn"].source == "session"
    for scored in got.items:
        assert scored.score == pytest.approx(sum(scored.components.values()))
    # p:a, the session's own item, comes back only when the request includes seen items
    assert [s.item for s in got.items][:3] == ["p:both", "p:seq", "p:knn"]
    request = RecommendationRequest(limit=5, include_seen=True)
    seen = recommend(_two_source_context(), request, CONFIG, CORE)
    assert [s.item for s in seen.items][:3] == ["p:both", "p:seq", "p:a"]
    assert seen.session_items == {"p:a"}


def test_scaling_a_components_raw_scores_changes_nothing() -> None:
    request = RecommendationRequest(limit=5)
    small = recommend(_two_source_context(), request, CONFIG, CORE)
    large = recommend(_two_source_context(1e6), request, CONFIG, CORE)
    assert small == large


def test_a_single_component_override_ranks_by_that_component_alone() -> None:
    request = RecommendationRequest(limit=5, weights={"session": 1.0})
    got = recommend(_two_source_context(), request, CONFIG, CORE)
    assert all(set(s.components) <= {"session", "popular"} for s in got.items)
    assert "p:seq" not in [s.item for s in got.items]


def test_configured_weights_change_the_order() -> None:
    state = user(session=session_of(["p:a"], last_at=NOW))
    ctx = context(
        state,
        transitions={"p:a": {"p:seq": 1.0}},
        neighbours=[neighbour("n1", ["p:a", "p:knn"])],
    )
    request = RecommendationRequest(limit=3, include_seen=True)
    seq_first = ScoringConfig(
        intent_shift=False, reminder_weight=0.0, weights=BlendWeights(sequential=0.9, session=0.1)
    )
    knn_first = ScoringConfig(
        intent_shift=False, reminder_weight=0.0, weights=BlendWeights(sequential=0.1, session=0.9)
    )
    assert recommend(ctx, request, seq_first, CORE).items[0].item == "p:seq"
    top_two = [s.item for s in recommend(ctx, request, knn_first, CORE).items[:2]]
    assert top_two == ["p:a", "p:knn"]  # equal session scores: by item id
