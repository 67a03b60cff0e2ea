"""The demo storefront: real items of a dataset, with invented names, prices and group deals.

Pure functions over the dataset's events and an explicit ``now``: the items are
the most viewed products of the most active categories of the Diginetica
sample (real ids, real categories); the data has no names or prices, so each
item gets an invented name and price, derived from its id (the same on every
start). Some products get a group deal with a target size, a fill and a
closing time. :func:`seed_events` re-times the dataset's sessions on these
items into the last day, so the demo has transitions, popular items and
neighbour sessions to recommend from.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from recstream.contract.catalog import GroupRecord, ProductRecord
from recstream.contract.events import Event

PRODUCTS_PER_DEPARTMENT = 8
GROUPS_PER_DEPARTMENT = 2
SEED_SPAN = timedelta(hours=20)
SEED_END_BEFORE_NOW = timedelta(minutes=40)  # the seeded sessions have ended (30 min gap)

# (department name, price range, product nouns), in order of category activity.
THEMES: tuple[tuple[str, tuple[float, float], tuple[str, ...]], ...] = (
    ("Kitchen", (9.0, 160.0), ("Rice Cooker", "Chef Knife", "Teapot", "Skillet", "Blender")),
    ("Outdoor", (14.0, 240.0), ("Tent", "Camp Stove", "Hammock", "Lantern", "Daypack")),
    ("Audio", (19.0, 320.0), ("Headphones", "Speaker", "Turntable", "Earbuds", "Soundbar")),
    ("Kids", (6.0, 90.0), ("Puzzle", "Building Set", "Plush Fox", "Kite", "Paint Kit")),
    ("Beauty", (5.0, 70.0), ("Face Serum", "Hair Dryer", "Lip Balm", "Brush Set", "Body Oil")),
    ("Fitness", (8.0, 210.0), ("Yoga Mat", "Kettlebell", "Jump Rope", "Foam Roller", "Bottle")),
)
ADJECTIVES = (
    "Nordic", "Coastal", "Urban", "Classic", "Compact", "Deluxe", "Everyday", "Alpine",
    "Studio", "Vintage", "Bright", "Quiet", "Sunny", "Sturdy", "Pocket", "Grand",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoProduct:
    product_id: str
    name: str
    category: str  # the dataset's category id, as the events carry it
    department: str
    price: float
    views: int  # events on the item in the dataset


@dataclass(frozen=True, slots=True)
class DemoGroup:
    group_id: str
    product_id: str
    name: str
    category: str
    department: str
    price: float
    group_price: float
    target_size: int
    current_size: int
    closes_at: datetime


@dataclass(frozen=True, slots=True)
class DemoCatalog:
    products: tuple[DemoProduct, ...]
    groups: tuple[DemoGroup, ...]

    @property
    def product_ids(self) -> frozenset[str]:
        return frozenset(p.product_id for p in self.products)


def _draw(key: str, salt: str) -> float:
    """A number in [0, 1) fixed by ``key`` and ``salt`` (stable across runs and machines)."""
    digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / float(1 << 64)


def _name(item: str, nouns: Sequence[str], taken: set[str]) -> str:
    """An invented name, not yet ``taken`` while the theme has free ones."""
    name = ""
    for attempt in range(len(ADJECTIVES) * len(nouns)):
        adjective = ADJECTIVES[int(_draw(item, f"adjective{attempt}") * len(ADJECTIVES))]
        noun = nouns[int(_draw(item, f"noun{attempt}") * len(nouns))]
        name = f"{adjective} {noun}"
        if name not in taken:
            break
    taken.add(name)
    return name


def _price(item: str, low: float, high: float) -> float:
    skew = math.sqrt(_draw(item, "price")) * _draw(item, "price")  # more cheap items than dear
    return max(1, round(low + (high - low) * skew)) - 0.01


def build_catalog(events: Iterable[Event], now: datetime) -> DemoCatalog:
    """The demo catalog from the dataset's events (products need a category)."""
    per_category: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        if event.product_id is not None and event.category is not None:
            per_category[event.category][event.product_id] += 1
    ranked = sorted(per_category, key=lambda c: (-sum(per_category[c].values()), c))
    products: list[DemoProduct] = []
    groups: list[DemoGroup] = []
    names: set[str] = set()
    for category, (department, (low, high), nouns) in zip(ranked, THEMES, strict=False):
        counts = per_category[category]
        top = sorted(counts, key=lambda item: (-counts[item], item))[:PRODUCTS_PER_DEPARTMENT]
        for rank, item in enumerate(top):
            name, price = _name(item, nouns, names), _price(item, low, high)
            product = DemoProduct(item, name, category, department, price, counts[item])
            products.append(product)
            if rank < GROUPS_PER_DEPARTMENT:
                groups.append(_group_of(product, now))
    return DemoCatalog(tuple(products), tuple(groups))


def _group_of(product: DemoProduct, now: datetime) -> DemoGroup:
    item = product.product_id
    target = 4 + int(_draw(item, "target") * 12)
    return DemoGroup(
        group_id=f"gd-{item}",
        product_id=item,
        name=f"{product.name} group deal",
        category=product.category,
        department=product.department,
        price=product.price,
        group_price=round(product.price * 0.7, 2),
        target_size=target,
        current_size=1 + int(_draw(item, "fill") * (target - 1)),
        closes_at=now + timedelta(hours=2 + int(_draw(item, "closes") * 46), minutes=15),
    )


def catalog_records(catalog: DemoCatalog, now: datetime) -> list[ProductRecord | GroupRecord]:
    """The catalog as records of the ``catalog`` topic (upserts)."""
    records: list[ProductRecord | GroupRecord] = [
        ProductRecord(
            kind="product",
            product_id=p.product_id,
            category=p.category,
            price=p.price,
            name=p.name,
            attributes={"department": p.department},
            updated_at=now,
        )
        for p in catalog.products
    ]
    records += [
        GroupRecord(
            kind="group",
            group_id=g.group_id,
            product_id=g.product_id,
            group_price=g.group_price,
            target_size=g.target_size,
            current_size=g.current_size,
            closes_at=g.closes_at,
            updated_at=now,
        )
        for g in catalog.groups
    ]
    return records


def seed_events(events: Iterable[Event], catalog: DemoCatalog, now: datetime) -> list[Event]:
    """The dataset's sessions restricted to catalog items (two events or more), re-timed.

    Each session keeps its own spacing; session starts are spread evenly over
    :data:`SEED_SPAN`, ending :data:`SEED_END_BEFORE_NOW` ago, in dataset order.
    Event ids stay the dataset's, so seeding twice is deduplicated by the consumer.
    """
    wanted = catalog.product_ids
    sessions: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.product_id in wanted:
            sessions[event.session_id or event.user_id].append(event)
    kept = [s for s in sessions.values() if len(s) >= 2]
    kept.sort(key=lambda s: (s[0].occurred_at, s[0].event_id))
    if not kept:
        return []
    end = now - SEED_END_BEFORE_NOW
    step = SEED_SPAN / len(kept)
    seeded: list[Event] = []
    for index, session in enumerate(kept):
        first = session[0].occurred_at
        start = end - SEED_SPAN + step * index
        for event in session:
            at = min(start + (event.occurred_at - first), end)
            seeded.append(event.model_copy(update={"occurred_at": at.astimezone(UTC)}))
    return seeded
