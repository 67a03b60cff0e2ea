"""Intent of the current session, inferred from what happened in it.

Each intent collects evidence from the session's counts by event type, its
items, categories and timing:

- *transactional*: cart adds (3 each) and checkouts, payments, purchases (4);
- *group_seeking*: group join clicks or completions (4) and group views (1);
- *deal_seeking*: distinct group deals looked at beyond the first (1.5), cart
  and wishlist removals (1.5), wishlist adds (1), and comparing many products
  of one category quickly (0.5 per product beyond two, when the mean dwell is
  short);
- *research*: searches (1.5), repeat views of the same item (1), ratings (1),
  and views with a long mean dwell (up to 1 per view at twice ``long_dwell_seconds``);
- *browsing*: page views (1), views with a short mean dwell (0.5 per view),
  and every extra category (1).

The intent is the one with the most evidence (ties in the order above); its
confidence is its share of all evidence times ``1 - exp(-events / intent_evidence_events)``
so that a session of one or two events is never very sure of anything.
"""

from __future__ import annotations

import math
from collections import Counter

from recstream.contract.items import is_group
from recstream.model.state import SessionState
from recstream.scoring.config import ScoringConfig
from recstream.scoring.models import Intent, IntentKind

INTENTS: tuple[IntentKind, ...] = (
    "transactional",
    "group_seeking",
    "deal_seeking",
    "research",
    "browsing",
)


def _count(session: SessionState, *types: str) -> float:
    return float(sum(session.counts.get(t, 0) for t in types))


def session_signals(session: SessionState) -> dict[str, float]:
    """The inputs of intent inference, as reported in explanations."""
    items = session.items
    distinct = set(items)
    per_category = max(session.categories.values(), default=0)
    events = max(session.events, sum(session.counts.values()))
    duration = max(0.0, session.last_at - session.started_at)
    return {
        "events": float(events),
        "duration_seconds": duration,
        "mean_dwell_seconds": duration / (events - 1) if events > 1 else 0.0,
        "product_views": _count(session, "product_view"),
        "group_views": _count(session, "group_view"),
        "page_views": _count(session, "page_view"),
        "searches": _count(session, "product_search"),
        "cart_adds": _count(session, "add_to_cart"),
        "checkouts": _count(session, "cart_checkout", "payment_success", "purchase_completed"),
        "group_joins": _count(session, "group_join_click", "group_join_complete"),
        "wishlist_adds": _count(session, "wishlist_add"),
        "ratings": _count(session, "rating_submitted"),
        "removals": _count(session, "cart_remove", "wishlist_remove", "group_leave"),
        "distinct_items": float(len(distinct)),
        "distinct_groups": float(sum(1 for i in distinct if is_group(i))),
        "distinct_categories": float(len(session.categories)),
        "top_category_events": float(per_category),
        "repeat_views": float(sum(c - 1 for c in Counter(items).values() if c > 1)),
    }


def _evidence(signals: dict[str, float], config: ScoringConfig) -> dict[IntentKind, float]:
    s = signals
    views = s["product_views"] + s["group_views"]
    dwell_ratio = s["mean_dwell_seconds"] / config.long_dwell_seconds
    long_dwell = min(1.0, max(0.0, dwell_ratio - 1.0)) if s["events"] > 1 else 0.0
    short_dwell = 1.0 if s["events"] > 1 and dwell_ratio < 1.0 else 0.0
    comparing = max(0.0, min(s["distinct_items"], s["top_category_events"]) - 2.0)
    return {
        "transactional": 3.0 * s["cart_adds"] + 4.0 * s["checkouts"],
        "group_seeking": 4.0 * s["group_joins"] + s["group_views"],
        "deal_seeking": 1.5 * max(0.0, s["distinct_groups"] - 1.0)
        + 1.5 * s["removals"]
        + s["wishlist_adds"]
        + 0.5 * comparing * short_dwell,
        "research": 1.5 * s["searches"] + s["repeat_views"] + s["ratings"] + long_dwell * views,
        "browsing": s["page_views"]
        + 0.5 * views * short_dwell
        + max(0.0, s["distinct_categories"] - 1.0),
    }


def infer_intent(session: SessionState | None, config: ScoringConfig) -> Intent:
    """The session's intent with a confidence in [0, 1]; ``unknown`` without a session."""
    if session is None or (session.events <= 0 and not session.counts):
        return Intent("unknown", 0.0)
    signals = session_signals(session)
    evidence = _evidence(signals, config)
    total = sum(evidence.values())
    if total <= 0:
        return Intent("unknown", 0.0, {k: 0.0 for k in INTENTS}, signals)
    shares: dict[str, float] = {k: evidence[k] / total for k in INTENTS}
    kind = max(INTENTS, key=lambda k: (shares[k], -INTENTS.index(k)))
    certainty = 1.0 - math.exp(-signals["events"] / config.intent_evidence_events)
    return Intent(kind, round(shares[kind] * certainty, 6), shares, signals)
