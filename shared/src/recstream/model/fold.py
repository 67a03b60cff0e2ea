"""The fold: one user's state plus that user's next events gives the next state.

The same function serves the stream consumer, the replay command, the offline
evaluation and the recomputation endpoint, so every path gives the same state.
It is pure: time comes from the events themselves (``occurred_at`` for the
behaviour, the broker's record timestamp for the dedupe window).
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from recstream.contract.events import Event, EventType, RecommendationShown
from recstream.contract.items import is_product
from recstream.contract.units import DAY
from recstream.model.attribution import attribute, record_shown
from recstream.model.config import CoreConfig
from recstream.model.decay import add_decayed, value_at
from recstream.model.sessions import add_to_session, place_in_session, session_key
from recstream.model.state import (
    HistoryEntry,
    ItemStats,
    PriceStats,
    SessionState,
    UserState,
    Watermark,
    latest_items_before,
)
from recstream.model.statistics import StatDelta, item_contributions, session_items_delta


class PositionedEvent(NamedTuple):
    """A valid event and where it sits in the log."""

    event: Event
    partition: int
    offset: int
    received_at: float  # the record's timestamp, seconds since the epoch


@dataclass(frozen=True, slots=True)
class FoldOutcome:
    state: UserState
    applied: int
    skipped: int  # at or below the user's watermark: already applied
    duplicates: int  # an event_id already seen inside the dedupe window
    deltas: list[StatDelta] = field(default_factory=list)  # contributions to shared statistics


def dedupe_token(event_id: str) -> str:
    """A short, fixed-size fingerprint of an event id for the dedupe window."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


def fold_user(
    state: UserState,
    events: Sequence[PositionedEvent],
    config: CoreConfig,
    *,
    take_ownership: bool = False,
) -> FoldOutcome:
    """Apply ``events`` (in log order) to ``state``.

    The input state is not changed, unless the caller hands it over with
    ``take_ownership=True`` (it was just loaded and is not used again): then the
    fold works on it directly instead of copying it.
    """
    new = state if take_ownership else state.copy()
    applied = skipped = duplicates = 0
    deltas: list[StatDelta] = []
    sessions_touched: list[int] = []  # offsets of events that joined the current session
    latest_received: float | None = None
    for positioned in events:
        if new.watermark is not None and new.watermark.covers(
            positioned.partition, positioned.offset
        ):
            skipped += 1
            continue
        new.watermark = Watermark(positioned.partition, positioned.offset)
        received = positioned.received_at
        latest_received = received if latest_received is None else max(latest_received, received)
        token = dedupe_token(positioned.event.event_id)
        seen_at = new.dedupe.get(token)
        if seen_at is not None and seen_at >= received - config.dedupe_window_seconds:
            duplicates += 1
            continue
        if config.dedupe_cap > 0:
            new.dedupe[token] = positioned.received_at
        applied += 1
        if isinstance(positioned.event, RecommendationShown):  # not behaviour
            record_shown(new, positioned.event, positioned.offset, config, deltas)
            continue
        before = new.session
        joined = _apply_event(new, positioned, config, deltas)
        if new.session is not before and before is not None and sessions_touched:
            _close_session(new.user_id, before, sessions_touched, deltas)
        if joined:
            sessions_touched.append(positioned.offset)
    if latest_received is not None:
        _prune_dedupe(new, latest_received, config)
        _cap_items(new, config)
    if new.session is not None and sessions_touched:
        _close_session(new.user_id, new.session, sessions_touched, deltas)
    return FoldOutcome(new, applied, skipped, duplicates, deltas)


def _close_session(
    user_id: str, session: SessionState, touched: list[int], deltas: list[StatDelta]
) -> None:
    """The item list of a session this fold changed, once: its latest value is all that counts."""
    key = session_key(user_id, session.session_id)
    deltas.append(session_items_delta(touched[-1], key, session))
    touched.clear()


