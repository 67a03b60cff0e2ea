"""The processes a benchmark runs against: Redis, the Tansu broker, consumers, the API,
and the benchmark's own helper processes (paced producers, observers, load generators).

Every process is a real child on loopback, started with the benchmark
package importable (``PYTHONPATH`` = the repository root) and stopped with
SIGTERM (then SIGKILL) when the benchmark ends. CPU time and RSS are read
from ``/proc``, so figures can be given per CPU-second as well as per
wall-clock second on a machine other processes share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recstream_cli.localstack import (
    LocalCluster,
    LocalService,
    free_port,
    start_redis,
    start_redis_cluster,
    start_tansu,
    terminate_with_parent,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Consumer-group timing for the Tansu broker (it holds a join for about half the session).
TANSU_GROUP_ENV = {
    "RECSTREAM_CONSUMER__SESSION_TIMEOUT_MS": "3000",
    "RECSTREAM_CONSUMER__HEARTBEAT_INTERVAL_MS": "300",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0.0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a server's worker processes)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except OSError:
        return 0


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: no inherited RECSTREAM_* settings, this package importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    env.update(extra or {})
    return env


@dataclass
class Child:
    """One helper or service process with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}: {self.log_tail()}"
            )

    def log_tail(self, chars: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    async def wait(self, within: float) -> int:
        """The exit status, waiting at most ``within`` seconds."""
        deadline = time.monotonic() + within
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still runs after {within:.0f}s")
            await asyncio.sleep(0.05)
        return self.process.returncode


@dataclass
class Rig:
    """A fresh Redis (one server, or a local Redis Cluster of three primaries) and broker,
    the children started on them."""

    workdir: Path
    redis_url: str = ""
    bootstrap: str = ""
    services: list[LocalService] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    cluster: LocalCluster | None = None
    broker: LocalService | None = None

    def start(self, *, broker: bool = True, redis_cluster: bool = False) -> Rig:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if redis_cluster:
            self.cluster = start_redis_cluster(log_dir=self.workdir)
            self.redis_url = self.cluster.address
        else:
            redis = start_redis(log_dir=self.workdir)
            self.services.append(redis)
            self.redis_url = redis.address
        if broker:
            self.broker = start_tansu(log_dir=self.workdir)
            self.services.append(self.broker)
            self.bootstrap = self.broker.address
        return self

    @property
    def redis_pids(self) -> list[int]:
        """The Redis server processes (a cluster's primaries)."""
        if self.cluster is not None:
            return [node.process.pid for node in self.cluster.nodes]
        return [self.services[0].process.pid]

    @property
    def redis_pid(self) -> int:
        """The Redis server process (of one server; see :attr:`redis_pids`)."""
        assert self.cluster is None, "a cluster has one process per primary"
        return self.services[0].process.pid

    @property
    def broker_pid(self) -> int | None:
        return self.broker.process.pid if self.broker is not None else None

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Child:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env(env),
                cwd=REPO_ROOT,
                start_new_session=True,
                preexec_fn=terminate_with_parent,
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def spawn_module(self, name: str, module: str, config: dict[str, Any]) -> Child:
        """``python -m <module> <config.json>``: a helper process of this package."""
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(config))
        return self.spawn(name, [sys.executable, "-m", module, str(path)])

    def consumer(
        self,
        name: str,
        topic: str,
        prefix: str,
        group: str,
        *,
        runtime: str = "aiokafka",
        partitions: int = 12,
        extra: Mapping[str, str] | None = None,
    ) -> Child:
        env = {
            "RECSTREAM_REDIS__URL": self.redis_url,
            "RECSTREAM_REDIS__KEY_PREFIX": prefix,
            "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "RECSTREAM_KAFKA__INTERACTIONS_TOPIC": topic,
            "RECSTREAM_KAFKA__DEAD_LETTER_TOPIC": f"{topic}.dlq",
            "RECSTREAM_KAFKA__CATALOG_TOPIC": f"{topic}.catalog",
            "RECSTREAM_KAFKA__PARTITIONS": str(partitions),
            "RECSTREAM_CONSUMER__RUNTIME": runtime,
            "RECSTREAM_CONSUMER__GROUP_ID": group,
            "RECSTREAM_CONSUMER__LOG_LEVEL": "WARNING",
            **TANSU_GROUP_ENV,
            **(extra or {}),
        }
        return self.spawn(name, [sys.executable, "-m", "recstream_consumer"], env)

    def api(
        self,
        name: str,
        prefix: str,
        extra: Mapping[str, str] | None = None,
        *,
        server: str = "uvicorn",
        workers: int = 1,
    ) -> ApiProcess:
        """The benchmark app (:mod:`bench.app`) under ``server`` (uvicorn, as ``recstream
        api`` runs it, or granian) with ``workers`` processes."""
        port = free_port()
        env = {
            "RECSTREAM_REDIS__URL": self.redis_url,
            "RECSTREAM_REDIS__KEY_PREFIX": prefix,
            "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap or "127.0.0.1:9",
            "RECSTREAM_RATE_LIMITS__ENABLED": "false",
            "RECSTREAM_ENVIRONMENT": "dev",  # the development secret signs the bench's tokens
            **(extra or {}),
        }
        argv = [sys.executable, "-m", *server_argv(server, workers, port)]
        return ApiProcess(self.spawn(name, argv, env), port)

    def close(self) -> None:
        for child in reversed(self.children):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                child.stop()
        self.children.clear()
        for service in reversed(self.services):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                service.stop()
        self.services.clear()
        if self.cluster is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.cluster.stop()
            self.cluster = None


