"""An open-loop HTTP load generator process: ``python -m bench.loadgen <config.json>``.

Request ``i`` is due at ``start + i / rate`` (constant arrival rate) whether or
not earlier ones have been answered, and its latency is measured from that
due time, so a stalled server is charged for every request that waited
behind it (no coordinated omission, as wrk2 does it). Requests are raw
HTTP/1.1 on keep-alive connections (a small asyncio protocol, no client
library in the way): an idle connection is reused, a new one is opened when
none is idle, up to ``max_connections``; beyond that a request waits for a
connection, and that wait is part of its latency. ``requests`` are the raw
request bytes, used round-robin. Writes, per request, its due offset,
latency, status (0 = connection error, -1 = timeout) and its send lag (due time to the
write, the generator's own delay, connection wait included) to ``out``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any, cast


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        self.waiter.set_result(int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    async def request(self, raw: bytes, within: float) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await asyncio.wait_for(self.waiter, within)


class Pool:
    def __init__(self, host: str, port: int, max_connections: int) -> None:
        self.host, self.port = host, port
        self.idle: list[Connection] = []
        self.opened = 0
        self.max = max_connections
        self.freed = asyncio.Condition()

    async def open(self) -> Connection:
        self.opened += 1
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Connection, self.host, self.port)
        return conn

    async def take(self) -> Connection:
        while True:
            while self.idle:
                conn = self.idle.pop()
                if not conn.closed:
                    return conn
                self.opened -= 1
            if self.opened < self.max:
                return await self.open()
            async with self.freed:
                await self.freed.wait()

    async def give(self, conn: Connection, healthy: bool) -> None:
        if healthy and not conn.closed:
            self.idle.append(conn)
        else:
            self.opened -= 1
            if conn.transport is not None:
                conn.transport.close()
        async with self.freed:
            self.freed.notify()


async def generate(config: dict[str, Any]) -> dict[str, Any]:
    requests = [base64.b64decode(r) for r in config["requests"]]
    rate, seconds, timeout = float(config["rate"]), float(config["seconds"]), config["timeout"]
    pool = Pool(config["host"], config["port"], config["max_connections"])
    pool.idle = [await pool.open() for _ in range(config["connections"])]
    total = int(rate * seconds)
    due_at = [0.0] * total
    latency = [0.0] * total
    status = [0] * total
    lag = [0.0] * total  # from the due time to the request's write: the generator's own delay

    async def one(i: int, due: float) -> None:
        conn = await pool.take()
        lag[i] = time.monotonic() - due
        healthy = True
        try:
            status[i] = await conn.request(requests[i % len(requests)], timeout)
        except TimeoutError:
            status[i], healthy = -1, False
        except (ConnectionError, OSError):
            status[i], healthy = 0, False
        latency[i] = time.monotonic() - due
        await pool.give(conn, healthy)

    cpu = time.process_time()
    start = time.monotonic() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0.0002:
            await asyncio.sleep(delay)
        due_at[i] = due - start
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return {
        "due": due_at,
        "latency_ms": [x * 1000 for x in latency],
        "status": status,
        "lag_ms": [x * 1000 for x in lag],
        "connections": pool.opened,
        "cpu_seconds": time.process_time() - cpu,
        "elapsed": time.monotonic() - start,
    }


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    try:
        import uvloop

        result = uvloop.run(generate(config))
    except ImportError:
        result = asyncio.run(generate(config))
    Path(config["out"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
