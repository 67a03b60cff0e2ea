"""Building the evaluated state: training events applied through the batch-apply core.

The evaluation never shortcuts the write path: training events become log
records (:mod:`recstream.offline.evaluation.records`) and are applied partition batch
by partition batch with :func:`recstream.apply.batch.apply_batch`, into whichever
store is evaluated (memory or Redis).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from recstream.apply.batch import DeadLetter, apply_batch
from recstream.contract.events import Event
from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.records import RecordLog, partition_batches
from recstream.store.port import StateStore
from recstream.store.reads import StatsReader

Progress = Callable[[int], None]


class EvalStore(StateStore, StatsReader, Protocol):
    """A store the evaluation writes through (batch commits) and reads from (the read model)."""


@dataclass(slots=True)
class IngestStats:
    records: int = 0
    applied: int = 0
    skipped: int = 0
    duplicates: int = 0
    batches: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


def landmark_for(events: Iterable[Event]) -> float:
    """A decay landmark for a dataset: its first event time, in whole days (UTC)."""
    first = min(e.occurred_at.timestamp() for e in events)
    return float(int(first // DAY) * DAY)


async def build_state(
    store: StateStore,
    events: Iterable[Event],
    log: RecordLog,
    config: CoreConfig,
    *,
    batch_records: int = 2000,
    progress: Progress | None = None,
) -> IngestStats:
    """Append ``events`` to ``log`` and apply them to ``store`` in partition batches."""
    stats = IngestStats()
    records = [log.append(event) for event in events]
    for batch in partition_batches(records, batch_records):
        report = await apply_batch(store, batch, config)
        stats.records += report.records
        stats.applied += report.applied
        stats.skipped += report.skipped
        stats.duplicates += report.duplicates
        stats.dead_letters += report.dead_letters
        stats.batches += 1
        if progress is not None:
            progress(len(batch))
    return stats
