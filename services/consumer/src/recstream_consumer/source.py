"""The seam between the log and the batch handler: an :class:`EventSource`.

Two implementations read the same topic as a consumer group and hand
per-partition batches of :class:`~recstream.apply.batch.RawRecord` to the same
:class:`~recstream_consumer.handler.BatchHandler`: a plain aiokafka runner
(:mod:`recstream_consumer.aiokafka_source`) and a faust-streaming agent
(:mod:`recstream_consumer.faust_source`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from recstream.apply.batch import RawRecord

HeaderPairs = Iterable[tuple[str, bytes | None]]


class EventSource(Protocol):
    @property
    def name(self) -> str:
        """The runtime's name, for logs."""
        ...

    async def run(self) -> None:
        """Consume until :meth:`stop` is called, then commit what was applied and leave."""
        ...

    def stop(self) -> None:
        """Ask :meth:`run` to return: the in-flight batch finishes or is abandoned whole."""
        ...

    def assignment(self) -> set[tuple[str, int]]:
        """The ``(topic, partition)`` pairs this member owns now (empty before it joined)."""
        ...


def make_record(
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    key: bytes | None,
    value: bytes | None,
    headers: HeaderPairs | None,
) -> RawRecord:
    return RawRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp_ms,
        key=key,
        value=value,
        headers=tuple((str(k), bytes(v or b"")) for k, v in headers) if headers else (),
    )
