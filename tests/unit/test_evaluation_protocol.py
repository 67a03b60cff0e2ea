"""The next-item protocol's sessions and cases, the splits, and the record layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from recstream.contract.events import Event, EventType, decode_event, validate_event
from recstream.offline.datasets import session_tsv_events
from recstream.offline.evaluation.protocol import (
    TrailingWindow,
    catalogue,
    count_cases,
    group_sessions,
    recent_sessions,
    session_cases,
    split_by_session_end,
)
from recstream.offline.evaluation.records import (
    RecordLog,
    murmur2,
    partition_batches,
    partition_for,
)

from .eventgen import make_event

GAP = 1800.0


def event(
    event_id: str, user: str, minutes: float, product: str | None = None, **fields: Any
) -> Event:
    if product is None:
        return validate_event(
            make_event(event_id, EventType.PRODUCT_SEARCH, user, minutes=minutes, **fields)
        )
    return validate_event(
        make_event(
            event_id, EventType.PRODUCT_VIEW, user, minutes=minutes, product_id=product, **fields
        )
    )


def test_sessions_follow_session_ids_else_the_inactivity_gap() -> None:
    events = [
        event("a1", "u1", 0, "p1"),
        event("b1", "u2", 1, "p1", session_id="s9"),
        event("a2", "u1", 10, "p2"),
        event("a3", "u1", 100, "p3"),  # 90 minutes later: a new session
        event("b2", "u2", 200, "p2", session_id="s9"),  # an explicit id ignores the gap
        event("a4", "u1", 101, "p4"),
    ]
    sessions = group_sessions(events, GAP)
    assert [(s.user_id, s.items) for s in sessions] == [
        ("u1", ["p:p1", "p:p2"]),
        ("u2", ["p:p1", "p:p2"]),
        ("u1", ["p:p3", "p:p4"]),
    ]
    assert sessions[1].session_id == "s9"
    assert sessions[0].session_id.startswith("~")


def test_events_are_ordered_by_time_within_a_session() -> None:
    events = [event("e2", "u1", 5, "p2"), event("e1", "u1", 1, "p1"), event("e3", "u1", 5, "p3")]
    (session,) = group_sessions(events, GAP)
    assert [e.event_id for e in session.events] == ["e1", "e2", "e3"]  # file order among ties


def test_every_item_event_after_the_first_is_a_case() -> None:
    events = [
        event("e1", "u1", 0, "p1"),
        event("e2", "u1", 1),  # a search: in the session, but neither position nor target
        event("e3", "u1", 2, "p1"),  # a repeat is a case like any other
        event("e4", "u1", 3, "p2"),
    ]
    (session,) = group_sessions(events, GAP)
    cases = list(session_cases(session))
    assert [(c.position, c.target_item) for c in cases] == [(1, "p:p1"), (2, "p:p2")]
    assert [e.event_id for e in cases[1].history] == ["e1", "e3"]
    assert count_cases([session]) == 2


def test_a_single_event_session_has_no_case() -> None:
    sessions = group_sessions([event("e1", "u1", 0, "p1")], GAP)
    assert count_cases(sessions) == 0
    assert list(session_cases(sessions[0])) == []


def test_yoochoose_test_set_has_the_readme_case_count(datasets: Path) -> None:
    path = datasets / "yoochoose-100k" / "yoochoose-clicks-100k_test.txt"
    with path.open() as handle:
        sessions = group_sessions(session_tsv_events(handle), GAP)
    assert len(sessions) == 3_416
    assert count_cases(sessions) == 10_152


def test_split_by_session_end_keeps_training_sessions_before_the_split() -> None:
    events = [
        event(f"e{u}-{i}", f"u{u}", u * 100 + i, f"p{i}") for u in range(10) for i in range(3)
    ]
    train, test = split_by_session_end(events, 0.2, GAP)
    assert {e.user_id for e in test} == {"u8", "u9"}
    assert len(train) + len(test) == len(events)
    assert max(e.occurred_at for e in train) < min(e.occurred_at for e in test)
    assert catalogue(train) == {"p:p0", "p:p1", "p:p2"}
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_session_end(events, 1.0, GAP)


def test_a_training_window_keeps_whole_sessions_that_end_in_it() -> None:
    day = 24 * 60
    events = [
        event("old", "u1", 0, "p1"),  # ends 3 days before the last event: left out
        event("s1", "u2", 2 * day - 20, "p1"),  # starts before the window, ends in it
        event("s2", "u2", 2 * day + 5, "p2"),
        event("new", "u3", 3 * day, "p3"),
    ]
    kept = recent_sessions(events, 1.0, GAP)
    assert [e.event_id for e in kept] == ["s1", "s2", "new"]
    assert recent_sessions(events, 3.5, GAP) == events
    with pytest.raises(ValueError, match="positive"):
        recent_sessions(events, 0.0, GAP)


def test_a_trailing_window_holds_what_is_within_its_length_of_the_latest_event() -> None:
    """Events read in log order, a late one among them: what is kept is what lies within
    the window of the latest event at the end, however often it was pruned on the way."""
    minutes = [i * 10.0 for i in range(10_000)]  # 69 days, ten minutes apart
    minutes[5_000] = 99_990.0 - 60  # out of order: an hour before the last event
    events = [event(f"e{i}", f"u{i % 7}", m, f"p{i % 11}") for i, m in enumerate(minutes)]
    window = TrailingWindow(24 * 3600.0)
    for e in events:
        window.add(e)

    kept = window.events()

    last = max(e.occurred_at for e in events).timestamp()
    expected = [e for e in events if e.occurred_at.timestamp() >= last - 24 * 3600]
    assert kept == expected
    assert len(kept) == 24 * 6 + 1 + 1  # a day of ten-minute steps, both ends, the late one
    assert window.seen == len(events)
    with pytest.raises(ValueError, match="positive"):
        TrailingWindow(0.0)


@pytest.mark.parametrize("key", [b"", b"a", b"ab", b"abc", b"abcd", b"user-42", "ü12345".encode()])
def test_murmur2_is_kafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key) & 0xFFFFFFFF


def test_partition_is_the_default_partitioners() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    partitions = list(range(12))
    for user in ("u1", "s123", "o7", "x" * 40):
        key = user.encode()
        assert partition_for(key, 12) == DefaultPartitioner()(key, partitions, partitions)


def test_record_log_assigns_consecutive_offsets_per_partition() -> None:
    log = RecordLog("t", 3, {1: 10})
    events = [event(f"e{i}", f"u{i % 5}", i, "p1") for i in range(20)]
    records = [log.append(e) for e in events]
    for partition in range(3):
        offsets = [r.offset for r in records if r.partition == partition]
        start = 10 if partition == 1 else 0
        assert offsets == list(range(start, start + len(offsets)))
    first = records[0]
    assert first.key == b"u0"
    assert first.timestamp_ms == round(events[0].occurred_at.timestamp() * 1000)
    assert decode_event(first.value or b"") == events[0]
    assert log.append(events[0], timestamp_ms=5).timestamp_ms == 5


def test_partition_batches_are_single_partition_bounded_and_complete() -> None:
    log = RecordLog("t", 4)
    records = [log.append(event(f"e{i}", f"u{i % 9}", i, "p1")) for i in range(50)]
    batches = list(partition_batches(records, 5))
    assert all(len({r.partition for r in b}) == 1 and 0 < len(b) <= 5 for b in batches)
    assert sorted((r.partition, r.offset) for b in batches for r in b) == sorted(
        (r.partition, r.offset) for r in records
    )
    for batch in batches:
        assert [r.offset for r in batch] == sorted(r.offset for r in batch)
