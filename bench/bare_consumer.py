"""The transport floor of freshness: ``python -m bench.bare_consumer <config.json>``.

The same aiokafka polling as the consumer's runner (``getmany`` with the
consumer's default poll, fetch and batch settings, a commit after each
poll), every record decoded and validated, but instead of the fold and the
state script each partition batch only sets its partition watermark in
Redis (one ``HSET``). What remains is the broker, the fetch loop, decoding
and one Redis round trip: the least time any consumer needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from recstream.apply.batch import decode_record
from recstream.contract.events import EventError
from recstream.model.config import CoreConfig
from recstream_consumer.settings import ConsumerSection
from recstream_consumer.source import make_record


async def consume(config: dict[str, Any]) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    section = ConsumerSection(group_id=config["group"])
    core = CoreConfig()
    consumer = AIOKafkaConsumer(
        config["topic"],
        bootstrap_servers=config["bootstrap"],
        group_id=config["group"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=section.fetch_max_wait_ms,
        max_partition_fetch_bytes=section.max_partition_fetch_bytes,
        session_timeout_ms=3000,
        heartbeat_interval_ms=300,
    )
    redis = Redis.from_url(config["redis_url"])
    await consumer.start()
    try:
        while not stop.is_set():
            polled = await consumer.getmany(
                timeout_ms=section.poll_timeout_ms, max_records=section.max_poll_records
            )
            for tp, messages in polled.items():
                size = section.max_batch_records
                for start in range(0, len(messages), size):
                    batch = messages[start : start + size]
                    for m in batch:
                        record = make_record(
                            m.topic, m.partition, m.offset, m.timestamp, m.key, m.value, m.headers
                        )
                        with contextlib.suppress(EventError):
                            decode_record(record, core)
                    await redis.hset(config["key"], str(tp.partition), batch[-1].offset)
            if polled:
                await consumer.commit()
    finally:
        await consumer.stop()
        await redis.aclose()


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    from recstream_consumer.__main__ import event_loop_runner

    event_loop_runner("auto")(consume(config))


if __name__ == "__main__":
    main()
