"""``recstream train --from-topic``: the interactions topic read from its start to its end,
undecodable records skipped and counted, every event in time order."""

from __future__ import annotations

import pytest
from rich.console import Console

from recstream_cli.train import read_topic

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
