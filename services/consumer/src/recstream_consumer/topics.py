"""Create the topics the consumer uses, idempotently, at start, with their configuration.

- ``interactions`` (partitions from the settings): deleted after
  ``interactions_retention_days`` (180, the longest state TTL: a rebuild from the log
  restores every live key), or kept for ever with ``-1``;
- ``interactions.dlq``: deleted after ``dead_letter_retention_days`` (14);
- ``catalog``: compacted, so the latest upsert or delete (a tombstone) of every item
  stays, whatever its age: the producers key records by item id.

A topic that already exists is left as it is (its partition count and configuration are
not changed: on a managed Kafka they are the operator's); a configuration that differs
from the above is logged as a warning, naming the setting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from recstream.platform.kafka import client_options, start_client
from recstream.platform.settings import KafkaSecurity, KafkaSettings

log = logging.getLogger(__name__)


class TopicSetupError(RuntimeError):
    """The broker refused to create a topic for another reason than that it exists."""


DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


def _retention(days: float) -> dict[str, str]:
    return {
        "cleanup.policy": "delete",
        "retention.ms": "-1" if days < 0 else str(int(days * DAY_MS)),
    }


def topic_specs(kafka: KafkaSettings) -> list[TopicSpec]:
    """The topics of one deployment: the dead letters share the interactions' partitioning;
    the catalog and the erasure log are compacted."""
    return [
        TopicSpec(
            kafka.interactions_topic,
            kafka.partitions,
            kafka.replication_factor,
            _retention(kafka.interactions_retention_days),
        ),
        TopicSpec(
            kafka.dead_letter_topic,
            kafka.partitions,
            kafka.replication_factor,
            _retention(kafka.dead_letter_retention_days),
        ),
        TopicSpec(
            kafka.catalog_topic,
            kafka.partitions,
            kafka.replication_factor,
            {"cleanup.policy": "compact"},
        ),
        # a few records a day, read whole before a rebuild: one partition, kept for ever
        # (compaction keeps each user's latest erasure)
        TopicSpec(kafka.erasures_topic, 1, kafka.replication_factor, {"cleanup.policy": "compact"}),
    ]


async def ensure_topics(
    bootstrap_servers: str,
    specs: Sequence[TopicSpec],
    client_id: str = "recstream-admin",
    security: KafkaSecurity | None = None,
) -> list[str]:
    """Create the missing topics; return the names that were created now."""
    security = security or KafkaSecurity()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id=client_id, **client_options(security)
    )
    await start_client(admin, bootstrap_servers, security)
    try:
        response = await admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.configs))
                for s in specs
            ]
        )
        existing = [s for s in specs if s.configs and s.name not in _created(response)]
        differences = await config_differences(admin, existing) if existing else []
    finally:
        await admin.close()
    for difference in differences:
        log.warning("topic configuration differs: %s", difference)
    created: list[str] = []
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        if code == 0:
            created.append(name)
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            continue
        message = entry[2] if len(entry) > 2 else ""
        raise TopicSetupError(f"cannot create topic {name!r}: {error.__name__} {message or ''}")
    if created:
        log.info("created topics %s", created)
    return created


def _created(response: object) -> set[str]:
    return {entry[0] for entry in getattr(response, "topic_errors", ()) if entry[1] == 0}


async def config_differences(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> list[str]:
    """``topic: key is X, recstream expects Y`` for every configuration of ``specs`` that the
    broker reports otherwise (a key it does not report is not compared)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs]
    responses = await admin.describe_configs(resources)
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            _code, _message, _type, name, entries = resource[:5]
            found[name] = {entry[0]: entry[1] for entry in entries}
    differences = []
    for spec in specs:
        actual = found.get(spec.name, {})
        for key, wanted in spec.configs.items():
            if key in actual and actual[key] != wanted:
                differences.append(
                    f"{spec.name}: {key} is {actual[key]}, recstream expects {wanted}"
                )
    return differences
