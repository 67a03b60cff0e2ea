"""Observing the system from outside: watermark progress, committed offsets, the DLQ, metrics.

:class:`MarkWatch` samples the partition watermarks in Redis every few tens of
milliseconds, riding out Redis outages, so a scenario can tell when the
consumer resumed after a fault, how long each pause lasted and when the state
caught up with the input.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import RedisError

from faults.driver import bounded, read_log
from recstream.store.redis import RedisStore


@dataclass
class MarkWatch:
    store: RedisStore
    topic: str
    interval: float = 0.05
    samples: list[tuple[float, dict[int, int]]] = field(default_factory=list)
    errors: int = 0
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MarkWatch:
        self._task = asyncio.create_task(self._run(), name="mark-watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5.0)  # a swallowed cancel: left behind

    async def _run(self) -> None:
        while True:
            try:
                # a read from a killed primary can swallow its cancellation: left behind
                marks = await bounded(self.store.partition_watermarks(self.topic), 2.0)
                self.samples.append((time.monotonic(), marks))
            except (RedisError, OSError, TimeoutError, Exception):
                self.errors += 1
            await asyncio.sleep(self.interval)

    @property
    def latest(self) -> dict[int, int]:
        return dict(self.samples[-1][1]) if self.samples else {}

    def at(self, moment: float) -> dict[int, int]:
        """The last sample taken at or before ``moment``."""
        found: dict[int, int] = {}
        for at, marks in self.samples:
            if at > moment:
                break
            found = marks
        return dict(found)

    def progress_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` until some partition's watermark moved past its value then."""
        before = self.at(moment)
        for at, marks in self.samples:
            if at > moment and any(o > before.get(p, -1) for p, o in marks.items()):
                return at - moment
        return None

    async def wait_progress(self, moment: float, within: float) -> float | None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = self.progress_after(moment)
            if found is not None:
                return found
            await asyncio.sleep(self.interval)
        return None

    async def wait_caught_up(self, last: Mapping[int, int], within: float) -> float | None:
        """Seconds until every partition's watermark reached ``last`` (None on timeout)."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            marks = self.latest
            if all(marks.get(p, -1) >= o for p, o in last.items()):
                return time.monotonic() - started
            await asyncio.sleep(self.interval)
        return None

    def pause_after(self, moment: float, pending: Mapping[int, int]) -> float | None:
        """Seconds from ``moment`` until every partition that had records pending then moved.

        ``pending`` holds each partition's last produced offset at ``moment``.
        """
        before = self.at(moment)
        waiting = {p for p, o in pending.items() if o > before.get(p, -1)}
        for at, marks in self.samples:
            if at <= moment:
                continue
            waiting = {p for p in waiting if marks.get(p, -1) <= before.get(p, -1)}
            if not waiting:
                return at - moment
        return None

    def partition_stalls(self, start: float, end: float) -> dict[int, float]:
        """Per partition, the longest time within [start, end] its watermark did not move."""
        first = self.at(start)
        last_move = dict.fromkeys(first, start)
        previous = dict(first)
        longest: dict[int, float] = {}
        for at, marks in self.samples:
            if at <= start or at > end:
                continue
            for p, o in marks.items():
                if o != previous.get(p):
                    longest[p] = max(longest.get(p, 0.0), at - last_move.get(p, start))
                    last_move[p], previous[p] = at, o
        for p, moved in last_move.items():
            longest[p] = max(longest.get(p, 0.0), end - moved)
        return longest


async def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: int
) -> dict[int, int]:
    """The group's committed offsets (partitions without a commit are left out)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await bounded(reader.start(), 30)
    try:
        found: dict[int, int] = {}
        for p in range(partitions):
            offset = await bounded(reader.committed(TopicPartition(topic, p)), 30)
            if offset is not None and offset >= 0:
                found[p] = offset
        return found
    finally:
        await bounded(reader.stop(), 30)


def lost_state(
    marks: Mapping[int, int], committed: Mapping[int, int]
) -> dict[int, tuple[int, int]]:
    """Partitions whose Redis watermark is behind the group's committed offset.

    A consumer commits ``offset + 1`` only after the batch ending at ``offset`` is in
    Redis, so ``committed - 1 <= watermark`` always holds while Redis keeps its data.
    A partition that breaks it (typically: no watermark at all) lost applied state:
    Redis was flushed or restarted empty. Returns ``partition -> (watermark, committed)``.
    """
    return {
        p: (marks.get(p, -1), c) for p, c in committed.items() if c > 0 and marks.get(p, -1) < c - 1
    }


async def consumer_metrics(port: int) -> dict[str, float]:
    """A consumer's ``/metrics``: each sample name with its value summed over the labels."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


async def dead_letters(
    bootstrap: str, topic: str, count: int, within: float = 30.0
) -> list[dict[str, object]]:
    """The dead-letter topic's records with their headers as text (bytes kept for the value)."""
    records = await read_log(bootstrap, topic, count, within)
    return [
        {
            "key": r.key,
            "value": r.value,
            "headers": {k: v.decode(errors="replace") for k, v in r.headers},
        }
        for r in records
    ]
