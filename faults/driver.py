"""The driver: produces a known input and records where every record landed.

Each record is sent keyed (by user for events) with an explicit timestamp and
recorded as a :class:`~recstream.apply.batch.RawRecord` with the partition and offset
the broker acknowledged, plus a tag saying what it is (a valid event, a poison
record and its expected dead-letter reason, a duplicate). The recorded input is
what the oracle folds; :func:`read_log` reads a topic back to check that the
broker holds exactly that input.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from recstream.apply.batch import RawRecord

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None  # None: the wall clock at send time
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None  # None: the default partitioner on the key
    tag: str = "event"  # "event", "poison:<expected reason>", "duplicate", ...


def event_record(
    event: Mapping[str, Any], *, timestamp_ms: int | None = None, tag: str = "event"
) -> Outgoing:
    """A contract event as the apps send it: JSON, keyed by its user."""
    return Outgoing(
        key=str(event["user_id"]).encode(),
        value=orjson.dumps(event),
        timestamp_ms=timestamp_ms,
        tag=tag,
    )


def now_ms() -> int:
    return int(time.time() * 1000)


class Driver:
    """A long-lived producer (it has to ride out broker restarts) and the recorded input."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[RawRecord] = []
        self.tags: dict[tuple[int, int], str] = {}
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=5,
            max_request_size=4 * 1024 * 1024,
            request_timeout_ms=30_000,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await bounded(self._producer.stop(), 30)

    async def send(self, items: Iterable[Outgoing]) -> list[RawRecord]:
        """Send ``items`` in order, wait for every acknowledgement, record them."""
        pending: list[tuple[Outgoing, int, asyncio.Future[Any]]] = []
        for item in items:
            stamp = item.timestamp_ms if item.timestamp_ms is not None else now_ms()
            future = await self._producer.send(
                self.topic,
                value=item.value,
                key=item.key,
                partition=item.partition,
                timestamp_ms=stamp,
                headers=list(item.headers),
            )
            pending.append((item, stamp, future))
        acks = await bounded(asyncio.gather(*(f for _, _, f in pending)), SEND_TIMEOUT_SECONDS)
        sent = []
        for (item, stamp, _), meta in zip(pending, acks, strict=True):
            record = RawRecord(
                self.topic, meta.partition, meta.offset, stamp, item.key, item.value, item.headers
            )
            self.records.append(record)
            self.tags[(meta.partition, meta.offset)] = item.tag
            sent.append(record)
        return sent

    async def send_paced(
        self, items: Sequence[Outgoing], rate: float, *, stop: asyncio.Event | None = None
    ) -> int:
        """Send ``items`` at about ``rate`` records/s in 50 ms slices; returns the number sent."""
        step = max(1, int(rate / 20))
        started = time.monotonic()
        done = 0
        while done < len(items) and not (stop is not None and stop.is_set()):
            chunk = items[done : done + step]
            await self.send(chunk)
            done += len(chunk)
            ahead = started + done / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        return done

    async def restore(self, records: Sequence[RawRecord]) -> list[str]:
        """Write ``records`` again, each to its partition, in offset order (a log restore).

        Returns the differences between the offsets they get and the recorded ones
        (empty when the restored log is identical).
        """
        problems = []
        ordered = sorted(records, key=lambda r: (r.partition, r.offset))
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            pending = [
                await self._producer.send(
                    self.topic,
                    value=r.value,
                    key=r.key,
                    partition=r.partition,
                    timestamp_ms=r.timestamp_ms,
                    headers=list(r.headers),
                )
                for r in chunk
            ]
            for record, meta in zip(chunk, await asyncio.gather(*pending), strict=True):
                if meta.offset != record.offset:
                    problems.append(
                        f"[{record.partition}]@{record.offset} restored at {meta.offset}"
                    )
        return problems

    def last_offsets(self) -> dict[int, int]:
        return last_offsets(self.records)

    def tagged(self, prefix: str) -> list[RawRecord]:
        return [r for r in self.records if self.tags[(r.partition, r.offset)].startswith(prefix)]


def last_offsets(records: Iterable[RawRecord]) -> dict[int, int]:
    last: dict[int, int] = {}
    for record in records:
        last[record.partition] = max(last.get(record.partition, -1), record.offset)
    return last


async def read_log(
    bootstrap: str, topic: str, count: int, within: float = 60.0, settle: float = 1.0
) -> list[RawRecord]:
    """The records of ``topic`` (no consumer group): until ``count`` were read and ``settle``
    seconds brought no more, or ``within`` seconds passed."""
    consumer = await _started_reader(bootstrap, topic)
    try:
        records: list[RawRecord] = []
        deadline = time.monotonic() + within
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for messages in batch.values():
                records += [
                    RawRecord(
                        m.topic,
                        m.partition,
                        m.offset,
                        m.timestamp,
                        m.key,
                        m.value,
                        tuple((k, bytes(v or b"")) for k, v in m.headers or ()),
                    )
                    for m in messages
                ]
            if len(records) < count or batch:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                break
        return records
    finally:
        await _bounded(consumer.stop(), CLIENT_SECONDS)


# How long a reader's start or stop may take.
CLIENT_SECONDS = 30.0
T = TypeVar("T")


async def bounded(call: Awaitable[T], seconds: float) -> T:
    """``call``'s result within ``seconds``, else ``TimeoutError`` and the call cancelled and
    left behind. With asyncio.wait, not wait_for: a client call that swallows its
    cancellation (aiokafka's start, redis-py's cluster client reading from a killed
    primary) would hold wait_for for ever."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        raise TimeoutError(f"not done within {seconds:g} s")
    return task.result()


async def _bounded(call: Awaitable[Any], seconds: float) -> bool:
    """Whether ``call`` finished (without an error) within ``seconds``."""
    try:
        await bounded(call, seconds)
    except Exception:
        return False
    return True


async def _started_reader(bootstrap: str, topic: str, attempts: int = 3) -> AIOKafkaConsumer:
    """A started reader of ``topic`` from its start (no consumer group); a start that does
    not finish is abandoned and tried again with a new client."""
    for _ in range(attempts):
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        if await _bounded(consumer.start(), CLIENT_SECONDS):
            return consumer
        log.warning(
            "the log reader of %s did not start within %.0f s: a new one", topic, CLIENT_SECONDS
        )
        await _bounded(consumer.stop(), 5.0)
    raise RuntimeError(f"no reader of {topic} started in {attempts} x {CLIENT_SECONDS:.0f} s")


def log_differences(recorded: Sequence[RawRecord], log: Sequence[RawRecord]) -> list[str]:
    """How the log read back differs from the recorded input (empty when identical)."""
    by_position = {(r.partition, r.offset): r for r in log}
    problems = []
    for record in recorded:
        found = by_position.pop((record.partition, record.offset), None)
        if found is None:
            problems.append(f"[{record.partition}]@{record.offset} missing from the log")
        elif (found.key, found.value, found.timestamp_ms) != (
            record.key,
            record.value,
            record.timestamp_ms,
        ):
            problems.append(f"[{record.partition}]@{record.offset} differs in the log")
    problems += [f"[{p}]@{o} in the log but not recorded" for p, o in sorted(by_position)]
    return problems
