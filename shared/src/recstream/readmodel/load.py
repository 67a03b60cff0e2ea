"""Loading the read model of a recommendation request in at most four batched round trips.

1. the user's state and the top of every popularity shard;
2. transitions and co-visitations from the anchors, co-engagements of the user's
   latest items of earlier sessions, the item -> sessions index of the session's
   items, and popularity in the user's favourite categories;
3. the items of the most recent neighbour sessions (skipped without a session);
4. catalog entries and event categories of every candidate.

Which keys to read is decided here, once, for every store; a store only
answers a list of :data:`Read` requests in one round trip (a Redis pipeline,
or dictionary look-ups in memory).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from recstream.contract.catalog import CatalogItem, catalog_item_from_dict
from recstream.contract.keyspace import Stat
from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.model.decay import value_at, value_at_now
from recstream.model.sessions import session_key
from recstream.model.state import SessionState, UserState, latest_items_before
from recstream.readmodel.context import NeighbourSession, RecommendationContext
from recstream.readmodel.items_cache import ItemsCache
from recstream.store.reads import (
    FieldsRead,
    Read,
    StatsReader,
    StringsRead,
    TopRead,
    UserRead,
)


@dataclass(frozen=True, slots=True)
class ReadLimits:
    anchors: int = 3  # session items the sequential component starts from
    next_items: int = 50  # transitions read per anchor
    popular_per_shard: int = 20  # the global top-N is exact up to this N
    favourite_categories: int = 3
    popular_per_category: int = 20
    session_items: int = 10  # recent session items whose neighbour sessions are looked up
    sessions_per_item: int = 100
    neighbour_sample: int = 500  # most recent neighbour sessions read (V-SKNN's sample)
    covisited: int = 50  # co-visited items read per anchor
    earlier_items: int = 5  # the user's latest items of earlier sessions
    co_engaged: int = 50  # co-engaged items read per such item


def _decayed(
    rows: Sequence[tuple[str, float]], now: float, config: CoreConfig, half_life_days: float
) -> list[tuple[str, float]]:
    """A statistic's (member, log2 score) rows as their values at ``now``."""
    landmark, half_life = config.decay_landmark, half_life_days * DAY
    return [(member, value_at_now(score, now, landmark, half_life)) for member, score in rows]


def _popularity(
    rows: Sequence[tuple[str, float]], now: float, config: CoreConfig
) -> dict[str, float]:
    return dict(_decayed(rows, now, config, config.popularity_half_life_days))


def _related(rows: Sequence[tuple[str, float]], now: float, config: CoreConfig) -> dict[str, float]:
    """Transitions, co-visitations, co-engagements: decayed with the transition half-life."""
    return dict(_decayed(rows, now, config, config.transition_half_life_days))


def current_session(state: UserState, now: float, config: CoreConfig) -> SessionState | None:
    """The user's session, unless its last event is more than the session gap before ``now``."""
    session = state.session
    if session is None or now - session.last_at > config.session_gap_minutes * 60.0:
        return None
    return session


def _favourite_categories(state: UserState, now: float, config: CoreConfig, n: int) -> list[str]:
    half_life = config.rating_half_life_days * DAY
    ranked = sorted(
        state.category_prefs.items(),
        key=lambda kv: (-value_at(kv[1][0], kv[1][1], now, half_life), kv[0]),
    )
    return [category for category, _ in ranked[:n]]


