"""Bounded everything: the largest instance of every structure against its cap."""

from __future__ import annotations

import orjson

from faults.checker import area_of
from faults.snapshot import Snapshot
from recstream.model.config import CoreConfig


def structure_sizes(snapshot: Snapshot, config: CoreConfig) -> dict[str, tuple[int, int]]:
    """``structure -> (largest size seen, cap)`` over the whole keyspace."""
    caps = {
        "transitions": config.transitions_top_k,
        "co-visitation": config.covisit_top_k,
        "co-engagement": config.co_engagement_top_k,
        "popularity": config.popularity_top_k,
        "category popularity": config.popularity_top_k,
        "session index": config.sessions_per_item,
        "session items": config.session_items_cap,
        "user items (ratings)": config.items_cap,
        "user history": config.history_cap,
        "user dedupe window": config.dedupe_cap,
        "user categories": config.categories_cap,
        "user category preferences": config.categories_cap,
        "user session items": config.session_items_cap,
    }
    largest = dict.fromkeys(caps, 0)

    def seen(name: str, size: int) -> None:
        largest[name] = max(largest[name], size)

    for key, members in snapshot.zsets.items():
        area = area_of(key)
        if area in caps:
            seen(area, len(members))
    for key, value in snapshot.strings.items():
        if area_of(key) == "session items":
            seen("session items", len(orjson.loads(value)))
    for state in snapshot.users.values():
        seen("user items (ratings)", len(state.items))
        seen("user history", len(state.history))
        seen("user dedupe window", len(state.dedupe))
        seen("user categories", len(state.categories))
        seen("user category preferences", len(state.category_prefs))
        seen("user session items", len(state.session.items) if state.session else 0)
    return {name: (largest[name], caps[name]) for name in caps}


def over_cap(sizes: dict[str, tuple[int, int]]) -> list[str]:
    return [f"{name}: {size} > {cap}" for name, (size, cap) in sizes.items() if size > cap]
