"""Settings sections shared by the services.

Each service has its own ``BaseSettings`` (env prefix ``RECSTREAM_``, nested
with ``__``) that embeds these sections, e.g. ``RECSTREAM_REDIS__URL`` and
``RECSTREAM_KAFKA__BOOTSTRAP_SERVERS``. Nothing is read at import time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from recstream.contract.keyspace import (
    DEFAULT_PREFIX,
    DEFAULT_SHARDS,
    DEFAULT_VERSION,
    USER_STATE_TTL_SECONDS,
    Keyspace,
)


class RedisSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field(DEFAULT_PREFIX, pattern=r"^[A-Za-z0-9_.-]+$")
    keyspace_version: int = Field(DEFAULT_VERSION, ge=1)
    user_ttl_seconds: int = Field(USER_STATE_TTL_SECONDS, ge=0)
    stat_shards: int = Field(DEFAULT_SHARDS, ge=1, le=1_024)
    socket_timeout_seconds: float = Field(2.0, gt=0)
    # start although Redis may evict keys (maxmemory-policy other than noeviction): an
    # eviction is silent state loss, so the services refuse unless this says otherwise
    allow_eviction: bool = False

    def keyspace(self) -> Keyspace:
        return Keyspace(
            self.key_prefix, self.keyspace_version, self.user_ttl_seconds, self.stat_shards
        )


class KafkaSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = "127.0.0.1:9092"
    interactions_topic: str = "interactions"
    dead_letter_topic: str = "interactions.dlq"
    catalog_topic: str = "catalog"
    partitions: int = Field(12, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=10)
    # how long the interactions topic keeps events: at least the longest state TTL (a
    # user's state lives 180 days), so a rebuild from the log restores every live key;
    # -1 keeps them for ever (with tiered storage, where the broker has it)
    interactions_retention_days: float = Field(180.0, ge=-1)
    dead_letter_retention_days: float = Field(14.0, ge=-1)
    client_id: str = "recstream"
