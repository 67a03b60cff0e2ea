"""The oracle: the state the recorded input implies, computed with the pure core.

The recorded records are applied partition by partition in offset order through
:func:`recstream.apply.batch.apply_batch`, the consumer's own write path, into a
:class:`~recstream.store.memory.MemoryStore` with the same keyspace and core settings.
:func:`replay` is the same loop for any store: the rebuild of a lost Redis uses
it with the real :class:`~recstream.store.redis.RedisStore`.

With ``batch_size=1`` every record is its own batch, so each statistic shard's
watermark ends at the last offset that contributed to it: the lowest value a
correct consumer can leave (its batches end at or after that offset).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from faults.snapshot import Snapshot, memory_snapshot
from recstream.apply.batch import BatchReport, DeadLetter, RawRecord, apply_batch
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.store.memory import MemoryStore
from recstream.store.port import StateStore


@dataclass
class Expectation:
    snapshot: Snapshot
    dead_letters: list[DeadLetter] = field(default_factory=list)
    records: int = 0
    applied: int = 0
    skipped: int = 0
    duplicates: int = 0
    batch_size: int = 1


def partition_batches(records: Iterable[RawRecord], size: int) -> list[list[RawRecord]]:
    """Batches of one partition each, in offset order, partitions one after the other."""
    ordered = sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
    batches: list[list[RawRecord]] = []
    for record in ordered:
        last = batches[-1] if batches else None
        if (
            last is not None
            and len(last) < size
            and (last[0].topic, last[0].partition) == (record.topic, record.partition)
        ):
            last.append(record)
        else:
            batches.append([record])
    return batches


async def replay(
    store: StateStore, records: Sequence[RawRecord], config: CoreConfig, batch_size: int
) -> list[BatchReport]:
    """Apply ``records`` to ``store`` as the consumer would, batch by batch."""
    return [
        await apply_batch(store, batch, config) for batch in partition_batches(records, batch_size)
    ]


async def expect(
    records: Sequence[RawRecord],
    config: CoreConfig,
    keyspace: Keyspace,
    batch_size: int = 1,
    erasure_log: Mapping[int, int] | None = None,
) -> Expectation:
    """The expected keyspace content after ``records`` (and, with ``erasure_log``, the
    position up to which a consumer restored the erasure log)."""
    store = MemoryStore(keyspace)
    if erasure_log is not None:
        await store.set_erasure_log_position(erasure_log)
    reports = await replay(store, records, config, batch_size)
    expectation = Expectation(memory_snapshot(store), records=len(records), batch_size=batch_size)
    for report in reports:
        expectation.dead_letters += report.dead_letters
        expectation.applied += report.applied
        expectation.skipped += report.skipped
        expectation.duplicates += report.duplicates
    return expectation