def _apply_event(
    state: UserState, positioned: PositionedEvent, config: CoreConfig, deltas: list[StatDelta]
) -> bool:
    """Apply one event; True when it joined the (new) current session."""
    event = positioned.event
    at = event.occurred_at.timestamp()
    weight = config.weight(event.event_type)
    state.total_events += 1
    state.first_at = at if state.first_at is None else min(state.first_at, at)
    state.last_at = at if state.last_at is None else max(state.last_at, at)
    kind = event.event_type.value
    state.counts[kind] = state.counts.get(kind, 0) + 1
    state.hours[event.occurred_at.hour] += 1
    state.weekdays[event.occurred_at.weekday()] += 1
    if event.category is not None and (
        event.category in state.categories or len(state.categories) < config.categories_cap
    ):
        state.categories[event.category] = state.categories.get(event.category, 0) + 1
    activity_score, activity_ref = state.activity
    state.activity = add_decayed(
        activity_score, activity_ref, max(weight, 0.0), at, config.activity_half_life_days * DAY
    )
    if event.category is not None and weight > 0:
        _apply_category_preference(state, event.category, weight, at, config)
    if event.price is not None and event.price > 0 and weight > 0:
        state.prices = _add_price(state.prices, event.price, event.event_type)
    item = event.item_key
    if item is not None:
        _apply_item(state, item, event, weight, at, config)
    session, joins = place_in_session(state.session, event, at, config)
    earlier = list(session.items) if joins and session is not None else None
    if joins and session is not None:
        if session is not state.session:
            state.session = session
        add_to_session(session, kind, at, item, event.category, config)
    if item is not None:
        deltas += item_contributions(
            offset=positioned.offset,
            item=item,
            category=event.category,
            weight=weight,
            at=at,
            earlier_items=earlier,
            session=session_key(state.user_id, session.session_id) if joins and session else None,
            config=config,
            other_items=latest_items_before(
                state, session.started_at, config.cross_session_items, exclude=item
            )
            if joins and session and weight > 0
            else (),
        )
    if item is not None and (state.shown or event.recommendation_id is not None):
        attribute(state, event, item, at, positioned.offset, config, deltas)
    _insert_history(
        state,
        HistoryEntry(
            event.event_id,
            event.event_type,
            at,
            item,
            event.category,
            event.session_id,
            positioned.offset,
        ),
        config,
    )
    return joins


def _apply_item(
    state: UserState, item: str, event: Event, weight: float, at: float, config: CoreConfig
) -> None:
    stats = state.items.get(item)
    if stats is None:
        if is_product(item):
            state.unique_products += 1
        else:
            state.unique_groups += 1
        stats = ItemStats(score=0.0, ref=at, events=0, last_at=at)
        state.items[item] = stats
    stats.score, stats.ref = add_decayed(
        stats.score, stats.ref, weight, at, config.rating_half_life_days * DAY
    )
    stats.events += 1
    stats.last_at = max(stats.last_at, at)
    if event.rating is not None:
        stats.explicit = event.rating


def _apply_category_preference(
    state: UserState, category: str, weight: float, at: float, config: CoreConfig
) -> None:
    half_life = config.rating_half_life_days * DAY
    score, ref = state.category_prefs.get(category, (0.0, at))
    state.category_prefs[category] = add_decayed(score, ref, weight, at, half_life)
    if len(state.category_prefs) > config.categories_cap:
        weakest = min(
            state.category_prefs,
            key=lambda c: (value_at(*state.category_prefs[c], at, half_life), c),
        )
        del state.category_prefs[weakest]


def _add_price(prices: PriceStats, price: float, event_type: EventType) -> PriceStats:
    """Welford's update of the log-price distribution (and of purchases' mean)."""
    x = math.log(price)
    engaged = prices.engaged + 1
    delta = x - prices.engaged_mean
    mean = prices.engaged_mean + delta / engaged
    m2 = prices.engaged_m2 + delta * (x - mean)
    bought, bought_mean = prices.bought, prices.bought_mean
    if event_type is EventType.PURCHASE_COMPLETED:
        bought += 1
        bought_mean += (x - bought_mean) / bought
    return PriceStats(engaged, mean, m2, bought, bought_mean)


def _insert_history(state: UserState, entry: HistoryEntry, config: CoreConfig) -> None:
    history = state.history
    if not history or entry.at >= history[-1].at:
        history.append(entry)
    else:
        bisect.insort(history, entry, key=lambda e: e.at)
    if len(history) > config.history_cap:
        del history[: len(history) - config.history_cap]


def _prune_dedupe(state: UserState, now: float, config: CoreConfig) -> None:
    horizon = now - config.dedupe_window_seconds
    kept = {t: at for t, at in state.dedupe.items() if at >= horizon}
    if len(kept) > config.dedupe_cap:
        newest = sorted(kept.items(), key=lambda kv: kv[1])[-config.dedupe_cap :]
        kept = dict(newest) if config.dedupe_cap else {}
    state.dedupe = kept


def _cap_items(state: UserState, config: CoreConfig) -> None:
    if len(state.items) <= config.items_cap:
        return
    now = state.last_at or 0.0
    half_life = config.rating_half_life_days * DAY
    ranked = sorted(
        state.items.items(),
        key=lambda kv: (value_at(kv[1].score, kv[1].ref, now, half_life), kv[1].last_at, kv[0]),
        reverse=True,
    )
    state.items = dict(ranked[: config.items_cap])


def fold_history(user_id: str, events: Sequence[PositionedEvent], config: CoreConfig) -> UserState:
    """Fold a user's whole log from an empty state (recomputation, tests)."""
    return fold_user(UserState(user_id=user_id), events, config).state
