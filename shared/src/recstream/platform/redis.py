"""One way to open Redis for every process: a plain primary, or one found through Sentinel.

``RECSTREAM_REDIS__URL`` takes redis-py's URLs (``redis://``, ``rediss://``,
``unix://``) and a Sentinel URL for a single primary with replicas and automatic
failover::

    redis+sentinel://[[user]:password@]host:port[,host:port...]/<service>[/<db>]
    rediss+sentinel://...          (TLS to the primary and to the sentinels)

The client asks the sentinels for the current primary of ``<service>`` and asks again
after a failover (redis-py's ``SentinelConnectionPool``); the password is the
primary's (sentinels without a password, as usual, or with the same one via
``?sentinel_password=...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, overload
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379

R = TypeVar("R", bound=Redis)


class RedisUrlError(ValueError):
    """A Redis URL this project cannot use."""


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None
    sentinel_password: str | None
    tls: bool


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0] in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelUrl:
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        raise RedisUrlError(f"not a Sentinel URL: {parts.scheme}://")
    hosts = parts.netloc.rpartition("@")[2]
    sentinels: list[tuple[str, int]] = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        try:
            sentinels.append((name or "localhost", int(port) if port else SENTINEL_PORT))
        except ValueError as exc:
            raise RedisUrlError(f"sentinel {host!r}: the port is not a number") from exc
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not sentinels or not path:
        raise RedisUrlError(
            "a Sentinel URL names its sentinels and the service: "
            "redis+sentinel://host:26379[,host:26379...]/<service>[/<db>]"
        )
    try:
        db = int(path[1]) if len(path) > 1 else 0
    except ValueError as exc:
        raise RedisUrlError(f"database {path[1]!r} is not a number") from exc
    query = parse_qs(parts.query)
    return SentinelUrl(
        sentinels=tuple(sentinels),
        service=path[0],
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        sentinel_password=query.get("sentinel_password", [None])[0],
        tls=parts.scheme == "rediss+sentinel",
    )


@overload
def redis_client(url: str, **options: Any) -> Redis: ...


@overload
def redis_client(url: str, redis_class: type[R], **options: Any) -> R: ...


def redis_client(url: str, redis_class: type[Redis] = Redis, **options: Any) -> Redis:
    """A client of ``redis_class`` for ``url`` with ``options`` (timeouts, retry, ...):
    ``from_url`` for redis-py's URLs, the Sentinel-managed primary for a Sentinel URL."""
    if not is_sentinel(url):
        return redis_class.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    options.pop("connection_class", None)  # the Sentinel pool brings its own
    sentinel_options: dict[str, Any] = {
        key: options[key] for key in ("socket_timeout", "socket_connect_timeout") if key in options
    }
    if parsed.sentinel_password:
        sentinel_options["password"] = parsed.sentinel_password
    if parsed.tls:
        sentinel_options["ssl"] = True
        options["ssl"] = True
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    client: Redis = sentinel.master_for(
        parsed.service,
        redis_class=redis_class,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        **options,
    )
    return client
