"""The evaluation protocols' data: test sessions, their cases, splits (pure).

Next-item protocol (session-rec, SR-GNN): every test session is played event by
event; before each of its events from the second on, the recommender is asked
for its top K, and that event's item is the target. A session of ``n`` item
events gives ``n - 1`` cases; a target outside the training catalogue is still a
case (a miss for every method). Events without an item (searches, page views)
belong to the session but are neither positions nor targets.

A session is the events of one user with the same ``session_id``; events
without one are cut into sessions by the inactivity gap, as the fold does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from recstream.contract.events import Event
from recstream.contract.units import DAY


@dataclass(frozen=True, slots=True)
class EventSession:
    user_id: str
    session_id: str  # the event's session id, or ``~<start>`` for a gap session
    events: tuple[Event, ...]  # in time order (file order among equal times)

    @property
    def items(self) -> list[str]:
        return [i for e in self.events if (i := e.item_key) is not None]

    @property
    def start(self) -> float:
        return self.events[0].occurred_at.timestamp()

    @property
    def end(self) -> float:
        return self.events[-1].occurred_at.timestamp()


@dataclass(frozen=True, slots=True)
class Case:
    """One prediction: the session so far (``history``, item events) and the target."""

    session: EventSession
    position: int  # index of the target among the session's item events (>= 1)
    history: tuple[Event, ...]  # the item events before the target
    target: Event

    @property
    def target_item(self) -> str:
        item = self.target.item_key
        assert item is not None
        return item


def group_sessions(events: Iterable[Event], gap_seconds: float) -> list[EventSession]:
    """The sessions of ``events``, ordered by start time (then user, session id)."""
    by_user: dict[str, list[tuple[float, int, Event]]] = {}
    for index, event in enumerate(events):
        by_user.setdefault(event.user_id, []).append((event.occurred_at.timestamp(), index, event))
    sessions: list[EventSession] = []
    for user_id, rows in by_user.items():
        rows.sort(key=lambda row: (row[0], row[1]))
        named: dict[str, list[Event]] = {}
        current: list[Event] = []
        last_at = 0.0
        for at, _, event in rows:
            if event.session_id is not None:
                named.setdefault(event.session_id, []).append(event)
                continue
            if current and at - last_at > gap_seconds:
                sessions.append(_gap_session(user_id, current))
                current = []
            current.append(event)
            last_at = at
        if current:
            sessions.append(_gap_session(user_id, current))
        sessions += [EventSession(user_id, s, tuple(evs)) for s, evs in named.items()]
    sessions.sort(key=lambda s: (s.start, s.user_id, s.session_id))
    return sessions


def _gap_session(user_id: str, events: list[Event]) -> EventSession:
    start = int(events[0].occurred_at.timestamp())
    return EventSession(user_id, f"~{start}", tuple(events))


def session_cases(session: EventSession) -> Iterator[Case]:
    """The cases of one session, in order."""
    item_events = [e for e in session.events if e.item_key is not None]
    for position in range(1, len(item_events)):
        yield Case(session, position, tuple(item_events[:position]), item_events[position])


def count_cases(sessions: Iterable[EventSession]) -> int:
    return sum(max(0, len(s.items) - 1) for s in sessions)


def catalogue(events: Iterable[Event]) -> set[str]:
    """The items of ``events``: what a method may rank."""
    return {item for e in events if (item := e.item_key) is not None}


def recent_sessions(events: Sequence[Event], days: float, gap_seconds: float) -> list[Event]:
    """The events of the sessions that end within ``days`` of the log's last event, whole
    (a session that started before the window keeps its start); in their order."""
    if days <= 0:
        raise ValueError("days must be positive")
    sessions = group_sessions(events, gap_seconds)
    if not sessions:
        return []
    since = max(s.end for s in sessions) - days * DAY
    kept = {id(e) for s in sessions if s.end >= since for e in s.events}
    return [e for e in events if id(e) in kept]


class TrailingWindow:
    """The events of a log within ``seconds`` of the latest one seen so far, kept while the
    log is read, so that reading a long log for its last days holds those days, not the log.
    An event older than that when it is read is dropped; which events are kept does not
    depend on how often the window is pruned."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        self.seconds = seconds
        self.latest = float("-inf")
        self.seen = 0
        self._events: list[Event] = []
        self._pruned_size = 0

    def add(self, event: Event) -> None:
        self.seen += 1
        at = event.occurred_at.timestamp()
        self.latest = max(self.latest, at)
        if at >= self.latest - self.seconds:
            self._events.append(event)
        if len(self._events) > 2 * self._pruned_size + 4096:  # amortised: O(1) per event
            self._prune()

    def events(self) -> list[Event]:
        """The events kept, in the order they were added."""
        self._prune()
        return list(self._events)

    def _prune(self) -> None:
        since = self.latest - self.seconds
        self._events = [e for e in self._events if e.occurred_at.timestamp() >= since]
        self._pruned_size = len(self._events)


def split_by_session_end(
    events: Sequence[Event], test_fraction: float, gap_seconds: float
) -> tuple[list[Event], list[Event]]:
    """Train and test events: the sessions that end last (``test_fraction`` of them) are test.

    As session-rec splits by time: a session belongs to the test set when its last
    event is at or after the split time, so every training session ends before it.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be between 0 and 1")
    sessions = group_sessions(events, gap_seconds)
    if len(sessions) < 2:
        raise ValueError("need at least two sessions to split")
    ends = sorted(s.end for s in sessions)
    split_at = ends[min(len(ends) - 1, max(1, round(len(ends) * (1.0 - test_fraction))))]
    test_ids = {id(e) for s in sessions if s.end >= split_at for e in s.events}
    train = [e for e in events if id(e) not in test_ids]
    test = [e for e in events if id(e) in test_ids]
    return train, test
