"""One way to open Redis for every process: a plain primary, one found through Sentinel,
or a Redis Cluster.

``RECSTREAM_REDIS__URL`` takes redis-py's URLs (``redis://``, ``rediss://``,
``unix://``), a Sentinel URL for a single primary with replicas and automatic
failover, and a cluster URL::

    redis+sentinel://[[user]:password@]host:port[,host:port...]/<service>[/<db>]
    rediss+sentinel://...          (TLS to the primary and to the sentinels)
    redis+cluster://[[user]:password@]host:port[,host:port...]
    rediss+cluster://...           (TLS to every node)

The Sentinel client asks the sentinels for the current primary of ``<service>`` and
asks again after a failover (redis-py's ``SentinelConnectionPool``); the password is
the primary's (sentinels without a password, as usual, or with the same one via
``?sentinel_password=...``).

The cluster client (redis-py's ``RedisCluster``) learns the slot map from any of the
nodes named (one is enough; more survive one being down at start) and follows
``MOVED``/``ASK`` redirections. A cluster has one database, 0. The store then commits
a batch slot by slot (``docs/keyspace.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from recstream.store.redis import RedisClient

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
REDIS_PORT = 6379

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


def is_cluster(url: str) -> bool:
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    """``host:port[,host:port...]`` after the credentials."""
    hosts: list[tuple[str, int]] = []
    for host in filter(None, netloc.rpartition("@")[2].split(",")):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        try:
            hosts.append((name or "localhost", int(port) if port else default_port))
        except ValueError as exc:
            raise RedisUrlError(f"{host!r}: the port is not a number") from exc
    return hosts


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


def parse_cluster_url(url: str) -> ClusterUrl:
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise RedisUrlError(f"not a cluster URL: {parts.scheme}://")
    nodes = _hosts(parts.netloc, REDIS_PORT)
    if not nodes:
        raise RedisUrlError(
            "a cluster URL names at least one node: redis+cluster://host:6379[,host:6379...]"
        )
    if parts.path.strip("/") not in ("", "0"):
        raise RedisUrlError(f"a Redis Cluster has one database, 0, not {parts.path.strip('/')}")
    return ClusterUrl(
        nodes=tuple(nodes),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=parts.scheme == "rediss+cluster",
    )


def parse_sentinel_url(url: str) -> SentinelUrl:
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        raise RedisUrlError(f"not a Sentinel URL: {parts.scheme}://")
    sentinels = _hosts(parts.netloc, SENTINEL_PORT)
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


def _unreachable(exc: Exception) -> RedisConnectionError | None:
    """A ConnectionError for what a cluster client raises when its nodes do not answer,
    else None:

    - ``RedisClusterException("Redis Cluster cannot be connected ...")``, raised from the
      timeout or refusal when no node answers its slot-map refresh;
    - ``RuntimeError`` (transport closed) or ``AttributeError`` (no writer) from a node
      connection that a concurrent slot-map refresh closed under the command (redis-py
      8.1, seen with every primary hung, while the connection sent its handshake).

    Treated as an outage, the call is retried or answered 503; recstream's writes are
    idempotent (watermarked), so a retry of one that did reach Redis changes nothing.
    """
    if isinstance(exc, RedisClusterException):
        if isinstance(exc.__cause__, RedisConnectionError | RedisTimeoutError | OSError):
            return RedisConnectionError(str(exc))
        return None
    return RedisConnectionError(f"cluster connection closed under the command: {exc!r}")


class ClusterClientPipeline(ClusterPipeline):
    """The pipeline of :class:`ClusterClient`."""

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except (RedisClusterException, RuntimeError, AttributeError) as exc:
            if (unreachable := _unreachable(exc)) is not None:
                raise unreachable from exc
            raise


class ClusterClient(RedisCluster):
    """redis-py's cluster client, but a cluster none of whose nodes answers raises
    ``ConnectionError``, as one Redis that does not answer does, so every caller's outage
    handling (retry, 503) applies to both."""

    # what pipeline() builds (a subclass may count); redis-py declares a field of the
    # pipeline abstract that its __init__ sets, so it is typed as what it is called as
    pipeline_class: Callable[[RedisCluster, Any], ClusterPipeline] = ClusterClientPipeline

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except (RedisClusterException, RuntimeError, AttributeError) as exc:
            if (unreachable := _unreachable(exc)) is not None:
                raise unreachable from exc
            raise

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused by redis-py
        return self.pipeline_class(self, transaction)


def redis_client(
    url: str,
    redis_class: type[Redis] = Redis,
    cluster_class: type[RedisCluster] = ClusterClient,
    **options: Any,
) -> RedisClient:
    """A client for ``url`` with ``options`` (timeouts, retry, ...): a ``cluster_class``
    for a cluster URL, else a ``redis_class`` (``from_url`` for redis-py's URLs, the
    Sentinel-managed primary for a Sentinel URL)."""
    if is_cluster(url):
        return cluster_client(url, cluster_class, **options)
    return primary_client(url, redis_class, **options)


def cluster_client(
    url: str, cluster_class: type[RedisCluster] = ClusterClient, **options: Any
) -> RedisCluster:
    parsed = parse_cluster_url(url)
    options.pop("connection_class", None)  # the cluster's node pools bring their own
    return cluster_class(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.tls,
        **options,
    )


@overload
def primary_client(url: str, **options: Any) -> Redis: ...


@overload
def primary_client(url: str, redis_class: type[R], **options: Any) -> R: ...


def primary_client(url: str, redis_class: type[Redis] = Redis, **options: Any) -> Redis:
    """A client of ``redis_class`` for one primary: ``from_url`` for redis-py's URLs, the
    Sentinel-managed primary for a Sentinel URL."""
    if is_cluster(url):
        raise RedisUrlError("this needs one Redis primary, not a cluster URL")
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
