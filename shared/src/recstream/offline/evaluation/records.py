"""Events laid out as log records: the partition Kafka would choose, consecutive offsets.

The replay command and the offline evaluation feed events to
:func:`recstream.apply.batch.apply_batch` as :class:`~recstream.apply.batch.RawRecord` values
placed as on the topic: the key is the user id, the partition is Kafka's default
for a keyed record (``murmur2(key) & 0x7fffffff`` modulo the partition count, as
the Java client and aiokafka compute it), and offsets count up from 0 (or from
given start offsets) in each partition. Applying them builds the state the
consumer builds from a topic that holds the same records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from recstream.apply.batch import RawRecord
from recstream.contract.events import Event, encode_event

_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), unsigned."""
    m, length = 0x5BD1E995, len(data)
    h = (0x9747B28C ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & _MASK
        k ^= k >> 24
        k = (k * m) & _MASK
        h = ((h * m) & _MASK) ^ k
    tail = length - length % 4
    extra = length % 4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & _MASK
    h ^= h >> 13
    h = (h * m) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a keyed record among ``partitions`` (Kafka's default partitioner)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def event_time_ms(event: Event) -> int:
    return round(event.occurred_at.timestamp() * 1000)


class RecordLog:
    """Assigns each appended event its partition and the next offset of that partition."""

    def __init__(
        self, topic: str, partitions: int, next_offsets: Mapping[int, int] | None = None
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.topic = topic
        self.partitions = partitions
        self.next_offsets = {p: 0 for p in range(partitions)}
        self.next_offsets.update(next_offsets or {})

    def append(self, event: Event, timestamp_ms: int | None = None) -> RawRecord:
        """The record of ``event``; its timestamp is the event time unless one is given."""
        key = event.user_id.encode()
        partition = partition_for(key, self.partitions)
        offset = self.next_offsets[partition]
        self.next_offsets[partition] = offset + 1
        stamp = event_time_ms(event) if timestamp_ms is None else timestamp_ms
        return RawRecord(self.topic, partition, offset, stamp, key, encode_event(event), (), event)


def partition_batches(records: Iterable[RawRecord], max_records: int) -> Iterator[list[RawRecord]]:
    """Batches of one partition each, in offset order, at most ``max_records`` long.

    A partition's batch is emitted when it is full; the rest at the end, by partition.
    """
    if max_records < 1:
        raise ValueError("max_records must be >= 1")
    pending: dict[int, list[RawRecord]] = {}
    for record in records:
        batch = pending.setdefault(record.partition, [])
        batch.append(record)
        if len(batch) >= max_records:
            yield batch
            pending[record.partition] = []
    for partition in sorted(pending):
        if pending[partition]:
            yield pending[partition]
