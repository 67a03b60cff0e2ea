"""Topic set-up for the dev stack, with the consumer's own topic definitions."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from recstream_cli.stack import StackError
from recstream_consumer.settings import ConsumerSettings
from recstream_consumer.topics import TopicSetupError, ensure_topics, topic_specs


def create_topics(bootstrap_servers: str, timeout: float = 30.0) -> list[str]:
    """Create the interactions, dead-letter and catalog topics before any client uses them.

    The API may publish before the consumer has started; creating the topics
    first gives them the configured partition count rather than a broker default.
    """
    try:
        kafka = ConsumerSettings().kafka
    except ValidationError as exc:
        raise StackError(f"invalid consumer settings: {exc}") from exc
    try:
        return asyncio.run(
            asyncio.wait_for(ensure_topics(bootstrap_servers, topic_specs(kafka)), timeout)
        )
    except (KafkaError, TopicSetupError, TimeoutError, OSError) as exc:
        raise StackError(f"cannot create topics on {bootstrap_servers}: {exc}") from exc
