"""Create the topics the consumer uses, idempotently, at start.

``interactions`` (partitions from the settings), ``interactions.dlq`` and
``catalog``. A topic that already exists is left as it is (its partition
count is not changed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from recstream.platform.settings import KafkaSettings

log = logging.getLogger(__name__)


class TopicSetupError(RuntimeError):
    """The broker refused to create a topic for another reason than that it exists."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int


def topic_specs(kafka: KafkaSettings) -> list[TopicSpec]:
    """The topics of one deployment: the dead letters share the interactions' partitioning."""
    names = (kafka.interactions_topic, kafka.dead_letter_topic, kafka.catalog_topic)
    return [TopicSpec(name, kafka.partitions, kafka.replication_factor) for name in names]


async def ensure_topics(
    bootstrap_servers: str, specs: Sequence[TopicSpec], client_id: str = "recstream-admin"
) -> list[str]:
    """Create the missing topics; return the names that were created now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor) for s in specs]
        )
    finally:
        await admin.close()
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
