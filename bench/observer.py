"""A process that watches partition watermarks in Redis: ``python -m bench.observer <config>``.

The consumer advances a partition's watermark in the same Lua step that
writes the users' state, so the moment a watermark reaches an offset is the
moment that record's effect is visible to readers. The observer polls the
watermark hash in a tight loop (one ``HGETALL`` round trip at a time) and
records, per partition, every new value with the ``time.monotonic()`` taken
when the answer arrived: an upper bound of the visibility time, late by at
most one poll period. It stops on SIGTERM and writes its log to ``out``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis


async def observe(config: dict[str, Any]) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    redis = Redis.from_url(config["redis_url"])
    key = config["key"]
    interval = float(config.get("interval", 0.0005))
    seen: dict[str, list[tuple[float, int]]] = {}
    last: dict[bytes, bytes] = {}
    polls = 0
    started = time.monotonic()
    try:
        while not stop.is_set():
            marks = cast(dict[bytes, bytes], await redis.hgetall(key))
            now = time.monotonic()
            polls += 1
            for partition, offset in marks.items():
                if last.get(partition) != offset:
                    last[partition] = offset
                    seen.setdefault(partition.decode(), []).append((now, int(offset)))
            await asyncio.sleep(interval)
    finally:
        await redis.aclose()
    elapsed = time.monotonic() - started
    return {"marks": seen, "polls": polls, "poll_period": elapsed / max(polls, 1)}


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    from recstream_consumer.__main__ import event_loop_runner

    result = event_loop_runner("auto")(observe(config))
    Path(config["out"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
