"""Settings of the stream consumer, read from the environment by the composition root.

Variables carry the prefix ``RECSTREAM_`` and nest with ``__``:
``RECSTREAM_REDIS__URL``, ``RECSTREAM_KAFKA__BOOTSTRAP_SERVERS``,
``RECSTREAM_CONSUMER__RUNTIME=faust``, ``RECSTREAM_CONSUMER__GROUP_ID=...``,
``RECSTREAM_LOG_FORMAT=json``. The live quality monitor ranks with the same
``RECSTREAM_SCORING__*`` settings as the API.
Nothing is read at import time: ``__main__`` builds a :class:`ConsumerSettings`.
"""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recstream.model.config import CoreConfig
from recstream.platform.logs import LogFormat
from recstream.platform.settings import KafkaSettings, RedisSettings
from recstream.scoring.config import ScoringConfig

Runtime = Literal["aiokafka", "faust"]


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ConsumerSection(BaseModel):
    """How the consumer reads the log and rides out outages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime: Runtime = Field(
        "aiokafka", description="'aiokafka' (plain runner, the faster) or 'faust' (faust agent)"
    )
    group_id: str = Field("recstream-consumer", min_length=1, max_length=255)
    instance_id: str = Field(default_factory=_default_instance_id, min_length=1)
    create_topics: bool = True
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"

    # batching and fetching
    max_batch_records: int = Field(
        2000, ge=1, le=100_000, description="records of one partition applied in one Redis step"
    )
    max_poll_records: int = Field(
        12_000,
        ge=1,
        le=1_000_000,
        description="records taken from the log per round, all partitions",
    )
    poll_timeout_ms: int = Field(500, ge=1, le=60_000, description="how long one poll waits")
    fetch_max_wait_ms: int = Field(100, ge=0, le=60_000)
    max_partition_fetch_bytes: int = Field(1024 * 1024, ge=1024)
    session_timeout_ms: int = Field(10_000, ge=500, le=300_000)
    heartbeat_interval_ms: int = Field(3_000, ge=50, le=100_000)
    max_poll_interval_ms: int = Field(300_000, ge=1_000)

    # faust runtime
    faust_stream_buffer_maxsize: int = Field(8192, ge=1)
    faust_batch_within_ms: int = Field(
        250, ge=1, le=60_000, description="how long the faust batcher gathers events"
    )
    faust_commit_interval_seconds: float = Field(1.0, gt=0)

    # Redis (or dead-letter topic) outages: jittered exponential backoff
    retry_initial_delay_ms: int = Field(100, ge=1)
    retry_max_delay_ms: int = Field(5_000, ge=1)
    retry_budget_seconds: float = Field(
        30.0, gt=0, description="per batch; then the batch is re-fetched and tried again"
    )

    slot_check_seconds: float = Field(
        10.0,
        gt=0,
        le=3_600,
        description="on a Redis Cluster, how often the hash slots' markers are checked: a "
        "primary that came back without its data is found within this, and every partition "
        "is rebuilt from the log",
    )
    # the erasure log is also read at the start and before every rebuild
    erasure_sync_seconds: float = Field(
        30.0,
        gt=0,
        le=3_600,
        description="how often the store is brought up to the erasure log: an erasure the "
        "API logged but did not apply to Redis (it died in between) is applied within this",
    )

    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto", description="'auto': uvloop when installed, else asyncio"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # the status port: /metrics, /healthz, /readyz
    http_host: str = Field(
        "127.0.0.1",
        description="address the status port listens on: loopback by default; 0.0.0.0 where "
        "Prometheus or probes reach it from outside (containers)",
    )
    http_port: int = Field(9100, ge=0, le=65_535, description="status port; 0 = none")
    ready_redis_seconds: float = Field(
        15.0, gt=0, description="/readyz fails when Redis has not answered for this long"
    )

    # live prequential quality (recstream_quality_* gauges)
    quality_sample_rate: float = Field(
        0.001, ge=0, le=1, description="share of events scored before they are applied; 0 = off"
    )
    quality_k: int = Field(20, ge=1, le=200, description="cut-off of hit rate and MRR")
    quality_window: int = Field(1000, ge=1, le=1_000_000, description="samples in the window")
    quality_budget: float = Field(
        0.02, ge=0, le=1, description="most of the consumer's time the scoring may take"
    )

    @model_validator(mode="after")
    def _consistent_timeouts(self) -> ConsumerSection:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("consumer.heartbeat_interval_ms must be below session_timeout_ms")
        if self.retry_max_delay_ms < self.retry_initial_delay_ms:
            raise ValueError("consumer.retry_max_delay_ms must be >= retry_initial_delay_ms")
        if self.retry_budget_seconds * 1000 >= self.max_poll_interval_ms:
            raise ValueError("consumer.retry_budget_seconds must stay below max_poll_interval_ms")
        return self


class ConsumerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RECSTREAM_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    redis: RedisSettings = Field(default_factory=RedisSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    core: CoreConfig = Field(default_factory=CoreConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    consumer: ConsumerSection = Field(default_factory=ConsumerSection)
    log_format: LogFormat = Field("logfmt", description="'logfmt' (key=value) or 'json' lines")
