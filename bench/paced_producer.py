"""A producer process at a constant rate: ``python -m bench.paced_producer <config.json>``.

Open loop: event ``i`` is due at ``start + i / rate`` whatever happened to the
ones before; each is sent when due (a late one as soon as possible) and its
due time, the time ``send()`` was called (``time.monotonic()``, the clock
every process on the host shares) and the partition and offset the broker
gave it are written to ``out`` as JSON. Events are live clicks of real
sessions (:func:`bench.workload.live_event`) by ``users`` users, stamped
with the send time.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.workload import live_event, load_sessions


async def produce(config: dict[str, Any]) -> dict[str, list[Any]]:
    sessions = load_sessions(Path(config["datasets"]))
    rng = random.Random(config.get("seed", 7))
    users = [f"{config['user_prefix']}{n}" for n in range(config["users"])]
    plan = {u: (sessions[rng.randrange(len(sessions))], 0) for u in users}
    producer = AIOKafkaProducer(
        bootstrap_servers=config["bootstrap"], linger_ms=config.get("linger_ms", 5), acks=1
    )
    await producer.start()
    rate, total = float(config["rate"]), int(config["rate"] * config["seconds"])
    due_at: list[float] = []
    sent_at: list[float] = []
    futures: list[asyncio.Future[Any]] = []
    start = max(time.monotonic(), config.get("start_at", 0.0))
    try:
        for i in range(total):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            user = users[rng.randrange(len(users))]
            session, position = plan[user]
            plan[user] = (session, position + 1)
            key, value = live_event(rng, user, session, position, time.time(), i)
            sent_at.append(time.monotonic())
            due_at.append(due)
            futures.append(await producer.send(config["topic"], value=value, key=key))
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return {
        "due": due_at,
        "sent": sent_at,
        "partition": [m.partition for m in metadata],
        "offset": [m.offset for m in metadata],
    }


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    from recstream_consumer.__main__ import event_loop_runner

    result = event_loop_runner("auto")(produce(config))
    Path(config["out"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
