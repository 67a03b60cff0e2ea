"""The driver's input: real session sequences, laid out as the recent behaviour of many users.

Sessions come from the public datasets (``yoochoose-100k`` clicks and the
Diginetica sample with its categories and purchases): their item sequences and
the real gaps between clicks are kept; each session is given to a user and moved
to recent time (so decay, popularity and the dedupe window see present-day
times). Around the real clicks a seeded generator adds the other event types
of the contract (carts, purchases, wishlists, ratings, searches, page views,
group-deal events, removals with negative weight) so every path of the fold runs.

Every event gets a unique ``event_id`` (``<run>-<n>``); events are returned in
time order, the order a live system would publish them.
"""

from __future__ import annotations

import itertools
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recstream.contract.events import Event, EventType
from recstream.offline.datasets import diginetica_events, session_tsv_events

YOOCHOOSE = Path("yoochoose-100k") / "yoochoose-clicks-100k_train_full.txt"
DIGINETICA = Path("diginetica-sample") / "events.csv"
MAX_CLICK_GAP_SECONDS = 20 * 60.0  # inside a session (the session gap is 30 min)
GROUPS = 200


@dataclass(frozen=True, slots=True)
class Click:
    item: str
    gap: float  # seconds after the previous click of the session (0 for the first)
    category: str | None
    purchase: bool


@dataclass(frozen=True, slots=True)
class RealSession:
    source: str  # "yc" or "dg"
    clicks: tuple[Click, ...]


def _sessions(events: Iterator[Event], source: str, limit: int) -> list[RealSession]:
    grouped: dict[str, list[Event]] = {}
    for event in events:
        if event.session_id is None:
            continue
        if event.session_id not in grouped and len(grouped) >= limit:
            break
        grouped.setdefault(event.session_id, []).append(event)
    sessions = []
    for items in grouped.values():
        if len(items) < 2:
            continue
        items.sort(key=lambda e: e.occurred_at)
        clicks = []
        previous = items[0].occurred_at.timestamp()
        for event in items:
            at = event.occurred_at.timestamp()
            clicks.append(
                Click(
                    item=event.product_id or "unknown",
                    gap=min(at - previous, MAX_CLICK_GAP_SECONDS),
                    category=event.category,
                    purchase=event.event_type is EventType.PURCHASE_COMPLETED,
                )
            )
            previous = at
        sessions.append(RealSession(source, tuple(clicks)))
    return sessions


def load_sessions(datasets: Path, limit: int = 4000) -> list[RealSession]:
    """Up to ``limit`` sessions of each dataset (with at least two events), in file order."""
    found: list[RealSession] = []
    with (datasets / YOOCHOOSE).open(encoding="utf-8") as handle:
        found += _sessions(session_tsv_events(handle), "yc", limit)
    with (datasets / DIGINETICA).open(encoding="utf-8") as handle:
        found += _sessions(diginetica_events(handle), "dg", limit)
    if not found:
        raise ValueError(f"no sessions found under {datasets}")
    return found


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    events: int
    users: int
    seed: int = 7
    run: str = "f"
    end: float = 0.0  # epoch seconds of the newest event; 0 = now - 60 s
    span_days: float = 3.0
    hot_user_share: float = 0.0  # share of events given to one user ("hot")
    hot_item_share: float = 0.0  # share of sessions that open with one item ("p:hot")


def _price(item: str) -> float:
    """A stable price per item (log-normal-ish, 2..2000)."""
    h = zlib.crc32(item.encode()) / 0xFFFFFFFF
    return round(math.exp(1.0 + 6.5 * h), 2)


def _event(kind: EventType, user: str, session: str, at: float, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_type": kind.value,
        "user_id": user,
        "session_id": session,
        "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(),
    }
    event.update({k: v for k, v in fields.items() if v is not None})
    return event


