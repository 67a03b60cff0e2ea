"""Per-user behavioural state: what the consumer keeps in Redis for one user.

The state holds only accumulators (counts, decayed sums, capped maps and
lists), so every feature is computed from it in O(1) at any ``now`` and one
event updates it in O(1) (amortised over the caps). :func:`recstream.model.fold`
builds a new state from an old one; nothing here mutates a state that has
been handed out.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

STATE_FORMAT = 1
# zlib level 1: a third of the JSON's size, at about 25 us per write and 10 us per read of an
# average state (docs/performance.md, memory).
STORED_COMPRESSION_LEVEL = 1


class Watermark(NamedTuple):
    """The last applied record of a user: all of a user's events are in one partition."""

    partition: int
    offset: int

    def covers(self, partition: int, offset: int) -> bool:
        return partition == self.partition and offset <= self.offset

    def encode(self) -> str:
        return f"{self.partition}:{self.offset}"

    @staticmethod
    def decode(raw: str | bytes | None) -> Watermark | None:
        if not raw:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        partition, offset = text.split(":", 1)
        return Watermark(int(partition), int(offset))


@dataclass(slots=True)
class ItemStats:
    """One item the user touched: decayed weighted score and what built it."""

    score: float
    ref: float
    events: int
    last_at: float
    explicit: int | None = None

    def to_list(self) -> list[Any]:
        return [self.score, self.ref, self.events, self.last_at, self.explicit]

    @staticmethod
    def from_list(raw: list[Any]) -> ItemStats:
        return ItemStats(float(raw[0]), float(raw[1]), int(raw[2]), float(raw[3]), raw[4])


class HistoryEntry(NamedTuple):
    """One recent event, kept for sessions, sequences and explanations.

    A named tuple, not a dataclass: a state holds up to ``history_cap`` of them and
    every state read builds them all, so their construction cost counts.
    """

    event_id: str
    event_type: str
    at: float
    item: str | None
    category: str | None
    session_id: str | None
    offset: int

    def to_list(self) -> list[Any]:
        return list(self)

    @staticmethod
    def from_list(raw: list[Any]) -> HistoryEntry:
        return HistoryEntry(raw[0], raw[1], float(raw[2]), raw[3], raw[4], raw[5], int(raw[6]))


class Shown(NamedTuple):
    """A list of recommendations shown to the user, kept to attribute what they do next."""

    recommendation_id: str
    variant: str
    at: float
    day: str  # the UTC date of ``at``: the day its outcomes are counted on
    items: tuple[str, ...]  # item keys, first position first
    credited: str = ""  # the outcomes already counted once for it (see model.attribution)
    revenue_cents: int = 0  # of the purchases attributed to it so far

    def to_list(self) -> list[Any]:
        fields = [self.recommendation_id, self.variant, self.at, self.day, self.items]
        return [*fields, self.credited, *([self.revenue_cents] if self.revenue_cents else [])]

    @staticmethod
    def from_list(raw: list[Any]) -> Shown:
        revenue = int(raw[6]) if len(raw) > 6 else 0
        return Shown(raw[0], raw[1], float(raw[2]), raw[3], tuple(raw[4]), raw[5], revenue)


class Pending(NamedTuple):
    """An event that named a list not yet seen: credited when the list's record arrives
    (the API writes it from a background queue; the app may track the click first)."""

    recommendation_id: str
    item: str
    outcome: str
    at: float
    revenue_cents: int

    def to_list(self) -> list[Any]:
        return list(self)

    @staticmethod
    def from_list(raw: list[Any]) -> Pending:
        return Pending(raw[0], raw[1], raw[2], float(raw[3]), int(raw[4]))


@dataclass(slots=True)
class PriceStats:
    """Running mean and variance (Welford) of log prices the user engaged with and bought at."""

    engaged: int = 0
    engaged_mean: float = 0.0
    engaged_m2: float = 0.0
    bought: int = 0
    bought_mean: float = 0.0

    def to_list(self) -> list[Any]:
        return [self.engaged, self.engaged_mean, self.engaged_m2, self.bought, self.bought_mean]

    @staticmethod
    def from_list(raw: list[Any]) -> PriceStats:
        return PriceStats(int(raw[0]), float(raw[1]), float(raw[2]), int(raw[3]), float(raw[4]))


@dataclass(slots=True)
class SessionState:
    """The user's current session: explicit ``session_id`` or an inactivity gap."""

    session_id: str
    started_at: float
    last_at: float
    items: list[str] = field(default_factory=list)  # event order, oldest first, capped
    categories: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    events: int = 0

    def to_list(self) -> list[Any]:
        return [
            self.session_id,
            self.started_at,
            self.last_at,
            self.items,
            self.categories,
            self.counts,
            self.events,
        ]

    @staticmethod
    def from_list(raw: list[Any]) -> SessionState:
        return SessionState(
            raw[0], float(raw[1]), float(raw[2]), list(raw[3]), dict(raw[4]), dict(raw[5]), raw[6]
        )

    def copy(self) -> SessionState:
        return SessionState(
            self.session_id,
            self.started_at,
            self.last_at,
            list(self.items),
            dict(self.categories),
            dict(self.counts),
            self.events,
        )


def _zeros(n: int) -> list[int]:
    return [0] * n


