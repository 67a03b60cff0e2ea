"""Sessionisation: which session an event belongs to, by event time.

An event with a ``session_id`` belongs to that session. Without one, it continues
the current session when it happens within ``session_gap_minutes`` of the
session's last event, and starts a new session when it happens later than that.
An event older than the current session (a late arrival for a session that has
ended) is counted in every feature but does not change the current session.
"""

from __future__ import annotations

from recstream.contract.events import Event
from recstream.model.config import CoreConfig
from recstream.model.state import SessionState


def session_key(user_id: str, session_id: str) -> str:
    """The global name of a user's session in the shared session index."""
    return f"{user_id}|{session_id}"


def place_in_session(
    current: SessionState | None, event: Event, at: float, config: CoreConfig
) -> tuple[SessionState | None, bool]:
    """The session the event joins (a new one or ``current``), and whether it joins at all."""
    gap = config.session_gap_minutes * 60.0
    if event.session_id is not None:
        if current is not None and current.session_id == event.session_id:
            return current, True
        if current is not None and at < current.last_at and at < current.started_at:
            return current, False  # a late event of an earlier session
        return SessionState(event.session_id, at, at), True
    if current is None or at > current.last_at + gap:
        return SessionState(f"~{int(at)}", at, at), True
    if at < current.started_at - gap:
        return current, False
    return current, True


def add_to_session(
    session: SessionState, kind: str, at: float, item: str | None, category: str | None,
    config: CoreConfig,
) -> None:  # fmt: skip
    """Record one event in ``session`` (a working copy owned by the fold)."""
    session.events += 1
    session.started_at = min(session.started_at, at)
    session.last_at = max(session.last_at, at)
    session.counts[kind] = session.counts.get(kind, 0) + 1
    if category is not None:
        session.categories[category] = session.categories.get(category, 0) + 1
    if item is not None and (not session.items or session.items[-1] != item):
        session.items.append(item)
        if len(session.items) > config.session_items_cap:
            del session.items[0]
