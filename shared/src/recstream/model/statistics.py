"""Contributions of one user's events to the statistics shared by all users.

For every applied event on an item, the fold emits :class:`StatDelta` values:

- ``tr1``: first-order transitions ``earlier item -> item`` for the session's last
  ``sequence_window`` items, weighted ``1 / distance``;
- ``tr2``: second-order transitions ``(a, b) -> item`` after the last two items;
- ``cov``: co-visitation, both ways, with the session's last ``covisit_window`` items,
  weighted by the event's type weight (a cart add counts three views) and ``1 / distance``;
- ``ucf``: co-engagement, both ways, with the user's latest ``cross_session_items`` items
  of earlier sessions, weighted by the event's type weight (item-to-item collaborative
  filtering over users, kept streaming);
- ``pop`` / ``popc``: popularity, global and per category, weighted by event type;
- ``isess``: the item -> recent sessions index (for session neighbourhoods);
- ``sitems``: the session's item list, read back by neighbour lookups (once per fold);
- ``icat``: the item's category as seen on events.

Weights are forward-decayed and travel as base-2 logarithms (see
:mod:`recstream.model.decay`): ``log2(weight) + (t - landmark) / half_life``, so
adding them up in any order gives scores that rank exactly as time-decayed ones, and
no event time makes one overflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import orjson

from recstream.contract.keyspace import Stat
from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.model.decay import LN2
from recstream.model.state import SessionState

# the wire names of :class:`~recstream.contract.keyspace.Stat`
StatKind = Literal[
    "tr1", "tr2", "cov", "ucf", "pop", "popc", "isess", "sitems", "icat", "out", "outv"
]


# log2(1 / distance) for the windows' distances (sequence_window, covisit_window <= 50)
LOG_DISTANCE = tuple(math.log(d) / LN2 if d else 0.0 for d in range(51))


class StatDelta(NamedTuple):
    offset: int  # the record the contribution comes from
    kind: StatKind
    key: str  # the item, "a|b", category or session key the statistic is about
    member: str  # the member of that statistic (next item, session key, payload)
    # log2 of the forward-decayed increment (tr1, tr2, cov, ucf, pop, popc), time (isess,
    # sitems), a count (out), unused (icat, outv)
    value: float


def decay_exponent(at: float, half_life_days: float, config: CoreConfig) -> float:
    """The log2 of a unit weight at ``at``, forward-decayed from the landmark."""
    return (at - config.decay_landmark) / (half_life_days * DAY)


def item_contributions(
    *,
    offset: int,
    item: str,
    category: str | None,
    weight: float,
    at: float,
    earlier_items: list[str] | None,
    session: str | None,
    config: CoreConfig,
    other_items: Sequence[str] = (),
) -> list[StatDelta]:
    """What one event on ``item`` adds; ``earlier_items`` are its session's items before it,
    ``other_items`` the user's latest items of earlier sessions."""
    deltas: list[StatDelta] = []
    log_type = math.log(weight) / LN2 if weight > 0 else 0.0  # the event type's weight
    if weight > 0:
        popularity = log_type + decay_exponent(at, config.popularity_half_life_days, config)
        deltas.append(StatDelta(offset, Stat.POPULARITY, "", item, popularity))
        if category is not None:
            deltas.append(StatDelta(offset, Stat.CATEGORY_POPULARITY, category, item, popularity))
    if category is not None:
        deltas.append(StatDelta(offset, Stat.ITEM_CATEGORY, item, category, 0.0))
    if weight > 0 and earlier_items:
        scale = decay_exponent(at, config.transition_half_life_days, config)
        window = earlier_items[-config.sequence_window :]
        for distance, earlier in enumerate(reversed(window), start=1):
            if earlier != item:
                share = scale - LOG_DISTANCE[distance]
                deltas.append(StatDelta(offset, Stat.TRANSITIONS, earlier, item, share))
        if len(earlier_items) >= 2 and earlier_items[-1] != item:
            pair = f"{earlier_items[-2]}|{earlier_items[-1]}"
            deltas.append(StatDelta(offset, Stat.PAIR_TRANSITIONS, pair, item, scale))
        together = log_type + scale
        window = earlier_items[max(0, len(earlier_items) - config.covisit_window) :]
        for distance, earlier in enumerate(reversed(window), start=1):
            if earlier != item:
                share = together - LOG_DISTANCE[distance]
                deltas.append(StatDelta(offset, Stat.COVISITATION, earlier, item, share))
                deltas.append(StatDelta(offset, Stat.COVISITATION, item, earlier, share))
    if weight > 0 and other_items:
        together = log_type + decay_exponent(at, config.transition_half_life_days, config)
        for other in other_items:
            deltas.append(StatDelta(offset, Stat.CO_ENGAGEMENT, other, item, together))
            deltas.append(StatDelta(offset, Stat.CO_ENGAGEMENT, item, other, together))
    if session is not None:
        deltas.append(StatDelta(offset, Stat.ITEM_SESSIONS, item, session, at))
    return deltas


def session_items_delta(offset: int, session: str, state: SessionState) -> StatDelta:
    """The session's item list as the neighbour look-ups read it (latest value wins)."""
    return StatDelta(
        offset, Stat.SESSION_ITEMS, session, orjson.dumps(state.items).decode(), state.last_at
    )