def _session_events(
    rng: random.Random, user: str, session_id: str, start: float, real: RealSession, hot: bool
) -> list[dict[str, Any]]:
    """The events of one real session replayed by ``user`` from ``start``."""
    out: list[dict[str, Any]] = []
    at = start
    clicks = list(real.clicks)
    if hot:
        clicks[0] = Click("hot", 0.0, clicks[0].category, False)
    # lists of recommendations shown before some clicks, from a generator of their own so
    # the rest of the workload is what it was without them
    shows = random.Random(zlib.crc32(f"{user}|{session_id}".encode()))
    for n, click in enumerate(clicks):
        at += click.gap
        product = click.item
        common = {"product_id": product, "category": click.category}
        if n > 0 and shows.random() < SHOWN_SHARE:
            shown, followed = _shown_before(shows, user, session_id, at, clicks, n)
            out.append(shown)
            if followed:
                common["recommendation_id"] = shown["recommendation_id"]
        if rng.random() < 0.03:
            query = click.category or f"q{product[-3:]}"
            out.append(_event(EventType.PRODUCT_SEARCH, user, session_id, at - 1, query=query))
        out.append(
            _event(EventType.PRODUCT_VIEW, user, session_id, at, price=_price(product), **common)
        )
        roll = rng.random()
        if click.purchase or roll < 0.02:
            out.append(
                _event(
                    EventType.ADD_TO_CART,
                    user,
                    session_id,
                    at + 5,
                    price=_price(product),
                    quantity=1,
                    **common,
                )
            )
            out.append(
                _event(
                    EventType.PURCHASE_COMPLETED,
                    user,
                    session_id,
                    at + 30,
                    price=_price(product),
                    quantity=1,
                    **common,
                )
            )
        elif roll < 0.08:
            out.append(
                _event(
                    EventType.ADD_TO_CART,
                    user,
                    session_id,
                    at + 5,
                    price=_price(product),
                    quantity=1,
                    **common,
                )
            )
            if rng.random() < 0.25:
                out.append(_event(EventType.CART_REMOVE, user, session_id, at + 20, **common))
        elif roll < 0.10:
            out.append(_event(EventType.WISHLIST_ADD, user, session_id, at + 3, **common))
        elif roll < 0.11:
            out.append(_event(EventType.WISHLIST_REMOVE, user, session_id, at + 9, **common))
        elif roll < 0.13:
            rating = rng.randint(1, 5)
            out.append(
                _event(
                    EventType.RATING_SUBMITTED, user, session_id, at + 8, rating=rating, **common
                )
            )
        elif roll < 0.18:
            group = f"d{zlib.crc32(product.encode()) % GROUPS}"
            deal = f"deals-{zlib.crc32(group.encode()) % 12}"  # one category per group deal
            out.append(
                _event(
                    EventType.GROUP_VIEW, user, session_id, at + 2, group_id=group, category=deal
                )
            )
            step = rng.random()
            if step < 0.4:
                out.append(
                    _event(EventType.GROUP_JOIN_CLICK, user, session_id, at + 6, group_id=group)
                )
            if step < 0.2:
                out.append(
                    _event(
                        EventType.GROUP_JOIN_COMPLETE,
                        user,
                        session_id,
                        at + 12,
                        group_id=group,
                        price=_price(product),
                    )
                )
            if step < 0.03:
                out.append(_event(EventType.GROUP_LEAVE, user, session_id, at + 18, group_id=group))
        elif roll < 0.20:
            out.append(
                _event(EventType.PAGE_VIEW, user, session_id, at + 1, properties={"page": "deals"})
            )
    return out


SHOWN_SHARE = 0.15  # clicks after a list of recommendations that showed the item
VARIANTS = ("blend", "ranker-f")


def _shown_before(
    rng: random.Random, user: str, session_id: str, at: float, clicks: list[Click], n: int
) -> tuple[dict[str, Any], bool]:
    """A ``recommendation_shown`` record a few seconds before click ``n``, listing its item
    among up to three others of the session, and whether the click names its id (else it
    is attributed by user, item and time)."""
    others = list(dict.fromkeys(c.item for c in clicks if c.item != clicks[n].item))
    items = [clicks[n].item, *rng.sample(others, min(3, len(others)))]
    rng.shuffle(items)
    shown = _event(
        EventType.RECOMMENDATION_SHOWN,
        user,
        session_id,
        at - 2,
        recommendation_id=f"{user}-{session_id}-{n}",
        variant=rng.choice(VARIANTS),
        items=[{"kind": "product", "id": item, "position": p} for p, item in enumerate(items, 1)],
    )
    return shown, rng.random() < 0.7


def _at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["occurred_at"]).timestamp()


def _generate(
    sessions: list[RealSession], spec: WorkloadSpec, end: float, span: float
) -> list[dict[str, Any]]:
    """Sessions given to users until ``spec.events`` events or every user reached ``end``."""
    rng = random.Random(spec.seed)
    users = [f"{spec.run}u{n}" for n in range(spec.users)]
    pool = itertools.cycle(rng.sample(sessions, len(sessions)))
    clocks = {u: end - span * (0.5 + 0.5 * rng.random()) for u in users}
    counts = dict.fromkeys(users, 0)
    events: list[dict[str, Any]] = []
    active = list(users)
    while len(events) < spec.events and active:
        user = rng.choice(active)
        real = next(pool)
        start = clocks[user] + rng.uniform(40 * 60, 6 * 3600)  # a new session: after the gap
        counts[user] += 1
        hot_item = rng.random() < spec.hot_item_share
        new = _session_events(rng, user, f"s{counts[user]}", start, real, hot_item)
        kept = [e for e in new if _at(e) <= end]
        events += kept
        if len(kept) < len(new):
            active.remove(user)
        else:
            clocks[user] = _at(new[-1])
    return events


def build_events(
    sessions: list[RealSession], spec: WorkloadSpec, now: float
) -> list[dict[str, Any]]:
    """Exactly ``spec.events`` contract events (dicts) of ``spec.users`` users, oldest first.

    When the users cannot fit that many sessions into ``span_days``, the span doubles.
    """
    end = spec.end or now - 60.0
    span = spec.span_days * 86_400.0
    events = _generate(sessions, spec, end, span)
    while len(events) < spec.events:
        if span > 3650 * 86_400.0:
            raise ValueError(f"cannot lay out {spec.events} events for {spec.users} users")
        span *= 2
        events = _generate(sessions, spec, end, span)
    events.sort(key=_at)
    events = events[: spec.events]
    rng = random.Random(spec.seed + 1)
    if spec.hot_user_share > 0:
        for event in events:
            if rng.random() < spec.hot_user_share:
                event["user_id"] = f"{spec.run}hot"
                event["session_id"] = f"h{event['session_id']}-{event['user_id']}"
    for n, event in enumerate(events):
        event["event_id"] = f"{spec.run}-{n:07d}"
    return events
