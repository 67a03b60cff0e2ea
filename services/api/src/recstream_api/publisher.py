"""Publishing events to the interactions topic with one shared aiokafka producer.

The producer is started by the app's lifespan. When the broker cannot be
reached at start the API still starts (reads need only Redis); the producer
is started on the next track request or health check instead, and those
answer 503 until the broker is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from recstream.platform.kafka import KafkaConnectError, client_options, start_client
from recstream.platform.settings import KafkaSettings
from recstream_api.exceptions import BrokerUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Delivered:
    partition: int
    offset: int


class EventPublisher:
    def __init__(self, kafka: KafkaSettings, linger_ms: int, timeout_seconds: float) -> None:
        self._kafka = kafka
        self._linger_ms = linger_ms
        self._timeout = timeout_seconds
        self._producer: Any = None
        self._lock = asyncio.Lock()

    @property
    def topic(self) -> str:
        return self._kafka.interactions_topic

    def _new_producer(self) -> Any:
        return AIOKafkaProducer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            **client_options(self._kafka.security),
            client_id=f"{self._kafka.client_id}-api",
            acks="all",
            linger_ms=self._linger_ms,
            request_timeout_ms=int(self._timeout * 1000),
        )

    async def _ready(self) -> Any:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = self._new_producer()
                try:
                    await start_client(
                        producer, self._kafka.bootstrap_servers, self._kafka.security
                    )
                except KafkaConnectError as exc:
                    raise BrokerUnavailableError(str(exc)) from exc
                self._producer = producer
        return self._producer

    async def start(self) -> None:
        """Start the producer, or leave it for later when the broker is down now."""
        try:
            await self._ready()
        except BrokerUnavailableError as exc:
            log.warning("producer not started, will retry on demand: %s", exc.message)

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def publish(
        self, records: Sequence[OutgoingRecord], topic: str | None = None
    ) -> list[Delivered]:
        """Send every record (to the interactions topic unless ``topic`` says otherwise)
        and wait until the broker acknowledged all of them (acks=all)."""
        producer = await self._ready()
        try:
            async with asyncio.timeout(self._timeout):
                futures = [
                    await producer.send(topic or self.topic, value=r.value, key=r.key)
                    for r in records
                ]
                metadata = await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailableError(
                f"the broker did not acknowledge the events: {exc!r}"
            ) from exc
        return [Delivered(m.partition, m.offset) for m in metadata]

    async def ping(self, timeout_seconds: float) -> float:
        """Fetch cluster metadata; the round trip in milliseconds, or BrokerUnavailableError."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_seconds):
                producer = await self._ready()
                await producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailableError(f"broker metadata request failed: {exc!r}") from exc
        return (time.perf_counter() - started) * 1000.0
