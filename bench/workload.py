"""Realistic benchmark events: real YooChoose sessions, generated users and catalog clones.

The item sequences and the time gaps inside sessions are the real ones of
``yoochoose-100k`` (17,794 sessions, 2,933 items, 3.95 clicks per session).
Volume comes from generated users: each one gets a few sessions (1 plus a
geometric number, mean :data:`SESSIONS_PER_USER`), each a real session drawn
at random and shifted in time; a user shops in one of ``clones`` copies of the
catalog (item ``p<item>`` becomes ``p<item>x<clone>``), so the catalog grows
with the user count while sessions keep their real co-occurrence structure.

YooChoose has clicks only; the mix of the other event types is generated per
click (see :data:`FUNNEL`), with a category and a price derived from the item.
Events of all users are interleaved in event time, as a live topic holds them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from recstream.apply.batch import RawRecord, apply_catalog_batch
from recstream.store.port import StateStore

YOOCHOOSE = "yoochoose-100k/yoochoose-clicks-100k_train_full.txt"
SESSIONS_PER_USER = 2.0
CATEGORIES = 300
GROUPS_PER_CLONE = 500
# The real-size catalogue of the hot-path targets: 17 copies of yoochoose-100k's items, of
# which 48,000 users reach 40,448.
LARGE_CLONES = 17
LARGE_USERS = 48_000
# Per click, besides the product_view itself: (event type, probability).
FUNNEL = (
    ("add_to_cart", 0.08),
    ("wishlist_add", 0.02),
    ("group_view", 0.05),
    ("page_view", 0.04),
    ("product_search", 0.04),
)
PURCHASE_SHARE = 0.3  # of sessions with a cart add, how many end with a purchase


@dataclass(frozen=True, slots=True)
class RealSession:
    items: tuple[str, ...]
    offsets: tuple[float, ...]  # seconds since the session's first click


def load_sessions(datasets: Path) -> list[RealSession]:
    """The training sessions of ``yoochoose-100k``, in file order."""
    rows: dict[str, list[tuple[float, str]]] = {}
    with (datasets / YOOCHOOSE).open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            session, item, at = line.rstrip("\n").split("\t")
            rows.setdefault(session, []).append((float(at), item))
    out = []
    for clicks in rows.values():
        clicks.sort()
        first = clicks[0][0]
        out.append(RealSession(tuple(i for _, i in clicks), tuple(t - first for t, _ in clicks)))
    return out


@dataclass(frozen=True, slots=True)
class Workload:
    """Events as ``(user id, JSON)`` in event-time order, and what they cover."""

    events: list[tuple[str, bytes]]
    users: list[str]
    items: int

    def keyed(self) -> list[tuple[bytes, bytes]]:
        return [(user.encode(), value) for user, value in self.events]


def _extra_events(rng: random.Random, item: str) -> list[str]:
    return [kind for kind, share in FUNNEL if rng.random() < share]


def _event(
    kind: str, user: str, session: str, at: float, item: str, event_id: str
) -> dict[str, object]:
    digest = hash_item(item)
    event: dict[str, object] = {
        "event_id": event_id,
        "event_type": kind,
        "user_id": user,
        "session_id": session,
        "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(),
        "category": f"c{digest % CATEGORIES}",
    }
    if kind == "group_view":
        event["group_id"] = f"g{digest % GROUPS_PER_CLONE}{item[item.index('x') :]}"
    elif kind == "page_view":
        pass
    elif kind == "product_search":
        event["query"] = f"q{digest % 997}"
    else:
        event["product_id"] = item
        event["price"] = round(2 + (digest % 400) * 0.75, 2)
    return event


def hash_item(item: str) -> int:
    """A stable small hash (the built-in ``hash`` of a str changes per process)."""
    value = 2166136261
    for char in item.encode():
        value = ((value ^ char) * 16777619) & 0xFFFFFFFF
    return value


def session_events(
    rng: random.Random, user: str, session_id: str, session: RealSession, start: float, clone: int
) -> Iterator[tuple[float, dict[str, object]]]:
    """One real session replayed for ``user`` from ``start``, with the generated funnel."""
    carted: list[str] = []
    n = 0
    for raw_item, offset in zip(session.items, session.offsets, strict=True):
        item, at = f"p{raw_item}x{clone}", start + offset
        for kind in ("product_view", *_extra_events(rng, item)):
            n += 1
            if kind == "add_to_cart":
                carted.append(item)
            yield at, _event(kind, user, session_id, at, item, f"{session_id}-{n}")
            at += 1.0
    if carted and rng.random() < PURCHASE_SHARE:
        n += 1
        at = start + session.offsets[-1] + 30.0
        event = _event("purchase_completed", user, session_id, at, carted[-1], f"{session_id}-{n}")
        yield at, event


def generate(
    sessions: Sequence[RealSession],
    users: int,
    *,
    end: float,
    span_seconds: float = 7 * 86_400.0,
    clones: int = 8,
    seed: int = 7,
    user_prefix: str = "u",
) -> Workload:
    """``users`` generated users' sessions within ``span_seconds`` before ``end``."""
    rng = random.Random(seed)
    p = 1.0 / SESSIONS_PER_USER
    timed: list[tuple[float, str, bytes]] = []
    user_ids = []
    for u in range(users):
        user = f"{user_prefix}{u}"
        user_ids.append(user)
        clone = u % clones
        count = 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - p)) if p < 1 else 1
        for s in range(count):
            session = sessions[rng.randrange(len(sessions))]
            last = session.offsets[-1] + 60.0
            start = end - span_seconds + rng.random() * max(span_seconds - last, 1.0)
            for at, event in session_events(rng, user, f"{user}-s{s}", session, start, clone):
                timed.append((at, user, orjson.dumps(event)))
    timed.sort(key=lambda row: row[0])
    items = len({i for s in sessions for i in s.items}) * clones
    return Workload([(user, value) for _, user, value in timed], user_ids, items)


