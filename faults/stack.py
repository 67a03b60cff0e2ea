"""The processes a fault is injected into: redis-server (one, or a Redis Cluster of three
primaries), the Tansu broker, consumers, the API.

Each one is a real child process on loopback that the suite signals from
outside (SIGKILL, SIGTERM, SIGSTOP/SIGCONT) and restarts on the same port.
Redis may keep an append-only file (``persistent=True``) so that a stop and a
start keep the data; otherwise a restart comes back empty. The Tansu broker
keeps its log in memory: a restart comes back empty (see the broker scenario).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from recstream_cli.localstack import (
    CLUSTER_OPTIONS,
    cluster_state,
    free_cluster_port,
    redis_cli_binary,
    redis_server_binary,
    tansu_binary,
    terminate_with_parent,
    wait_for_port,
)
from recstream_cli.localstack import (
    free_port as free_port,
)


class Child:
    """One child process with its log file; signals and timing from outside."""

    def __init__(
        self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=terminate_with_parent,
            )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was not started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal(self, signum: int) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process dies as well
            self.process.kill()
            self.process.wait(10)

    async def wait_exit(self, within: float) -> float | None:
        """Seconds until the process exits (None when it is still running after ``within``)."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            if not self.alive():
                return time.monotonic() - started
            await asyncio.sleep(0.02)
        return None

    async def terminate(self, within: float = 15.0) -> float | None:
        """SIGTERM; seconds until it exited, or None (then it is killed)."""
        self.signal(signal.SIGTERM)
        took = await self.wait_exit(within)
        if took is None:
            self.kill()
        return took

    def rss_kib(self) -> int | None:
        """Resident set size from /proc (None when gone)."""
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


def _redis_argv(port: int, data: Path, persistent: bool, *extra: str) -> list[str]:
    persistence = (
        ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
    )
    return [
        redis_server_binary(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--dir", str(data),
        *persistence,
        *extra,
    ]  # fmt: skip


class RedisServer:
    """redis-server on a fixed loopback port; AOF on every write when ``persistent``."""

    cluster = False

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.workdir = workdir / "redis"
        self.port = free_port()
        self.persistent = persistent
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def node_urls(self) -> list[str]:
        """One URL per server process (one here; a cluster's primaries)."""
        return [self.url]

    def start(self, *, empty: bool = False) -> None:
        data = self.workdir / "data"
        if empty:
            shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True, exist_ok=True)
        argv = _redis_argv(self.port, data, self.persistent)
        self.child = Child("redis", argv, self.workdir / "redis.log")
        self.child.start()
        assert self.child.process is not None
        wait_for_port(self.port, 20.0, self.child.process)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): the append-only file is complete."""
        if self.child is not None and self.child.alive():
            self.child.signal(signal.SIGCONT)
            self.child.signal(signal.SIGTERM)
            assert self.child.process is not None
            self.child.process.wait(20)

    def kill(self) -> None:
        if self.child is not None:
            self.child.kill()

    def kill_node(self, index: int) -> None:
        """:meth:`kill` (the one node, ``index`` 0), as a cluster's primary is killed."""
        assert index == 0, "one redis-server has one node"
        self.kill()

    def start_node(self, index: int) -> None:
        """:meth:`start` from its files, as a cluster's primary is restarted."""
        assert index == 0, "one redis-server has one node"
        self.start()

    def pause(self) -> None:
        assert self.child is not None
        self.child.signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.child is not None
        self.child.signal(signal.SIGCONT)


class RedisClusterServer:
    """A Redis Cluster of ``primaries`` redis-server primaries on fixed loopback ports, one
    directory each, joined with ``redis-cli --cluster create`` on the first start (and
    again after a start from empty directories). The whole cluster is stopped, killed,
    paused and resumed like one :class:`RedisServer`; :meth:`kill_node` and
    :meth:`start_node` act on one primary."""

    cluster = True

    def __init__(self, workdir: Path, *, persistent: bool = False, primaries: int = 3) -> None:
        self.workdir = workdir / "redis"
        self.ports: list[int] = []
        while len(self.ports) < primaries:
            port = free_cluster_port()
            if port not in self.ports:
                self.ports.append(port)
        self.persistent = persistent
        self.children: list[Child | None] = [None] * primaries

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    @property
    def node_urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{port}/0" for port in self.ports]

    def _data(self, index: int) -> Path:
        return self.workdir / f"node{index}"

    def start(self, *, empty: bool = False) -> None:
        if empty:
            for index in range(len(self.ports)):
                shutil.rmtree(self._data(index), ignore_errors=True)
        fresh = not (self._data(0) / "nodes.conf").exists()
        for index in range(len(self.ports)):
            self.start_node(index, wait=False)
        if fresh:
            addresses = [f"127.0.0.1:{port}" for port in self.ports]
            created = subprocess.run(
                [redis_cli_binary(), "--cluster", "create", *addresses,
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]}")
        self.wait_ok(30.0)

    def start_node(self, index: int, *, wait: bool = True) -> None:
        """Start primary ``index`` on its port from its directory (its AOF when
        ``persistent``, and its ``nodes.conf``)."""
        data = self._data(index)
        data.mkdir(parents=True, exist_ok=True)
        argv = _redis_argv(self.ports[index], data, self.persistent, *CLUSTER_OPTIONS)
        child = Child(f"redis-{index}", argv, self.workdir / f"redis-{index}.log")
        child.start()
        assert child.process is not None
        wait_for_port(self.ports[index], 20.0, child.process)
        self.children[index] = child
        if wait:
            self.wait_ok(30.0)

    def wait_ok(self, within: float) -> None:
        """Until every primary says ``cluster_state:ok``."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(cluster_state(port) == "ok" for port in self.ports):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the Redis Cluster is not ok after {within}s")

    def kill_node(self, index: int) -> None:
        child = self.children[index]
        if child is not None:
            child.kill()

    def stop(self) -> None:
        for child in self.children:
            if child is not None and child.alive():
                child.signal(signal.SIGCONT)
                child.signal(signal.SIGTERM)
        for child in self.children:
            if child is not None and child.process is not None:
                child.process.wait(20)

    def kill(self) -> None:
        for index in range(len(self.ports)):
            self.kill_node(index)

    def pause(self) -> None:
        for child in self.children:
            assert child is not None
            child.signal(signal.SIGSTOP)

    def resume(self) -> None:
        for child in self.children:
            assert child is not None
            child.signal(signal.SIGCONT)


class Broker:
    """The Tansu broker (in-memory log) on a fixed loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir / "broker"
        self.port = free_port()
        self.child: Child | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        argv = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {"RUST_LOG": "warn", **os.environ}
        self.child = Child("tansu", argv, self.workdir / "tansu.log", env)
        self.child.start()
        assert self.child.process is not None
        wait_for_port(self.port, 20.0, self.child.process)

    def stop(self) -> None:
        if self.child is not None and self.child.alive():
            self.child.signal(signal.SIGCONT)
            self.child.signal(signal.SIGTERM)
            assert self.child.process is not None
            try:
                self.child.process.wait(10)
            except subprocess.TimeoutExpired:
                self.child.kill()

    def pause(self) -> None:
        assert self.child is not None
        self.child.signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.child is not None
        self.child.signal(signal.SIGCONT)


def consumer_argv() -> list[str]:
    return [sys.executable, "-m", "recstream_consumer"]


def api_argv(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "recstream_api.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
