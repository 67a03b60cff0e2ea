"""The topic initialiser: interactions and dead letters with their retention, the catalog
compacted; a topic someone else created with another configuration is reported, not
changed."""

from __future__ import annotations

import logging
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from recstream.platform.settings import KafkaSettings
from recstream_consumer.topics import TopicSpec, config_differences, ensure_topics, topic_specs

pytestmark = pytest.mark.integration


def settings(bootstrap: str) -> KafkaSettings:
    run = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        interactions_topic=f"i-{run}",
        dead_letter_topic=f"i-{run}.dlq",
        catalog_topic=f"catalog-{run}",
        erasures_topic=f"erasures-{run}",
        partitions=2,
        interactions_retention_days=-1,
    )


async def differences(bootstrap: str, specs: list[TopicSpec]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await config_differences(admin, specs)
    finally:
        await admin.close()


async def test_topics_are_created_with_their_configuration(kafka_bootstrap: str) -> None:
    kafka = settings(kafka_bootstrap)
    specs = topic_specs(kafka)
    assert {s.name: dict(s.configs) for s in specs} == {
        kafka.interactions_topic: {"cleanup.policy": "delete", "retention.ms": "-1"},
        kafka.dead_letter_topic: {"cleanup.policy": "delete", "retention.ms": str(14 * 86_400_000)},
        kafka.catalog_topic: {"cleanup.policy": "compact"},
        kafka.erasures_topic: {"cleanup.policy": "compact"},
    }
    created = await ensure_topics(kafka_bootstrap, specs)
    assert sorted(created) == sorted(s.name for s in specs)
    assert await differences(kafka_bootstrap, specs) == []
    assert await ensure_topics(kafka_bootstrap, specs) == []  # idempotent


async def test_an_existing_topic_with_another_configuration_is_reported(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    kafka = settings(kafka_bootstrap)
    # created by someone else, not compacted
    await ensure_topics(
        kafka_bootstrap, [TopicSpec(kafka.catalog_topic, 2, 1, {"cleanup.policy": "delete"})]
    )
    with caplog.at_level(logging.WARNING, logger="recstream_consumer.topics"):
        created = await ensure_topics(kafka_bootstrap, topic_specs(kafka))
    assert kafka.catalog_topic not in created
    said = [r.getMessage() for r in caplog.records]
    expected = f"{kafka.catalog_topic}: cleanup.policy is delete, recstream expects compact"
    assert f"topic configuration differs: {expected}" in said
    assert await differences(kafka_bootstrap, topic_specs(kafka)) == [expected]
