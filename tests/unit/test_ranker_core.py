"""The learned ranker's pure parts: the new streaming statistics (co-visitation,
co-engagement), bounded candidates, the feature matrix, the model artifact."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from recstream.contract.catalog import CatalogItem
from recstream.contract.events import decode_event
from recstream.contract.keyspace import Stat
from recstream.model.config import CoreConfig
from recstream.model.fold import PositionedEvent, fold_user
from recstream.model.state import UserState
from recstream.model.statistics import decay_exponent
from recstream.readmodel.context import RecommendationContext
from recstream.readmodel.load import current_session
from recstream.scoring.candidates import (
    DEFAULT_SOURCES,
    SOURCES,
    bound,
    generate,
    source_scores,
)
from recstream.scoring.config import ScoringConfig
from recstream.scoring.content import content_scores
from recstream.scoring.learned import ArtifactError, LearnedRanker, RankerArtifact
from recstream.scoring.models import RecommendationRequest
from recstream.scoring.ranker_features import (
    FEATURE_GROUPS,
    FEATURES,
    feature_matrix,
    features_for,
)
from recstream.scoring.recommender import _logistic, recommend

from .eventgen import BASE, make_event
from .ranker_models import one_feature_artifact

CORE = CoreConfig(decay_landmark=BASE.timestamp())
SCORING = ScoringConfig()


def fold(events: list[dict[str, Any]], user: str = "u1") -> Any:
    log = [
        PositionedEvent(decode_event(json.dumps(e).encode()), 0, offset, BASE.timestamp())
        for offset, e in enumerate(events)
    ]
    return fold_user(UserState(user), log, CORE)


def sums(deltas: Any, kind: str) -> dict[tuple[str, str], float]:
    """The forward-decayed sums of the contributions (which travel as log2)."""
    found: dict[tuple[str, str], float] = {}
    for d in deltas:
        if d.kind == kind:
            found[(d.key, d.member)] = found.get((d.key, d.member), 0.0) + 2.0**d.value
    return found


def test_covisitation_counts_both_orders_by_event_type_and_distance() -> None:
    outcome = fold(
        [
            make_event("e1", "product_view", minutes=0, product_id="a"),
            make_event("e2", "product_view", minutes=1, product_id="b"),
            make_event("e3", "add_to_cart", minutes=2, product_id="c"),
        ]
    )
    cov = sums(outcome.deltas, Stat.COVISITATION)
    view, cart = CORE.weight("product_view"), CORE.weight("add_to_cart")
    at = (BASE.timestamp() + 60, BASE.timestamp() + 120)
    decay = [2.0 ** decay_exponent(t, CORE.transition_half_life_days, CORE) for t in at]
    assert cov[("p:a", "p:b")] == cov[("p:b", "p:a")] == pytest.approx(view * decay[0])
    assert cov[("p:b", "p:c")] == cov[("p:c", "p:b")] == pytest.approx(cart * decay[1])
    assert cov[("p:a", "p:c")] == pytest.approx(cart * decay[1] / 2)  # two steps apart
    assert cart > view  # a cart add counts more than a view


def test_co_engagement_pairs_an_item_with_the_users_earlier_sessions_only() -> None:
    gap = CORE.session_gap_minutes + 5
    outcome = fold(
        [
            make_event("e1", "product_view", minutes=0, product_id="a"),
            make_event("e2", "product_view", minutes=1, product_id="b"),
            make_event("e3", "product_view", minutes=1 + gap, product_id="c"),
            make_event("e4", "product_view", minutes=2 + gap, product_id="d"),
        ]
    )
    ucf = sums(outcome.deltas, Stat.CO_ENGAGEMENT)
    # a and b share the first session: co-visited, not co-engaged across sessions
    assert ("p:a", "p:b") not in ucf
    assert {pair for pair in ucf if pair[0] in ("p:a", "p:b")} == {
        ("p:a", "p:c"),
        ("p:b", "p:c"),
        ("p:a", "p:d"),
        ("p:b", "p:d"),
    }
    assert ucf[("p:c", "p:a")] == ucf[("p:a", "p:c")]
    assert ("p:c", "p:d") not in ucf  # same (second) session


def context(events: list[dict[str, Any]], **fields: Any) -> RecommendationContext:
    state = fold(events).state
    now = state.last_at
    session = current_session(state, now, CORE)
    anchors = tuple(session.items[-3:]) if session else ()
    return RecommendationContext(
        user_id="u1", now=now, state=state, session=session, anchors=anchors, **fields
    )


SESSION = [
    make_event("e1", "product_view", minutes=0, product_id="a", category="c1", price=10.0),
    make_event("e2", "product_view", minutes=1, product_id="b", category="c1", price=12.0),
]
STATS = {
    "transitions": {"p:b": {f"p:t{i}": 10.0 - i for i in range(8)}},
    "covisited": {"p:b": {f"p:v{i}": 5.0 - 0.5 * i for i in range(8)}, "p:a": {"p:w": 9.0}},
    "popular": {f"p:h{i}": 100.0 - i for i in range(8)},
}


def test_candidates_are_bounded_per_source_and_ranked_within_it() -> None:
    ctx = context(SESSION, **STATS)
    assert set(generate(ctx, SCORING, CORE, per_source=3).scores) == set(DEFAULT_SOURCES)
    candidates = generate(ctx, SCORING, CORE, per_source=3, sources=SOURCES)
    for source in SOURCES:
        assert len(candidates.scores[source]) <= 3
        assert sorted(candidates.ranks[source].values()) == list(
            range(1, len(candidates.ranks[source]) + 1)
        )
    assert len(candidates.items) <= 3 * len(SOURCES)
    # the session's own items lead (the sequential component's reminder), then transitions
    assert candidates.ranks["sequential"]["p:b"] == 1
    assert candidates.ranks["sequential"]["p:t0"] == 3
    assert "p:t1" not in candidates.ranks["sequential"]  # beyond the bound
    assert candidates.scores["popular"]["p:h0"] == 1.0
    # each anchor's row normalised, the latest counting most: b's best 1, a's best 1/2
    raw = source_scores(ctx, SCORING, CORE)["covisitation"]
    assert raw["p:v0"] == 1.0
    assert raw["p:w"] == 0.5
    assert set(candidates.scores["recent"]) == {"p:a", "p:b"}


def test_feature_matrix_rows_describe_each_candidate() -> None:
    ctx = context(SESSION, **STATS)
    candidates = bound(ctx, source_scores(ctx, SCORING, CORE), 5)
    matrix = feature_matrix(ctx, candidates, SCORING, CORE)
    assert matrix.shape == (len(candidates.items), len(FEATURES))
    assert sorted(f for group in FEATURE_GROUPS.values() for f in group) == sorted(FEATURES)
    row = {
        item: dict(zip(FEATURES, matrix[i], strict=True)) for i, item in enumerate(candidates.items)
    }
    assert row["p:b"]["seen_in_session"] == 1.0
    assert row["p:b"]["steps_since_seen"] == 1.0
    assert row["p:a"]["steps_since_seen"] == 2.0
    assert row["p:t0"]["seen_in_session"] == 0.0
    assert math.isnan(row["p:t0"]["steps_since_seen"])
    assert row["p:b"]["sequential_score"] == 1.0
    assert row["p:b"]["sequential_rank"] == 1.0
    assert 0.0 < row["p:t1"]["sequential_score"] < row["p:t0"]["sequential_score"] < 1.0
    assert row["p:t0"]["sequential_rank"] == 3.0
    assert math.isnan(row["p:t0"]["price_vs_user"])  # no catalogue price known
    assert row["p:a"]["user_rating"] > 0.0
    assert row["p:t0"]["user_rating"] == 0.0
    assert row["p:h0"]["popularity"] == 1.0
    # context features are the same on every row
    assert len({row[i]["session_length"] for i in candidates.items}) == 1


def test_the_content_feature_is_the_blends_content_score_of_each_candidate() -> None:
    now = BASE.timestamp()
    catalog = {
        "p:t0": CatalogItem("p:t0", "product", category="c1", price=11.0),
        "p:t1": CatalogItem("p:t1", "product", category="c2", price=300.0),
        "p:v0": CatalogItem("p:v0", "product", created_at=now - 5 * 86_400.0),
        # not a candidate: only its creation time makes recency count
        "p:elsewhere": CatalogItem("p:elsewhere", "product", created_at=now),
    }
    ctx = context(SESSION, catalog=catalog, **STATS)
    candidates = bound(ctx, source_scores(ctx, SCORING, CORE), 5)
    matrix = feature_matrix(ctx, candidates, SCORING, CORE)
    column = matrix[:, FEATURES.index("content_score")]
    expected = content_scores(ctx, candidates.items, SCORING, CORE)
    # the same formula on columns: equal within float rounding
    assert column.tolist() == pytest.approx(
        [expected.get(i, 0.0) for i in candidates.items], rel=1e-12
    )
    assert column.max() > 0.0


def test_an_artifact_round_trips_and_a_bad_one_is_refused_with_a_reason() -> None:
    artifact = one_feature_artifact("v1", prefer="high")
    again = RankerArtifact.from_bytes(artifact.to_bytes())
    assert again == artifact
    assert LearnedRanker(again).version == "v1"
    with pytest.raises(ArtifactError, match="invalid JSON"):
        RankerArtifact.from_bytes(b"{not json")
    with pytest.raises(ArtifactError, match="format"):
        RankerArtifact.from_bytes(b'{"format": "other"}')
    renamed = RankerArtifact("v2", artifact.model, ("mystery", *FEATURES[1:]))
    with pytest.raises(ArtifactError, match="unknown features"):
        LearnedRanker(renamed)
    with pytest.raises(ArtifactError, match="inputs"):
        LearnedRanker(RankerArtifact("v3", artifact.model, FEATURES[:5]))


def test_a_model_trained_on_a_subset_of_features_reads_its_own_columns() -> None:
    subset = ("popular_score", "sequential_score", "recent_score")
    ranker = LearnedRanker(one_feature_artifact("v1", prefer="high", features=subset))
    ctx = context(SESSION, **STATS)
    request = RecommendationRequest(limit=5, current_items=frozenset({"p:b"}))
    served = recommend(ctx, request, SCORING, CORE, ranker, reasons=True)
    assert served.ranker == "v1"
    assert [s.item for s in served.items][:3] == ["p:h0", "p:h1", "p:h2"]  # it learned popularity
    assert "p:b" not in [s.item for s in served.items]  # the item on screen, never
    assert served.items[0].reasons
    assert served.items[0].reasons[0][0] == "popular_score"
    blend = recommend(ctx, request, SCORING, CORE)
    assert blend.ranker == "blend"
    assert blend.items[0].reasons == ()
    assert [s.item for s in blend.items] != [s.item for s in served.items]


def test_a_model_of_any_score_scale_gives_scores_in_0_1_in_its_order() -> None:
    values = [-1e6, -800.0, -3.0, 0.0, 2.5, 800.0, 1e6]
    mapped = [_logistic(v) for v in values]
    assert all(0.0 <= m <= 1.0 for m in mapped)
    assert mapped == sorted(mapped)
    assert _logistic(0.0) == 0.5


def test_a_model_has_the_features_of_its_sources_and_groups() -> None:
    assert features_for(SOURCES) == FEATURES
    # the optional stan source adds its score and rank; the defaults leave both out
    defaults = features_for(DEFAULT_SOURCES)
    assert set(FEATURES) - set(defaults) == {"stan_score", "stan_rank"}
    assert defaults == tuple(f for f in FEATURES if not f.startswith("stan_"))  # in order
    without = features_for([s for s in DEFAULT_SOURCES if s != "sequential"], ["context"])
    assert "sequential_score" not in without
    assert "sequential_rank" not in without
    assert not set(without) & set(FEATURE_GROUPS["context"])
    assert "session_score" in without
