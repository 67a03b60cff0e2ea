"""The query API as a process, probed from outside while faults happen."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from faults.rig import Rig
from faults.stack import Child
from recstream_api.auth import issue_token
from recstream_api.settings import ApiSettings, AuthSettings
from recstream_cli.localstack import free_port

PREFIX = "/api/behavioral-ml"
CLIENT_TIMEOUT_SECONDS = 30.0  # far above any answer the API should give: a hang shows


@dataclass(frozen=True, slots=True)
class Answer:
    at: float
    status: int  # 0: no answer (timeout or connection error)
    latency: float
    retry_after: str | None


@dataclass
class ApiProbe:
    base: str
    token: str
    user: str
    interval: float = 0.25
    answers: list[Answer] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _one(self, client: httpx.AsyncClient) -> None:
        started = time.monotonic()
        try:
            response = await client.get(
                f"{self.base}{PREFIX}/user-profile/behavioral",
                params={"user_id": self.user},
                headers={"Authorization": f"Bearer {self.token}"},
            )
            status, retry = response.status_code, response.headers.get("retry-after")
        except httpx.HTTPError:
            status, retry = 0, None
        self.answers.append(Answer(started, status, time.monotonic() - started, retry))

    async def _run(self) -> None:
        """One request every ``interval``, not waiting for the previous ones (at most 64 open)."""
        limits = httpx.Limits(max_connections=64)
        async with (
            httpx.AsyncClient(timeout=CLIENT_TIMEOUT_SECONDS, limits=limits) as client,
            asyncio.TaskGroup() as group,
        ):
            while True:
                group.create_task(self._one(client))
                await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="api-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.at <= end]


def summarize(answers: list[Answer]) -> dict[str, object]:
    if not answers:
        return {"requests": 0}
    latencies = sorted(a.latency for a in answers)
    statuses: dict[str, int] = {}
    for a in answers:
        statuses[str(a.status)] = statuses.get(str(a.status), 0) + 1
    return {
        "requests": len(answers),
        "statuses": statuses,
        "latency p50 (s)": round(statistics.median(latencies), 3),
        "latency p99 (s)": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3),
        "latency max (s)": round(latencies[-1], 3),
        "503 without Retry-After": sum(1 for a in answers if a.status == 503 and not a.retry_after),
    }


def admin_token() -> str:
    settings = ApiSettings(environment="dev", auth=AuthSettings())  # the API child's defaults
    return issue_token(settings, "fault-suite", admin=True, ttl=timedelta(hours=6))


@contextlib.asynccontextmanager
async def running_api(rig: Rig, user: str, **env: str) -> AsyncIterator[tuple[Child, ApiProbe]]:
    """The API process (dev settings, the rig's Redis and broker) and a started probe."""
    port = free_port()
    child = rig.spawn_api(port, **env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}{PREFIX}/health")).status_code == 200:
                    break
            if time.monotonic() > deadline or not child.alive():
                raise RuntimeError(f"the API did not start: {child.log_tail(1500)}")
            await asyncio.sleep(0.2)
    probe = ApiProbe(base, admin_token(), user)
    probe.start()
    try:
        yield child, probe
    finally:
        await probe.stop()
        await child.terminate()
