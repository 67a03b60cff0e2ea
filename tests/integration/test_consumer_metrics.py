"""The consumer's status port against a real broker and Redis: /metrics, /healthz, /readyz."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore
from recstream_consumer.service import open_consumer
from recstream_consumer.settings import Runtime

from .conftest import (
    REPO,
    RUNTIMES,
    consumer_settings,
    create_topic,
    encode,
    interaction_events,
    last_offsets,
    produce,
    running_consumer,
    wait_for_watermarks,
    wait_until,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def scrape(port: int) -> Samples:
    status, text = await get(port, "/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def labelled(samples: Samples, name: str, **having: str) -> list[Mapping[str, str]]:
    """The label sets of ``name`` that include ``having``."""
    return [
        dict(labels)
        for (n, labels) in samples
        if n == name and having.items() <= dict(labels).items()
    ]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_metrics_and_probes_follow_what_the_consumer_did(
    runtime: Runtime,
    kafka_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
) -> None:
    port = free_port()
    settings = consumer_settings(
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        keyspace=keyspace,
        topic=topic_name,
        runtime=runtime,
        partitions=PARTITIONS,
        max_batch_records=100,
        http_host="127.0.0.1",
        http_port=port,
        quality_sample_rate=1.0,
        quality_budget=1.0,
    )
    await create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    good = interaction_events(600, users=7)  # a user's events are 7 minutes apart: sessions
    records = [(e["user_id"].encode(), encode(e)) for e in good]
    bad = [
        (b"u1", b'{"event_id": "x1", "event_type": '),
        (b"u2", b"not json at all"),
        (b"u9", encode({**good[0], "event_id": "km"})),  # keyed u9, event of u0
    ]
    for index, pair in enumerate(bad):
        records.insert(index * 50 + 7, pair)
    sent = await produce(kafka_bootstrap, topic_name, records)
    # aiokafka reports every owned partition (from the fetch position until a batch is
    # applied); faust the partitions it applied batches of
    lagging = {str(p) for p in range(PARTITIONS)}
    if runtime == "faust":
        lagging = {str(s.partition) for s in sent}

    async with open_consumer(settings) as idle:  # the port answers before the member joins
        assert idle.status_port == port
        assert await get(port, "/healthz") == (200, "ok\n")
        status, body = await get(port, "/readyz")
        assert status == 503
        assert '"partitions": 0' in body

    async with running_consumer(settings) as (consumer, task):
        assert consumer.status_port == port

        async def ready() -> bool:
            return (await get(port, "/readyz"))[0] == 200

        await wait_until(ready, 30, "/readyz 200", watch=[task])
        await wait_for_watermarks(store, topic_name, last_offsets(sent), watch=[task])

        async def caught_up() -> bool:
            lags = await scrape(port)
            partitions = labelled(lags, "recstream_consumer_lag", topic=topic_name)
            return {labels["partition"] for labels in partitions} == lagging and all(
                value(lags, "recstream_consumer_lag", **labels) == 0 for labels in partitions
            )

        await wait_until(caught_up, 30, "lag 0 on every partition", watch=[task])
        samples = await scrape(port)
        assert await get(port, "/healthz") == (200, "ok\n")
        assert (await get(port, "/readyz"))[0] == 200

    events = "recstream_consumer_events_total"
    assert value(samples, events, outcome="applied", topic=topic_name) == len(good)
    assert value(samples, events, outcome="dead_lettered", topic=topic_name) == len(bad)
    assert value(samples, events, outcome="skipped", topic=topic_name) == 0
    assert value(samples, events, outcome="duplicate", topic=topic_name) == 0
    letters = "recstream_consumer_dead_letters_total"
    assert value(samples, letters, reason="invalid_json") == 2
    assert value(samples, letters, reason="key_mismatch") == 1
    lags = labelled(samples, "recstream_consumer_lag")
    assert {labels["topic"] for labels in lags} <= {topic_name, settings.kafka.catalog_topic}
    assert {labels["partition"] for labels in lags if labels["topic"] == topic_name} == lagging
    # every record is in exactly one batch; every applied one has a freshness
    assert value(samples, "recstream_consumer_batch_records_sum") == len(records)
    batches = value(samples, "recstream_consumer_batch_seconds_count")
    assert batches is not None
    assert batches >= len(records) / 100
    assert value(samples, "recstream_consumer_freshness_seconds_count") == len(good)
    assert (value(samples, "recstream_consumer_freshness_seconds_sum") or 0) > 0
    assert (value(samples, "recstream_consumer_rebalances_total") or 0) >= 1
    assert value(samples, "recstream_consumer_retries_total") == 0
    # every event was sampled; those that continue a session were scored
    scored = value(samples, "recstream_quality_samples_total", outcome="scored")
    assert scored is not None
    assert scored > 100
    hit_rate = value(samples, "recstream_quality_hit_rate", k="20")
    mrr = value(samples, "recstream_quality_mrr", k="20")
    assert hit_rate is not None
    assert mrr is not None
    assert 0.0 < hit_rate <= 1.0
    assert 0.0 < mrr <= hit_rate
    assert (value(samples, "process_cpu_seconds_total") or 0) > 0
    assert consumer.counters.applied == len(good)
    # every consumer series the Grafana dashboard queries is served
    dashboard = (REPO / "docs" / "grafana" / "recstream.json").read_text()
    wanted = set(re.findall(r"recstream_(?:consumer|quality)_[a-z_]+", dashboard))
    assert len(wanted) >= 6
    served = {name for name, _ in samples}
    served |= {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in served}
    assert not wanted - served
