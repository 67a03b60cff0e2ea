"""Settings sections shared by the services.

Each service has its own ``BaseSettings`` (env prefix ``RECSTREAM_``, nested
with ``__``) that embeds these sections, e.g. ``RECSTREAM_REDIS__URL`` and
``RECSTREAM_KAFKA__BOOTSTRAP_SERVERS``. Nothing is read at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

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


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class KafkaSecurity(BaseModel):
    """How every Kafka client of the project connects: TLS and SASL.

    ``RECSTREAM_KAFKA__SECURITY__PROTOCOL=SASL_SSL``,
    ``RECSTREAM_KAFKA__SECURITY__SASL_MECHANISM=SCRAM-SHA-512``, and so on. The names
    follow the Kafka client settings they stand for (``security.protocol``,
    ``ssl.ca.location``, ``sasl.mechanism``, ...). A contradiction (a mechanism without
    SASL, a certificate without its key, OAUTHBEARER without a token source) is an error
    at start, not a connection that fails later.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: SecurityProtocol = "PLAINTEXT"
    # TLS (SSL and SASL_SSL): the CA that signed the brokers' certificates (the system's
    # trust store when unset), and a client certificate for brokers that require one
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: SecretStr | None = None
    check_hostname: bool = True
    # SASL (SASL_PLAINTEXT and SASL_SSL)
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # OAUTHBEARER: a token file, read again at every login (a sidecar or the platform
    # rotates it), or "package.module:factory", a callable returning aiokafka's
    # AbstractTokenProvider
    oauth_token_file: Path | None = None
    oauth_token_provider: str | None = Field(None, pattern=r"^[\w.]+:[\w.]+$")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        tls_files = [self.ca_file, self.cert_file, self.key_file, self.key_password]
        if not self.uses_tls and any(value is not None for value in tls_files):
            raise ValueError(f"TLS files are set but protocol is {self.protocol}, not SSL/SASL_SSL")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "cert_file and key_file go together (a client certificate and its key)"
            )
        sasl_set = self.sasl_mechanism or self.sasl_username or self.sasl_password
        if not self.uses_sasl:
            if sasl_set or self.oauth_token_file or self.oauth_token_provider:
                raise ValueError(
                    f"SASL settings are set but protocol is {self.protocol} "
                    "(SASL_PLAINTEXT or SASL_SSL)"
                )
            return self
        if self.sasl_mechanism is None:
            raise ValueError(f"protocol {self.protocol} needs sasl_mechanism")
        if self.sasl_mechanism == "OAUTHBEARER":
            if (self.oauth_token_file is None) == (self.oauth_token_provider is None):
                raise ValueError(
                    "OAUTHBEARER needs exactly one of oauth_token_file, oauth_token_provider"
                )
        elif not self.sasl_username or self.sasl_password is None:
            raise ValueError(f"{self.sasl_mechanism} needs sasl_username and sasl_password")
        return self


class KafkaSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = "127.0.0.1:9092"
    security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    interactions_topic: str = "interactions"
    dead_letter_topic: str = "interactions.dlq"
    catalog_topic: str = "catalog"
    # who was erased (compacted, key = user id): the record that a rebuild from the log
    # needs so erased users stay erased (recstream.contract.erasures)
    erasures_topic: str = "erasures"
    partitions: int = Field(12, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=10)
    # how long the interactions topic keeps events: at least the longest state TTL (a
    # user's state lives 180 days), so a rebuild from the log restores every live key;
    # -1 keeps them for ever (with tiered storage, where the broker has it)
    interactions_retention_days: float = Field(180.0, ge=-1)
    dead_letter_retention_days: float = Field(14.0, ge=-1)
    client_id: str = "recstream"
