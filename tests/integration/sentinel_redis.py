"""A Redis primary, a replica and a Sentinel watching them, on free loopback ports."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from recstream_cli.localstack import (
    LocalService,
    free_port,
    redis_server_binary,
    start_redis,
    wait_for_port,
)

SERVICE = "recstream"


@dataclass
class SentinelSet:
    primary: LocalService
    replica: LocalService
    sentinel: LocalService

    def url(self, db: int = 0) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}/{db}"

    def primary_port(self) -> int:
        client = redis.Redis(port=self.sentinel.port, socket_timeout=2)
        try:
            _, port = client.sentinel_get_master_addr_by_name(SERVICE)
        finally:
            client.close()
        return int(port)

    def stop(self) -> None:
        for service in (self.sentinel, self.replica, self.primary):
            service.stop()


def _spawn(command: list[str], port: int, log_path: Path) -> LocalService:
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    wait_for_port(port, 10.0, process)
    return LocalService(log_path.stem, f"127.0.0.1:{port}", port, process, log_path)


def start_sentinel_set(workdir: Path) -> SentinelSet:
    primary = start_redis(log_dir=workdir)
    replica_port = free_port()
    replica = _spawn(
        [
            redis_server_binary(),
            "--bind", "127.0.0.1", "--port", str(replica_port), "--save", "",
            "--appendonly", "no", "--dir", str(workdir),
            "--replicaof", "127.0.0.1", str(primary.port),
        ],
        replica_port,
        workdir / f"replica-{replica_port}.log",
    )  # fmt: skip
    sentinel_port = free_port()
    config = workdir / "sentinel.conf"  # Sentinel rewrites its configuration file
    config.write_text(
        f"port {sentinel_port}\n"
        "bind 127.0.0.1\n"
        f"dir {workdir}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 5000\n"
    )
    sentinel = _spawn(
        [redis_server_binary(), str(config), "--sentinel"],
        sentinel_port,
        workdir / f"sentinel-{sentinel_port}.log",
    )
    found = SentinelSet(primary, replica, sentinel)
    _wait_for_replica(found)
    return found


def _wait_for_replica(found: SentinelSet, within: float = 20.0) -> None:
    """Until the replica is in sync and the Sentinel knows it (a failover needs both)."""
    deadline = time.monotonic() + within
    client = redis.Redis(port=found.sentinel.port, socket_timeout=2)
    try:
        while time.monotonic() < deadline:
            replicas = client.sentinel_slaves(SERVICE)
            if any(r.get("master-link-status") == "ok" for r in replicas):
                return
            time.sleep(0.2)
    finally:
        client.close()
    raise TimeoutError("the Sentinel never saw the replica in sync")
