"""``recstream train --from-topic``: the interactions topic read from its start to its end,
undecodable records skipped and counted, every event in time order, erased users' events
left out; with a window, only what lies within it of the last event is held."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from rich.console import Console

from recstream.contract.erasures import ErasureNotice
from recstream_cli.train import read_topic

from ..unit.eventgen import make_event
from .conftest import create_topic, encode, interaction_events, produce

pytestmark = pytest.mark.integration


async def test_the_whole_topic_is_read_in_time_order(kafka_bootstrap: str, topic_name: str) -> None:
    await create_topic(kafka_bootstrap, topic_name, 3)
    events = interaction_events(60, users=7)
    records = [(e["user_id"].encode(), encode(e)) for e in reversed(events)]
    records.insert(10, (b"u0", b"{not an event"))
    await produce(kafka_bootstrap, topic_name, records)
    console = Console(record=True, width=200)

    read = await read_topic(kafka_bootstrap, topic_name, console)

    assert sorted(e.event_id for e in read) == sorted(e["event_id"] for e in events)
    assert [e.occurred_at for e in read] == sorted(e.occurred_at for e in read)
    said = console.export_text()
    assert "read 60 events" in said
    assert "1 undecodable skipped" in said


async def test_a_model_is_not_trained_on_what_a_user_had_erased(
    kafka_bootstrap: str, topic_name: str
) -> None:
    await create_topic(kafka_bootstrap, topic_name, 2)
    events = interaction_events(40, users=4)
    await produce(kafka_bootstrap, topic_name, [(e["user_id"].encode(), encode(e)) for e in events])
    gone = events[0]["user_id"]
    times = sorted(e["occurred_at"] for e in events if e["user_id"] == gone)
    middle = datetime.fromisoformat(times[len(times) // 2]).timestamp()
    erasures = f"{topic_name}.erasures"
    await produce(kafka_bootstrap, erasures, [ErasureNotice(gone, middle, "user:x").encode()])
    console = Console(record=True, width=200)

    read = await read_topic(kafka_bootstrap, topic_name, console, erasures_topic=erasures)

    mine = [e for e in read if e.user_id == gone]
    assert mine, "events after the erasure are a new user's"
    assert all(e.occurred_at.timestamp() > middle for e in mine)
    others = [e for e in events if e["user_id"] != gone]
    assert len(read) == len(others) + len(mine)
    assert f"{len(times) - len(mine)} of 1 erased users left out" in console.export_text()


async def test_a_windowed_read_holds_only_the_window_of_the_topics_last_event(
    kafka_bootstrap: str, topic_name: str
) -> None:
    """Ten days of events, an hour apart, on three partitions: a two-day window keeps the
    events within two days of the latest, whichever partition it is on."""
    await create_topic(kafka_bootstrap, topic_name, 3)
    events = [
        make_event(f"e{h}", "product_view", f"u{h % 5}", minutes=60 * h, product_id=f"p{h % 9}")
        for h in range(240)
    ]
    await produce(kafka_bootstrap, topic_name, [(e["user_id"].encode(), encode(e)) for e in events])
    console = Console(record=True, width=200)

    read = await read_topic(kafka_bootstrap, topic_name, console, keep_seconds=2 * 86_400.0)

    last = max(datetime.fromisoformat(e["occurred_at"]) for e in events)
    within = [
        e["event_id"]
        for e in events
        if datetime.fromisoformat(e["occurred_at"]) >= last - timedelta(days=2)
    ]
    assert [e.event_id for e in read] == within
    assert len(within) == 49  # 48 hours and both ends
    assert f"read 240 events from {topic_name} (0 undecodable skipped, 49 within 2 days" in (
        console.export_text()
    )
