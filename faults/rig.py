"""One scenario's world: its own Redis, broker, topics, consumer group, consumers and API.

:func:`open_rig` starts a redis-server and a Tansu broker on free loopback
ports, creates the topics, and on exit stops every process it started (by
its own handle, never by name) and removes its working folder unless asked
to keep it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from faults.stack import (
    Broker,
    Child,
    RedisClusterServer,
    RedisServer,
    api_argv,
    consumer_argv,
    free_port,
)
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.platform.redis import redis_client
from recstream.store.redis import RedisClient, RedisStore
from recstream_consumer.topics import TopicSpec, ensure_topics

# The Tansu broker holds a group join for about half the session timeout: keep it short.
GROUP_TIMING: dict[str, Any] = {
    "session_timeout_ms": 3000,
    "heartbeat_interval_ms": 300,
    "poll_timeout_ms": 200,
    "fetch_max_wait_ms": 50,
    "retry_initial_delay_ms": 100,
    "retry_max_delay_ms": 2000,
    "retry_budget_seconds": 30.0,
    "max_batch_records": 500,
}
# Caps the oracle can reproduce exactly whatever the consumer's batches (see docs/reliability.md).
EXACT_CORE: dict[str, Any] = {
    "transitions_top_k": 10_000,
    "covisit_top_k": 10_000,
    "co_engagement_top_k": 10_000,
}


@dataclass
class RigOptions:
    partitions: int = 6
    runtime: str = "aiokafka"
    core: Mapping[str, Any] = field(default_factory=lambda: dict(EXACT_CORE))
    consumer: Mapping[str, Any] = field(default_factory=dict)
    persistent_redis: bool = False
    redis_cluster: bool = False  # three local cluster primaries instead of one redis-server


class Rig:
    def __init__(self, name: str, workdir: Path, options: RigOptions) -> None:
        self.name = name
        self.workdir = workdir
        self.options = options
        self.redis: RedisServer | RedisClusterServer = (
            RedisClusterServer(workdir, persistent=options.persistent_redis)
            if options.redis_cluster
            else RedisServer(workdir, persistent=options.persistent_redis)
        )
        self.broker = Broker(workdir)
        self.topic = "interactions"
        self.dlq_topic = f"{self.topic}.dlq"
        self.catalog_topic = f"{self.topic}.catalog"
        self.erasures_topic = f"{self.topic}.erasures"
        self.partitions = options.partitions
        self.keyspace = Keyspace(prefix=f"rs{name.replace('-', '')[:10]}")
        self.group = f"fault-{name}"
        self.core_overrides = dict(options.core)
        self.config = CoreConfig(**self.core_overrides)
        self.children: list[Child] = []
        self._client: RedisClient | None = None
        self._nodes: dict[int, Redis] = {}
        self._spawned = 0

    @property
    def erasure_log(self) -> dict[int, int]:
        """How far the consumers restore the erasure log: all of its one partition, which
        the suite never writes to (it erases nobody), so up to offset 0."""
        return {0: 0}

    @property
    def client(self) -> RedisClient:
        """A Redis client with short timeouts for probes (it reconnects after outages)."""
        if self._client is None:
            self._client = redis_client(
                self.redis.url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
        return self._client

    def node(self, index: int = 0) -> Redis:
        """A client of one server process (of a cluster's primary ``index``), for the
        commands that act on one node: ``CLIENT PAUSE``, ``CLIENT LIST``."""
        if index not in self._nodes:
            self._nodes[index] = Redis.from_url(
                self.redis.node_urls[index], socket_timeout=1.0, socket_connect_timeout=1.0
            )
        return self._nodes[index]

    def store(self) -> RedisStore:
        return RedisStore(self.client, self.keyspace)

    async def create_topics(self) -> None:
        specs = [
            TopicSpec(self.topic, self.partitions, 1),
            TopicSpec(self.dlq_topic, self.partitions, 1),
            TopicSpec(self.catalog_topic, 1, 1),
            TopicSpec(self.erasures_topic, 1, 1, {"cleanup.policy": "compact"}),
        ]
        await ensure_topics(self.broker.bootstrap, specs)

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
        env.update(
            {
                "RECSTREAM_REDIS__URL": self.redis.url,
                "RECSTREAM_REDIS__KEY_PREFIX": self.keyspace.prefix,
                "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS": self.broker.bootstrap,
                "RECSTREAM_KAFKA__INTERACTIONS_TOPIC": self.topic,
                "RECSTREAM_KAFKA__DEAD_LETTER_TOPIC": self.dlq_topic,
                "RECSTREAM_KAFKA__CATALOG_TOPIC": self.catalog_topic,
                "RECSTREAM_KAFKA__ERASURES_TOPIC": self.erasures_topic,
                "RECSTREAM_KAFKA__PARTITIONS": str(self.partitions),
            }
        )
        for name, value in self.core_overrides.items():
            env[f"RECSTREAM_CORE__{name.upper()}"] = _env_value(value)
        return env

    def consumer_env(self, instance: str, overrides: Mapping[str, Any]) -> dict[str, str]:
        env = self.base_env()
        settings = {
            **GROUP_TIMING,
            "runtime": self.options.runtime,
            "group_id": self.group,
            "instance_id": instance,
            "event_loop": "asyncio",
            **self.options.consumer,
            **overrides,
        }
        for name, value in settings.items():
            env[f"RECSTREAM_CONSUMER__{name.upper()}"] = _env_value(value)
        return env

    def spawn_consumer(self, instance: str | None = None, **overrides: Any) -> Child:
        self._spawned += 1
        instance = instance or f"c{self._spawned}"
        log = self.workdir / "logs" / f"consumer-{instance}-{self._spawned}.log"
        status = {"http_host": "127.0.0.1", "http_port": free_port(), **overrides}
        child = Child(
            f"consumer {instance}", consumer_argv(), log, self.consumer_env(instance, status)
        )
        child.start()
        self.children.append(child)
        return child

    def spawn_api(self, port: int, **env: str) -> Child:
        variables = {
            **self.base_env(),
            "RECSTREAM_ENVIRONMENT": "dev",
            **env,
        }
        child = Child("api", api_argv(port), self.workdir / "logs" / "api.log", variables)
        child.start()
        self.children.append(child)
        return child

    async def close(self) -> None:
        for child in self.children:
            child.kill()
        for client in [self._client, *self._nodes.values()]:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self.broker.stop()
        self.redis.stop()


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@contextlib.asynccontextmanager
async def open_rig(
    name: str, root: Path, options: RigOptions | None = None, *, keep: bool = False
) -> AsyncIterator[Rig]:
    workdir = root / f"{name}-{int(time.time() * 1000) % 10_000_000}"
    workdir.mkdir(parents=True, exist_ok=True)
    rig = Rig(name, workdir, options or RigOptions())
    try:
        rig.redis.start()
        rig.broker.start()
        await rig.create_topics()
        yield rig
    finally:
        await rig.close()
        if not keep:
            shutil.rmtree(workdir / "redis", ignore_errors=True)
            shutil.rmtree(workdir / "broker", ignore_errors=True)