async def load_context(
    reader: StatsReader,
    user_id: str,
    now: float,
    config: CoreConfig,
    *,
    anchor: str | None = None,
    state: UserState | None = None,
    limits: ReadLimits | None = None,
    item_cache: ItemsCache | None = None,
) -> RecommendationContext:
    """Read everything a recommendation for ``user_id`` at ``now`` needs.

    ``anchor`` (an item) replaces the session's items as the sequential start;
    ``state`` replaces the stored user state (the offline evaluation folds test
    sessions privately); ``item_cache`` answers the candidates' catalog entries and
    categories it holds (an API process's cache, :mod:`recstream.readmodel.items_cache`).
    """
    limits = limits or ReadLimits()
    keys = reader.keyspace
    pop_reads = [
        TopRead(keys.shard_stat(Stat.POPULARITY, s), limits.popular_per_shard)
        for s in range(keys.shards)
    ]
    first: list[Read] = [] if state is not None else [UserRead(user_id)]
    answers = await reader.read([*first, *pop_reads])
    if state is None:
        state = answers[0] or UserState(user_id)
        answers = answers[1:]
    popular = _popularity(
        heapq.nlargest(limits.popular_per_shard, _merge(answers), key=lambda kv: kv[1]),
        now,
        config,
    )

    session = current_session(state, now, config)
    session_items = tuple(session.items) if session else ()
    anchors = (anchor,) if anchor is not None else session_items[-limits.anchors :]
    categories = _favourite_categories(state, now, config, limits.favourite_categories)
    second: list[Read] = [
        TopRead(keys.stat(Stat.TRANSITIONS, a), limits.next_items) for a in anchors
    ]
    pair = f"{anchors[-2]}|{anchors[-1]}" if len(anchors) >= 2 else None
    if pair is not None:
        second.append(TopRead(keys.stat(Stat.PAIR_TRANSITIONS, pair), limits.next_items))
    second += [TopRead(keys.stat(Stat.COVISITATION, a), limits.covisited) for a in anchors]
    earlier = latest_items_before(
        state, session.started_at if session else now, limits.earlier_items
    )
    second += [TopRead(keys.stat(Stat.CO_ENGAGEMENT, i), limits.co_engaged) for i in earlier]
    lookup_items = session_items[-limits.session_items :]
    second += [
        TopRead(keys.stat(Stat.ITEM_SESSIONS, i), limits.sessions_per_item) for i in lookup_items
    ]
    second += [
        TopRead(keys.stat(Stat.CATEGORY_POPULARITY, c), limits.popular_per_category)
        for c in categories
    ]
    answers = await reader.read(second)
    transitions = {a: _related(answers[i], now, config) for i, a in enumerate(anchors)}
    at = len(anchors)
    transitions2: dict[str, float] = {}
    if pair is not None:
        transitions2 = _related(answers[at], now, config)
        at += 1
    covisited = {a: _related(answers[at + i], now, config) for i, a in enumerate(anchors)}
    at += len(anchors)
    co_engaged = {item: _related(answers[at + i], now, config) for i, item in enumerate(earlier)}
    at += len(earlier)
    own = session_key(user_id, session.session_id) if session else None
    seen: dict[str, float] = {}
    for rows in answers[at : at + len(lookup_items)]:
        for member, last_at in rows:
            if member != own:
                seen[member] = max(seen.get(member, 0.0), last_at)
    at += len(lookup_items)
    by_category = {c: _popularity(answers[at + i], now, config) for i, c in enumerate(categories)}
    neighbour_keys = heapq.nlargest(limits.neighbour_sample, seen, key=lambda k: (seen[k], k))

    candidates = set(popular)
    related = (*transitions.values(), transitions2, *covisited.values(), *co_engaged.values())
    for next_items in (*related, *by_category.values()):
        candidates.update(next_items)
    neighbours = []
    session_items_raw: list[str | None] = []
    if neighbour_keys:
        (session_items_raw,) = await reader.read(
            [StringsRead(tuple(keys.stat(Stat.SESSION_ITEMS, k) for k in neighbour_keys))]
        )
    for k, raw in zip(neighbour_keys, session_items_raw, strict=True):
        if raw is not None:
            items = tuple(orjson.loads(raw))
            neighbours.append(NeighbourSession(k, items, seen[k]))
            candidates.update(items)
    candidates.update(state.items)
    catalog, item_categories = await load_items(reader, sorted(candidates), item_cache)
    return RecommendationContext(
        user_id=user_id,
        now=now,
        state=state,
        session=session,
        anchors=anchors,
        transitions=transitions,
        transitions2=transitions2,
        neighbours=tuple(neighbours),
        covisited=covisited,
        co_engaged=co_engaged,
        popular=popular,
        popular_in_category=by_category,
        catalog=catalog,
        item_categories=item_categories,
    )


