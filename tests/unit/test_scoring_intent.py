from __future__ import annotations

import pytest

from recstream.model.state import SessionState
from recstream.scoring import ScoringConfig, infer_intent

from .test_scoring_support import NOW, session_of

CONFIG = ScoringConfig()


def test_no_session_has_an_unknown_intent_without_confidence() -> None:
    intent = infer_intent(None, CONFIG)
    assert (intent.kind, intent.confidence) == ("unknown", 0.0)
    empty = SessionState("s", NOW, NOW)
    assert infer_intent(empty, CONFIG).kind == "unknown"


def test_cart_adds_and_checkout_are_transactional() -> None:
    session = session_of(
        ["p:a", "p:a", "p:a"],
        counts={"product_view": 1, "add_to_cart": 1, "cart_checkout": 1},
    )
    intent = infer_intent(session, CONFIG)
    assert intent.kind == "transactional"
    assert intent.signals["cart_adds"] == 1
    assert intent.signals["checkouts"] == 1


def test_group_joins_are_group_seeking() -> None:
    session = session_of(
        ["g:1", "g:1", "p:a"],
        counts={"group_view": 1, "group_join_click": 1, "product_view": 1},
    )
    assert infer_intent(session, CONFIG).kind == "group_seeking"


def test_many_group_deals_and_removals_are_deal_seeking() -> None:
    session = session_of(
        ["g:1", "g:2", "g:3", "g:4", "p:a"],
        counts={"group_view": 4, "cart_remove": 1},
    )
    assert infer_intent(session, CONFIG).kind == "deal_seeking"


def test_searches_revisits_and_long_dwell_are_research() -> None:
    session = session_of(
        ["p:a", "p:b", "p:a", "p:b"],
        counts={"product_search": 2, "product_view": 4},
        categories={"phones": 4},
        started_at=NOW - 1200,
        last_at=NOW,
    )
    intent = infer_intent(session, CONFIG)
    assert intent.kind == "research"
    assert intent.signals["repeat_views"] == 2
    assert intent.signals["mean_dwell_seconds"] == pytest.approx(1200 / 5)


def test_quick_views_across_categories_are_browsing() -> None:
    session = session_of(
        ["p:a", "p:b", "p:c", "p:d"],
        counts={"page_view": 2, "product_view": 4},
        categories={"a": 1, "b": 1, "c": 1, "d": 1},
        started_at=NOW - 60,
        last_at=NOW,
    )
    assert infer_intent(session, CONFIG).kind == "browsing"


def test_confidence_is_a_share_and_grows_with_evidence() -> None:
    short = session_of(["p:a"], counts={"add_to_cart": 1})
    long = session_of(["p:a"] * 8, counts={"add_to_cart": 8})
    low, high = infer_intent(short, CONFIG), infer_intent(long, CONFIG)
    assert low.kind == high.kind == "transactional"
    assert 0.0 < low.confidence < high.confidence <= 1.0
    assert sum(high.scores.values()) == pytest.approx(1.0)


def test_a_session_without_evidence_stays_unknown() -> None:
    session = session_of(["p:a"], counts={"rating_submitted": 0, "product_view": 1})
    session.started_at = session.last_at = NOW
    intent = infer_intent(session, CONFIG)
    assert intent.kind == "unknown"
    assert intent.confidence == 0.0