@dataclass(slots=True)
class UserState:
    """Accumulators for one user. Treat instances as values: fold returns new ones."""

    user_id: str
    watermark: Watermark | None = None
    total_events: int = 0
    first_at: float | None = None
    last_at: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    unique_products: int = 0
    unique_groups: int = 0
    hours: list[int] = field(default_factory=lambda: _zeros(24))
    weekdays: list[int] = field(default_factory=lambda: _zeros(7))
    categories: dict[str, int] = field(default_factory=dict)
    activity: tuple[float, float] = (0.0, 0.0)
    items: dict[str, ItemStats] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    dedupe: dict[str, float] = field(default_factory=dict)
    category_prefs: dict[str, tuple[float, float]] = field(default_factory=dict)
    prices: PriceStats = field(default_factory=PriceStats)
    session: SessionState | None = None
    shown: list[Shown] = field(default_factory=list)  # latest last, within the attribution window
    pending: list[Pending] = field(default_factory=list)  # events whose list is not seen yet

    def copy(self) -> UserState:
        """A copy whose containers can be changed without touching this state."""
        return UserState(
            user_id=self.user_id,
            watermark=self.watermark,
            total_events=self.total_events,
            first_at=self.first_at,
            last_at=self.last_at,
            counts=dict(self.counts),
            unique_products=self.unique_products,
            unique_groups=self.unique_groups,
            hours=list(self.hours),
            weekdays=list(self.weekdays),
            categories=dict(self.categories),
            activity=self.activity,
            items={k: ItemStats(*v.to_list()) for k, v in self.items.items()},
            history=list(self.history),
            dedupe=dict(self.dedupe),
            category_prefs=dict(self.category_prefs),
            prices=PriceStats(*self.prices.to_list()),
            session=self.session.copy() if self.session else None,
            shown=list(self.shown),
            pending=list(self.pending),
        )

    def to_stored(self) -> bytes:
        """The bytes kept in Redis: :meth:`to_json`, zlib-compressed."""
        return zlib.compress(self.to_json(), STORED_COMPRESSION_LEVEL)

    @staticmethod
    def from_stored(user_id: str, raw: bytes, watermark: Watermark | None) -> UserState:
        """Read :meth:`to_stored`'s bytes, or plain JSON (a JSON object starts with ``{``)."""
        return UserState.from_json(
            user_id, raw if raw[:1] == b"{" else zlib.decompress(raw), watermark
        )

    def to_json(self) -> bytes:
        """The state as JSON (the watermark is stored beside it, not inside).

        The short field names are the stored format (``f`` is its version); each maps to
        the attribute of the same meaning above (``fa`` first_at, ``up`` unique_products,
        ``dd`` dedupe, ...), and Python code only uses the attribute names. The codec is
        written out rather than a msgspec Struct because the stored format is a contract
        of every keyspace version already written: a msgspec codec (faster, and its own
        schema) comes with a new ``STATE_FORMAT`` that readers accept beside this one, as
        part of the hot-path work, where its gain is measured.
        """
        return orjson.dumps(
            {
                "f": STATE_FORMAT,
                "n": self.total_events,
                "fa": self.first_at,
                "la": self.last_at,
                "c": self.counts,
                "up": self.unique_products,
                "ug": self.unique_groups,
                "h": self.hours,
                "wd": self.weekdays,
                "cat": self.categories,
                "act": list(self.activity),
                "it": {k: v.to_list() for k, v in self.items.items()},
                "hist": [e.to_list() for e in self.history],
                "dd": self.dedupe,
                "cp": {k: list(v) for k, v in self.category_prefs.items()},
                "pr": self.prices.to_list(),
                "se": self.session.to_list() if self.session else None,
                **({"sh": [s.to_list() for s in self.shown]} if self.shown else {}),
                **({"pd": [p.to_list() for p in self.pending]} if self.pending else {}),
            }
        )

    @staticmethod
    def from_json(user_id: str, raw: bytes, watermark: Watermark | None) -> UserState:
        data = orjson.loads(raw)
        if data.get("f") != STATE_FORMAT:
            raise ValueError(f"unknown user state format {data.get('f')!r}")
        return UserState(
            user_id=user_id,
            watermark=watermark,
            total_events=data["n"],
            first_at=data["fa"],
            last_at=data["la"],
            counts=data["c"],
            unique_products=data["up"],
            unique_groups=data["ug"],
            hours=data["h"],
            weekdays=data["wd"],
            categories=data["cat"],
            activity=(data["act"][0], data["act"][1]),
            items={k: ItemStats.from_list(v) for k, v in data["it"].items()},
            history=[HistoryEntry.from_list(e) for e in data["hist"]],
            dedupe=data["dd"],
            category_prefs={k: (v[0], v[1]) for k, v in data["cp"].items()},
            prices=PriceStats.from_list(data["pr"]),
            session=SessionState.from_list(data["se"]) if data["se"] else None,
            shown=[Shown.from_list(s) for s in data.get("sh", ())],
            pending=[Pending.from_list(p) for p in data.get("pd", ())],
        )


def latest_items_before(
    state: UserState, before: float, n: int, exclude: str | None = None
) -> list[str]:
    """The user's latest ``n`` distinct items of events before ``before``, newest first
    (the items of their earlier sessions, when ``before`` is the session's start)."""
    found: list[str] = []
    for entry in reversed(state.history):
        if len(found) >= n:
            break
        item = entry.item
        if entry.at < before and item is not None and item != exclude and item not in found:
            found.append(item)
    return found