async def load_item_context(
    reader: StatsReader,
    item: str,
    now: float,
    config: CoreConfig,
    limits: ReadLimits | None = None,
    item_cache: ItemsCache | None = None,
) -> RecommendationContext:
    """What shoppers did around one item, for everybody alike (no user is read): the
    items of the same sessions (co-visitation), of the same shoppers' other sessions
    (co-engagement), the items that came next (transitions), and their catalog entries."""
    limits = limits or ReadLimits()
    keys = reader.keyspace
    transitions, covisited, co_engaged = await reader.read(
        [
            TopRead(keys.stat(Stat.TRANSITIONS, item), limits.next_items),
            TopRead(keys.stat(Stat.COVISITATION, item), limits.covisited),
            TopRead(keys.stat(Stat.CO_ENGAGEMENT, item), limits.co_engaged),
        ]
    )
    related = [_related(rows, now, config) for rows in (transitions, covisited, co_engaged)]
    candidates = {item}.union(*related)
    catalog, item_categories = await load_items(reader, sorted(candidates), item_cache)
    return RecommendationContext(
        user_id="",
        now=now,
        state=UserState(""),
        session=None,
        anchors=(item,),
        transitions={item: related[0]},
        covisited={item: related[1]},
        co_engaged={item: related[2]},
        catalog=catalog,
        item_categories=item_categories,
    )


async def load_trending(
    reader: StatsReader,
    now: float,
    config: CoreConfig,
    category: str | None = None,
    limits: ReadLimits | None = None,
    item_cache: ItemsCache | None = None,
) -> RecommendationContext:
    """The most popular items now (decayed popularity), overall or in one category, with
    their catalog entries; no user is read."""
    limits = limits or ReadLimits()
    keys = reader.keyspace
    if category is None:
        reads = [
            TopRead(keys.shard_stat(Stat.POPULARITY, s), limits.popular_per_shard)
            for s in range(keys.shards)
        ]
        answers = await reader.read(reads)
        popular = _popularity(
            heapq.nlargest(limits.popular_per_shard, _merge(answers), key=lambda kv: kv[1]),
            now,
            config,
        )
        by_category: dict[str, dict[str, float]] = {}
    else:
        (rows,) = await reader.read(
            [TopRead(keys.stat(Stat.CATEGORY_POPULARITY, category), limits.popular_per_category)]
        )
        popular, by_category = {}, {category: _popularity(rows, now, config)}
    candidates = set(popular).union(*by_category.values())
    catalog, item_categories = await load_items(reader, sorted(candidates), item_cache)
    return RecommendationContext(
        user_id="",
        now=now,
        state=UserState(""),
        session=None,
        anchors=(),
        popular=popular,
        popular_in_category=by_category,
        catalog=catalog,
        item_categories=item_categories,
    )


def _merge(shards: Sequence[list[tuple[str, float]]]) -> list[tuple[str, float]]:
    return [row for rows in shards for row in rows]


async def load_items(
    reader: StatsReader, items: list[str], cache: ItemsCache | None = None
) -> tuple[dict[str, CatalogItem], dict[str, str]]:
    """The catalog entries and event categories of ``items`` (those that have one), read
    through ``cache`` when one is given: only the items it does not hold are read."""
    if cache is None or cache.ttl_seconds <= 0:
        return await _read_items(reader, items)
    generation = cache.current()  # kept to the end: a concurrent request may replace it
    missing = generation.missing(items)
    if missing:
        generation.add(missing, *await _read_items(reader, missing))
    entries, known = generation.entries, generation.categories
    catalog = {i: entry for i in items if (entry := entries[i]) is not None}
    categories = {i: category for i in items if (category := known[i]) is not None}
    return catalog, categories


async def _read_items(
    reader: StatsReader, items: list[str]
) -> tuple[dict[str, CatalogItem], dict[str, str]]:
    keys = reader.keyspace
    by_shard: dict[int, list[str]] = {}
    for item in items:
        by_shard.setdefault(keys.shard_of(item), []).append(item)
    requests: list[Read] = [StringsRead(tuple(keys.catalog_item(i) for i in items))]
    requests += [
        FieldsRead(keys.shard_stat(Stat.ITEM_CATEGORY, s), tuple(group))
        for s, group in by_shard.items()
    ]
    entries, *category_rows = await reader.read(requests)
    catalog = {
        i: catalog_item_from_dict(orjson.loads(raw))
        for i, raw in zip(items, entries, strict=True)
        if raw is not None
    }
    categories: dict[str, str] = {}
    for group, values in zip(by_shard.values(), category_rows, strict=True):
        categories.update({i: c for i, c in zip(group, values, strict=True) if c is not None})
    return catalog, categories
