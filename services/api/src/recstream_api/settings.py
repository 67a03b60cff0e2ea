"""Settings of the query API, read from the environment by the composition root.

Variables carry the prefix ``RECSTREAM_`` and nest with ``__``:
``RECSTREAM_REDIS__URL``, ``RECSTREAM_KAFKA__BOOTSTRAP_SERVERS``,
``RECSTREAM_AUTH__JWT_SECRET``, ``RECSTREAM_AUTH__API_KEYS='[{"sha256": "...",
"scopes": ["track"]}]'``, ``RECSTREAM_SCORING__WEIGHTS__CONTENT=0.6``,
``RECSTREAM_RANKER__POLL_SECONDS=5``, ``RECSTREAM_LOG_FORMAT=json``,
``RECSTREAM_LOG_LEVEL=DEBUG``. Nothing is read at import
time: ``create_app()`` builds an :class:`ApiSettings` when it is given none.

Outside ``environment="dev"`` the settings refuse the documented development
JWT secret (and any HMAC secret shorter than 32 bytes), so a production
deployment cannot start with a secret everybody knows, and a JWKS URL that is
not ``https``.

The JWT secret is a ``SecretStr``: the settings' ``repr``, ``str`` and JSON dump
show ``**********`` in its place. API keys are never configured in clear, only
their SHA-256 (they are random high-entropy strings, so an unsalted hash is
enough to make a leaked configuration useless). A password written into
``RECSTREAM_REDIS__URL`` is part of that URL and shows wherever the settings are
printed: nothing logs the settings whole.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recstream.model.config import CoreConfig
from recstream.platform.logs import LogFormat
from recstream.platform.settings import KafkaSettings, RedisSettings
from recstream.scoring.config import ScoringConfig
from recstream.scoring.experiments import Experiment, check_experiments

# Development only: published in the README, refused when environment != "dev".
DEV_JWT_SECRET = "recstream-dev-secret-change-me-0123456789abcdef"
MIN_HMAC_SECRET_BYTES = 32

ApiKeyScope = Literal["track", "identify", "admin"]


class ApiKeyEntry(BaseModel):
    """One server-side API key, stored as the SHA-256 of the key (never the key itself)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key")
    scopes: frozenset[ApiKeyScope] = frozenset({"track"})
    name: str = Field("api-key", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


def hash_api_key(key: str) -> str:
    """The value to put in :attr:`ApiKeyEntry.sha256` for a key."""
    return hashlib.sha256(key.encode()).hexdigest()


class AnonymousSettings(BaseModel):
    """Tokens for shoppers who have not signed in (``POST /anonymous``): the API signs
    them itself (HS256, its own ``kid``), for an id ``anon-<random>`` that may read and
    track its own data, until ``POST /identify`` merges it into a known user."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    secret: SecretStr | None = Field(
        None,
        description="HMAC key of anonymous tokens (>= 32 bytes, the same on every replica); "
        "default: derived from auth.jwt_secret (HS256); RS256 deployments must set it",
    )
    ttl_hours: float = Field(24.0, gt=0, le=24 * 30, description="an anonymous token's lifetime")


class AuthSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_public_key: str | None = Field(
        None, description="PEM public key (RS256: give this or jwks_url)"
    )
    jwks_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="JWKS endpoint of the identity provider (RS256: give this or "
        "jwt_public_key); tokens must name their key with a 'kid' header",
    )
    jwks_cache_seconds: float = Field(300.0, gt=0, le=86_400, description="key set lifetime")
    jwks_timeout_seconds: float = Field(2.0, gt=0, le=30, description="one fetch at most")
    jwks_refresh_cooldown_seconds: float = Field(
        30.0, ge=0, le=3_600, description="unknown kid: at most one refresh per this interval"
    )
    issuer: str | None = None
    audience: str | None = None
    admin_role: str = Field("admin", min_length=1)
    role_claim: Literal["roles", "scope"] = Field(
        "roles", description="'roles': a list of role names; 'scope': a space-separated string"
    )
    leeway_seconds: int = Field(30, ge=0, le=300)
    api_keys: tuple[ApiKeyEntry, ...] = ()
    anonymous: AnonymousSettings = Field(default_factory=AnonymousSettings)

    @model_validator(mode="after")
    def _key_for_algorithm(self) -> AuthSettings:
        if self.jwt_algorithm == "RS256":
            if not self.jwt_public_key and not self.jwks_url:
                raise ValueError(
                    "auth.jwt_public_key (PEM) or auth.jwks_url is required when "
                    "jwt_algorithm is RS256"
                )
            if self.jwt_public_key and self.jwks_url:
                raise ValueError("give one of auth.jwt_public_key and auth.jwks_url, not both")
        elif self.jwks_url:
            raise ValueError("auth.jwks_url needs jwt_algorithm RS256 (a JWKS has public keys)")
        return self

    @model_validator(mode="after")
    def _distinct_api_keys(self) -> AuthSettings:
        names = [entry.name for entry in self.api_keys]
        hashes = [entry.sha256 for entry in self.api_keys]
        if len(set(names)) != len(names) or len(set(hashes)) != len(hashes):
            raise ValueError("auth.api_keys: every key needs a hash and a name of its own")
        return self

    def verification_key(self) -> str:
        """The configured key tokens are verified with: the HMAC secret or the RSA public key
        (not for a JWKS URL, whose keys are fetched)."""
        if self.jwt_algorithm == "RS256":
            if self.jwt_public_key is None:
                raise ValueError("the verification keys come from auth.jwks_url")
            return self.jwt_public_key
        return self.jwt_secret.get_secret_value()

    def anonymous_key(self) -> bytes | None:
        """The HMAC key of anonymous tokens; None when they are off (or RS256 without one)."""
        if not self.anonymous.enabled:
            return None
        if self.anonymous.secret is not None:
            return self.anonymous.secret.get_secret_value().encode()
        if self.jwt_algorithm != "HS256":
            return None
        # a key of its own, so an anonymous token never verifies as an identity provider's
        secret = self.jwt_secret.get_secret_value().encode()
        return hmac.new(secret, b"recstream-anonymous-tokens", hashlib.sha256).digest()

    @model_validator(mode="after")
    def _anonymous_secret_length(self) -> AuthSettings:
        secret = self.anonymous.secret
        if secret is not None and len(secret.get_secret_value().encode()) < MIN_HMAC_SECRET_BYTES:
            raise ValueError(
                f"auth.anonymous.secret must be at least {MIN_HMAC_SECRET_BYTES} bytes"
            )
        return self


class RateLimitSettings(BaseModel):
    """Token buckets per caller (user id or API key name), kept in each API process: a
    limit holds per replica, so N replicas let a caller through at up to N times the rate.

    ``track`` covers the tracking route; ``query`` every other authenticated route. An
    API key speaks for many users (a shop's backend), so its buckets are
    ``api_key_factor`` times larger and refill that much faster.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    track_per_second: float = Field(50.0, gt=0, le=1e6, description="track requests refilled/s")
    track_burst: int = Field(200, ge=1, le=10_000_000, description="track requests at once")
    query_per_second: float = Field(20.0, gt=0, le=1e6, description="query requests refilled/s")
    query_burst: int = Field(100, ge=1, le=10_000_000, description="query requests at once")
    api_key_factor: float = Field(50.0, ge=1, le=10_000)
    max_clients: int = Field(
        100_000, ge=1, le=10_000_000, description="buckets kept; the least recent is dropped"
    )


ORIGIN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$"


class CorsSettings(BaseModel):
    """Cross-origin access for browsers on other origins (the JS client on a shop's own
    pages): none by default. Each allowed origin is matched exactly (``scheme://host[:port]``);
    ``"*"`` (any origin) is refused outside ``environment="dev"``. Credentials are headers
    (a bearer token or an API key), never cookies, so no request carries cookies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_origins: tuple[str, ...] = Field(
        (), description='e.g. ["https://shop.example"] (RECSTREAM_CORS__ALLOWED_ORIGINS, JSON)'
    )
    max_age_seconds: int = Field(
        600, ge=0, le=86_400, description="how long a browser may cache a preflight answer"
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if origin != "*" and not re.match(ORIGIN, origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return origins


class RankerSettings(BaseModel):
    """The learned ranker (:mod:`recstream_api.rankers`): the model the registry in Redis
    names active, followed every ``poll_seconds``; the blend when none is active or it
    does not load. ``enabled=False``: the blend always (the registry is not read)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    poll_seconds: float = Field(
        5.0, gt=0, le=3_600, description="how often the active version is read"
    )


class ImpressionSettings(BaseModel):
    """The impression records of the recommendations returned (recstream_api/impressions.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(
        True, description="write a recommendation_shown record of every list returned"
    )
    queue_size: int = Field(
        10_000, ge=1, le=1_000_000, description="records waiting for the broker before drops"
    )


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RECSTREAM_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    # prod unless said otherwise: the published development secret, plain-http JWKS and
    # CORS for any origin are refused; `recstream run`, `recstream token` and the dev
    # compose file set dev explicitly
    environment: Literal["dev", "prod"] = "prod"
    redis: RedisSettings = Field(default_factory=RedisSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    core: CoreConfig = Field(default_factory=CoreConfig)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    ranker: RankerSettings = Field(default_factory=RankerSettings)
    cors: CorsSettings = Field(default_factory=CorsSettings)
    impressions: ImpressionSettings = Field(default_factory=ImpressionSettings)
    experiments: tuple[Experiment, ...] = Field(
        (),
        description="experiments over what ranks POST /recommendations (a JSON list; at "
        "most one running at a time): docs/experiments.md",
    )
    outcomes_refresh_seconds: float = Field(
        10.0, gt=0, le=3600, description="how often the outcome gauge reads Redis's counters"
    )
    bandit_counters_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="how long a process reuses a bandit's arm counters read from Redis",
    )

    identify_wait_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="how long POST /identify waits for the consumer to apply the anonymous "
        "id's latest event (its `after`) before answering 503",
    )
    allow_weight_override: bool = Field(
        False, description="let every caller override the blend weights (else admins only)"
    )
    extract_max_users: int = Field(
        100, ge=1, le=10_000, description="users per extract-batch request (list or SCAN page)"
    )
    extract_scan_calls: int = Field(
        10, ge=1, le=1_000, description="SCAN calls one extract-batch page may make at most"
    )

    shared_reads_cache_seconds: float = Field(
        2.0,
        ge=0,
        le=300,
        description="how long a process reuses the popularity heads (overall and per "
        "category) every recommendation reads alike: a new head reaches recommendations at "
        "most this late; 0 turns the cache off",
    )
    item_cache_seconds: float = Field(
        2.0,
        ge=0,
        le=300,
        description="how long a process reuses the candidates' catalog entries and event "
        "categories it read (decoded): a change to an item's entry (price, stock, a group "
        "deal's fill) reaches recommendations at most this late; 0 turns the cache off",
    )

    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_events_per_request: int = Field(100, ge=1, le=1000)
    produce_timeout_seconds: float = Field(10.0, gt=0)
    producer_linger_ms: int = Field(5, ge=0, le=1000)
    health_timeout_seconds: float = Field(2.0, gt=0)
    store_retry_after_seconds: int = Field(1, ge=1)

    log_format: LogFormat = Field("logfmt", description="'logfmt' (key=value) or 'json' lines")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("experiments")
    @classmethod
    def _one_at_a_time(cls, experiments: tuple[Experiment, ...]) -> tuple[Experiment, ...]:
        check_experiments(experiments)
        return experiments

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> ApiSettings:
        if self.environment == "dev":
            return self
        if "*" in self.cors.allowed_origins:
            raise ValueError(
                f'cors.allowed_origins "*" (any origin) is for development only '
                f"(environment={self.environment!r}): list the shop's origins"
            )
        if self.auth.jwks_url and not self.auth.jwks_url.startswith("https://"):
            raise ValueError(f"auth.jwks_url must be https (environment={self.environment!r})")
        if self.auth.jwt_algorithm != "HS256":
            return self
        secret = self.auth.jwt_secret.get_secret_value()
        if secret == DEV_JWT_SECRET:
            raise ValueError(
                "auth.jwt_secret is the development placeholder: set RECSTREAM_AUTH__JWT_SECRET "
                f"(environment={self.environment!r})"
            )
        if len(secret.encode()) < MIN_HMAC_SECRET_BYTES:
            raise ValueError(f"auth.jwt_secret must be at least {MIN_HMAC_SECRET_BYTES} bytes")
        return self
