"""Restoring the erasure log into the store before anything is folded from the log.

Who was erased lives in the compacted erasures topic (``recstream.contract.erasures``);
Redis holds a copy (``rs:erasures``) and how far it follows the log (``rs:erasures:log``).
:class:`ErasureSync` brings the copy up to the log: at the consumer's start and before
every rebuild of a partition, so a Redis that lost everything (flushed, restarted
empty, restored from an older snapshot) knows every erased user again before a single
event of theirs is re-applied. Reading only from the stored position on, it costs one
end-offset request when nothing changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

from recstream.apply.batch import RawRecord
from recstream.apply.operations import restore_erasures
from recstream.contract.erasures import ErasureNotice, ErasureNoticeError, decode_notice
from recstream.model.config import CoreConfig
from recstream.store.port import StateStore

log = logging.getLogger(__name__)

READ_BATCH = 2000


class ErasureSource(Protocol):
    """Where the erasure log is read (:class:`~recstream_consumer.rebuild.KafkaPartitionLog`)."""

    async def partitions(self, topic: str) -> list[int]: ...

    async def log_start(self, topic: str, partition: int) -> int: ...

    async def log_end(self, topic: str, partition: int) -> int: ...

    async def read(
        self, topic: str, partition: int, start: int, end: int, limit: int
    ) -> list[RawRecord]: ...


class ErasureSync:
    def __init__(
        self, source: ErasureSource, topic: str, store: StateStore, config: CoreConfig
    ) -> None:
        self._source = source
        self._topic = topic
        self._store = store
        self._config = config
        self._lock = asyncio.Lock()  # partitions rebuilding at once restore it once
        self.restored = 0  # users erased again from the log, since the start
        self.undecodable = 0

    async def ensure(self) -> int:
        """Restore what the store lacks of the erasure log; the number of users restored."""
        async with self._lock:
            position = await self._store.erasure_log_position()
            ends = {
                p: await self._source.log_end(self._topic, p)
                for p in await self._source.partitions(self._topic)
            }
            if ends == position:
                return 0
            notices: list[ErasureNotice] = []
            for partition, end in ends.items():
                start = await self._start(partition, position, end)
                notices += await self._read(partition, start, end)
            restored = await restore_erasures(self._store, notices, self._config)
            await self._store.set_erasure_log_position(ends)
        self.restored += restored
        if restored:
            log.warning(
                "restored %d erasures from %s the store did not hold", restored, self._topic
            )
        return restored

    async def _start(self, partition: int, position: Mapping[int, int], end: int) -> int:
        stored = position.get(partition)
        first = await self._source.log_start(self._topic, partition)
        if stored is None or stored > end:  # nothing restored yet, or a recreated topic
            return first
        return max(stored, first)

    async def _read(self, partition: int, start: int, end: int) -> list[ErasureNotice]:
        notices: list[ErasureNotice] = []
        while start < end:
            records = await self._source.read(self._topic, partition, start, end, READ_BATCH)
            if not records:
                break  # compacted away up to the end
            for record in records:
                try:
                    notices.append(decode_notice(record.key, record.value))
                except ErasureNoticeError as exc:
                    self.undecodable += 1
                    log.error(
                        "%s[%d] offset %d is not an erasure notice, skipped: %s",
                        self._topic, partition, record.offset, exc,
                    )  # fmt: skip
            start = records[-1].offset + 1
        return notices