def live_event(
    rng: random.Random, user: str, session: RealSession, position: int, at: float, seq: int
) -> tuple[bytes, bytes]:
    """One click of a session happening now (the paced producers stamp ``at`` = send time)."""
    item = f"p{session.items[position % len(session.items)]}x0"
    event = _event("product_view", user, f"{user}-live", at, item, f"{user}-live-{seq}")
    return user.encode(), orjson.dumps(event)


def catalog_records(workload: Workload) -> list[RawRecord]:
    """Every product of the workload as a catalog upsert (``catalog`` topic records): the
    category and price its events carry, created within the 60 days before the workload's first
    event (by the item's hash)."""
    products: dict[str, dict[str, object]] = {}
    for _, value in workload.events:
        event = orjson.loads(value)
        product = event.get("product_id")
        if product is not None and product not in products:
            products[product] = event
    first = min(datetime.fromisoformat(str(e["occurred_at"])) for e in products.values())
    records = []
    for offset, (product, event) in enumerate(sorted(products.items())):
        created = first.timestamp() - (hash_item(product) % 60) * 86_400.0
        value = orjson.dumps(
            {
                "kind": "product",
                "product_id": product,
                "category": event["category"],
                "price": event["price"],
                "created_at": datetime.fromtimestamp(created, UTC).isoformat(),
            }
        )
        records.append(RawRecord("catalog", 0, offset, 0, product.encode(), value))
    return records


async def apply_catalog(store: StateStore, records: Sequence[RawRecord]) -> None:
    """Apply catalog records through the consumer's core, in its batch size."""
    for start in range(0, len(records), 2000):
        await apply_catalog_batch(store, records[start : start + 2000])


def write_jsonl(workload: Workload, path: Path) -> None:
    with path.open("wb") as handle:
        for _, value in workload.events:
            handle.write(value + b"\n")
