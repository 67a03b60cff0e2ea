"""Is Kafka or Redis there? A TCP check before a command talks to either, and one line when not.

A command that publishes to Kafka or writes to Redis checks first that something
answers at the address it will use (:func:`check_kafka`, :func:`check_redis`): a
TCP connect, standard library only, so the check costs milliseconds and no client
library logs its own retries. When nothing answers, :class:`ServiceUnreachableError`
(a :class:`click.ClickException`) ends the command with one line on stderr, naming
the service, the address and the option or setting that chooses it, and exit
status 1. A client error later on (the service went away, or something else
listens there) is turned into the same line with :func:`kafka_unreachable` /
:func:`redis_unreachable`.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

import click

from recstream.platform.logs import mask_secrets
from recstream.platform.redis import (
    RedisUrlError,
    is_cluster,
    is_sentinel,
    parse_cluster_url,
    parse_sentinel_url,
)

CONNECT_TIMEOUT_SECONDS = 3.0
KAFKA_PORT = 9092
REDIS_PORT = 6379
KAFKA_SETTING = "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS"
REDIS_SETTING = "RECSTREAM_REDIS__URL"


class ServiceUnreachableError(click.ClickException):
    """Kafka or Redis did not answer: ``Error: cannot reach ...`` on stderr, exit status 1."""


def kafka_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port`` pairs of a bootstrap list (``a:9092,b:9092``, ``[::1]:9092``, ``host``)."""
    addresses = []
    for entry in bootstrap.split(","):
        entry = entry.strip().rpartition("://")[2]
        if not entry:
            continue
        if entry.startswith("["):  # [v6]:port
            host, _, rest = entry[1:].partition("]")
            port = rest.lstrip(":")
        elif entry.count(":") == 1:
            host, _, port = entry.partition(":")
        else:  # a bare name, or a bare IPv6 address
            host, port = entry, ""
        addresses.append((host, int(port) if port.isdigit() else KAFKA_PORT))
    return addresses


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_SECONDS:g}s"
    return exc.strerror or str(exc) or type(exc).__name__


def _connect(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection to ``host:port`` opens, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return _reason(exc)


def _connect_unix(path: str, timeout: float) -> str | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            return _reason(exc)
    return None


def _hint(options: Sequence[str], setting: str | None) -> str:
    names = [*options, *([setting] if setting else [])]
    return " or ".join(names)


def kafka_unreachable(
    bootstrap: str,
    reason: str,
    *,
    options: Sequence[str] = ("--bootstrap-servers",),
    setting: str | None = KAFKA_SETTING,
    advice: str = "",
) -> ServiceUnreachableError:
    """The one line for a Kafka that does not answer at ``bootstrap``."""
    fix = advice or f"start a broker there, or point {_hint(options, setting)} at one"
    return ServiceUnreachableError(f"cannot reach Kafka at {bootstrap} ({reason}): {fix}")


def redis_unreachable(
    url: str,
    reason: str,
    *,
    options: Sequence[str] = ("--redis-url",),
    setting: str | None = REDIS_SETTING,
    advice: str = "",
) -> ServiceUnreachableError:
    """The one line for a Redis that does not answer at ``url`` (its password masked)."""
    fix = advice or f"start Redis there, or point {_hint(options, setting)} at one"
    return ServiceUnreachableError(f"cannot reach Redis at {mask_secrets(url)} ({reason}): {fix}")


def kafka_problem(bootstrap: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> str | None:
    """None when a bootstrap server accepts a connection, else why none did."""
    addresses = kafka_addresses(bootstrap)
    if not addresses:
        return "no address given"
    reasons = [_connect(host, port, timeout) for host, port in addresses]
    if any(reason is None for reason in reasons):
        return None
    return ", ".join(dict.fromkeys(r for r in reasons if r is not None))


def redis_problem(url: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> str | None:
    """None when the Redis of ``url`` accepts a connection, else why not."""
    if is_sentinel(url) or is_cluster(url):
        what = "sentinel" if is_sentinel(url) else "cluster node"
        try:
            hosts = (
                parse_sentinel_url(url).sentinels
                if is_sentinel(url)
                else parse_cluster_url(url).nodes
            )
        except RedisUrlError as exc:
            return str(exc)
        problems = [_connect(host, port, timeout) for host, port in hosts]
        if all(problems):  # one that answers is enough: it names the others
            return f"no {what} answers: {'; '.join(p for p in problems if p)}"
        return None
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return _connect_unix(unquote(parts.path), timeout)
        if parts.scheme not in ("redis", "rediss"):
            return (
                "not a redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// URL "
                f"(scheme {parts.scheme!r})"
            )
        port = parts.port or REDIS_PORT
    except ValueError as exc:  # a port that is no number
        return f"invalid URL: {exc}"
    return _connect(parts.hostname or "localhost", port, timeout)


def check_kafka(
    bootstrap: str,
    *,
    options: Sequence[str] = ("--bootstrap-servers",),
    setting: str | None = KAFKA_SETTING,
    advice: str = "",
) -> None:
    """:class:`ServiceUnreachableError` unless one of the bootstrap servers answers."""
    problem = kafka_problem(bootstrap)
    if problem is not None:
        raise kafka_unreachable(bootstrap, problem, options=options, setting=setting, advice=advice)


def check_redis(
    url: str,
    *,
    options: Sequence[str] = ("--redis-url",),
    setting: str | None = REDIS_SETTING,
    advice: str = "",
) -> None:
    """:class:`ServiceUnreachableError` unless the Redis of ``url`` answers."""
    problem = redis_problem(url)
    if problem is not None:
        raise redis_unreachable(url, problem, options=options, setting=setting, advice=advice)