@dataclass
class ApiProcess:
    child: Child
    port: int

    def cpu(self) -> float:
        """CPU seconds of the server and its worker processes."""
        return sum(cpu_seconds(pid) for pid in descendants(self.child.pid))

    def rss(self) -> int:
        return sum(rss_bytes(pid) for pid in descendants(self.child.pid))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        url = f"{self.base}/bench/bare?key=ready"
        while time.monotonic() < deadline:
            self.child.check()
            with contextlib.suppress(urllib.error.URLError, OSError):
                await asyncio.to_thread(urllib.request.urlopen, url, timeout=1.0)
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"the API did not answer within {within:.0f}s")


API_SERVERS = ("uvicorn", "granian")


def server_argv(server: str, workers: int, port: int) -> list[str]:
    """``python -m <this>``: the benchmark app's factory under an ASGI server, one event
    loop per worker process (uvloop where installed, for both), no access log (the app
    writes its own line)."""
    app = "bench.app:create_bench_app"
    address = ["--host", "127.0.0.1", "--port", str(port)]
    if server == "uvicorn":
        return ["uvicorn", app, "--factory", *address, "--workers", str(workers),
                "--log-level", "warning", "--no-access-log"]  # fmt: skip
    if server == "granian":
        return ["granian", app, "--factory", "--interface", "asgi", *address,
                "--workers", str(workers), "--loop", "uvloop", "--no-ws",
                "--log-level", "warning", "--no-access-log"]  # fmt: skip
    raise ValueError(f"unknown ASGI server {server!r}: one of {', '.join(API_SERVERS)}")


def unique(stem: str) -> str:
    return f"{stem}{uuid.uuid4().hex[:8]}"


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


async def script_stats(redis_url: str) -> tuple[int, float, float]:
    """Lua script calls so far, their mean time in ms (``INFO commandstats``), and the longest
    command the latency monitor saw in ms (0 unless ``latency-monitor-threshold`` was set)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        stats = await redis.info("commandstats")
        latest = await redis.latency_latest()
    finally:
        await redis.aclose()
    calls, usec = 0, 0.0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        entry = stats.get(name)
        if entry:
            calls += int(entry["calls"])
            usec += float(entry["usec"])
    longest = max((int(row[3]) for row in latest if row[0] in (b"command", "command")), default=0)
    return calls, usec / calls / 1000 if calls else 0.0, float(longest)


async def monitor_latency(redis_url: str, threshold_ms: int = 1) -> None:
    """Make Redis record commands that run longer than ``threshold_ms`` (``LATENCY LATEST``),
    and start its command statistics afresh."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        await redis.config_set("latency-monitor-threshold", threshold_ms)
        await redis.latency_reset()
        await redis.config_resetstat()
    finally:
        await redis.aclose()


async def command_calls(redis_url: str, names: tuple[str, ...]) -> int:
    """How many times Redis ran these commands so far (``INFO commandstats``)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        stats = await redis.info("commandstats")
    finally:
        await redis.aclose()
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)
