"""The dead-letter sink: records that cannot be decoded or validated, with the reason.

A dead letter keeps the original key and value bytes and the original
headers, plus ``dlq.reason``, ``dlq.detail``, ``dlq.source.topic``,
``dlq.source.partition`` and ``dlq.source.offset``. :meth:`publish` returns
only when the broker acknowledged every letter, so the source offsets are
never committed past a letter that was not written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer

from recstream.apply.batch import DeadLetter

MAX_DETAIL_BYTES = 1024

REASON_HEADER = "dlq.reason"
DETAIL_HEADER = "dlq.detail"
TOPIC_HEADER = "dlq.source.topic"
PARTITION_HEADER = "dlq.source.partition"
OFFSET_HEADER = "dlq.source.offset"


class DeadLetterSink(Protocol):
    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Write every letter durably, or raise."""
        ...


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    record = letter.record
    return [
        *record.headers,
        (REASON_HEADER, letter.reason.encode()),
        (DETAIL_HEADER, letter.detail.encode()[:MAX_DETAIL_BYTES]),
        (TOPIC_HEADER, record.topic.encode()),
        (PARTITION_HEADER, str(record.partition).encode()),
        (OFFSET_HEADER, str(record.offset).encode()),
    ]


class KafkaDeadLetterSink:
    """Publishes dead letters to a topic, keyed like the source record."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    @property
    def topic(self) -> str:
        return self._topic

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        pending = [
            await self._producer.send(
                self._topic,
                value=letter.record.value,
                key=letter.record.key,
                headers=dead_letter_headers(letter),
            )
            for letter in letters
        ]
        await asyncio.gather(*pending)
