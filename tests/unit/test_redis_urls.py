"""Sentinel and cluster URLs: what they name, and the clear error when they name too little."""

from __future__ import annotations

import socket

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from recstream.platform.redis import (
    RedisUrlError,
    is_cluster,
    is_sentinel,
    parse_cluster_url,
    parse_sentinel_url,
    primary_client,
    redis_client,
)


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_primary_login() -> None:
    parsed = parse_sentinel_url(
        "rediss+sentinel://app:s%40cret@s1:26380,s2,10.0.0.3:5000/shop/3?sentinel_password=x"
    )
    assert parsed.sentinels == (("s1", 26380), ("s2", 26379), ("10.0.0.3", 5000))
    assert (parsed.service, parsed.db) == ("shop", 3)
    assert (parsed.username, parsed.password, parsed.sentinel_password) == ("app", "s@cret", "x")
    assert parsed.tls is True
    plain = parse_sentinel_url("redis+sentinel://s1/shop")
    assert (plain.db, plain.password, plain.tls) == (0, None, False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://s1:26379", "names its sentinels and the service"),
        ("redis+sentinel:///shop", "names its sentinels and the service"),
        ("redis+sentinel://s1:port/shop", "the port is not a number"),
        ("redis+sentinel://s1/shop/zero", "is not a number"),
        ("redis://s1/0", "not a Sentinel URL"),
    ],
)
def test_a_sentinel_url_that_names_too_little_is_refused(url: str, message: str) -> None:
    with pytest.raises(RedisUrlError, match=message):
        parse_sentinel_url(url)


async def test_plain_urls_stay_redis_py_urls_and_sentinel_urls_get_a_sentinel_pool() -> None:
    assert not is_sentinel("redis://127.0.0.1:6379/0")
    assert is_sentinel("rediss+sentinel://s1/shop")
    plain = redis_client("redis://127.0.0.1:6379/4", socket_timeout=1.5)
    managed = redis_client("redis+sentinel://127.0.0.1:26379/shop/2", socket_timeout=1.5)
    try:
        assert plain.connection_pool.connection_kwargs["db"] == 4
        pool = managed.connection_pool
        assert type(pool).__name__ == "SentinelConnectionPool"
        assert pool.service_name == "shop"
        assert pool.connection_kwargs["db"] == 2
        assert pool.connection_kwargs["socket_timeout"] == 1.5
    finally:
        await plain.aclose()
        await managed.aclose()


def test_a_cluster_url_names_its_nodes_and_the_login() -> None:
    parsed = parse_cluster_url("rediss+cluster://app:s%40cret@n1:7000,n2,10.0.0.3:7002")
    assert parsed.nodes == (("n1", 7000), ("n2", 6379), ("10.0.0.3", 7002))
    assert (parsed.username, parsed.password, parsed.tls) == ("app", "s@cret", True)
    assert parse_cluster_url("redis+cluster://n1:7000/0").tls is False


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://", "names at least one node"),
        ("redis+cluster://n1:port", "the port is not a number"),
        ("redis+cluster://n1:7000/3", "one database, 0"),
        ("redis://n1/0", "not a cluster URL"),
    ],
)
def test_a_cluster_url_that_names_too_little_is_refused(url: str, message: str) -> None:
    with pytest.raises(RedisUrlError, match=message):
        parse_cluster_url(url)


async def test_a_cluster_url_gets_a_cluster_client_and_a_one_primary_use_refuses_it() -> None:
    assert is_cluster("redis+cluster://n1:7000")
    assert not is_cluster("redis://n1:7000/0")
    client = redis_client("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", socket_timeout=1.5)
    try:
        assert isinstance(client, RedisCluster)
        ports = sorted(node.port for node in client.nodes_manager.startup_nodes.values())
        assert ports == [7000, 7001]
    finally:
        await client.aclose()
    with pytest.raises(RedisUrlError, match="one Redis primary"):
        primary_client("redis+cluster://n1:7000")


async def test_a_cluster_none_of_whose_nodes_answers_is_a_connection_error() -> None:
    """Not redis-py's RedisClusterException: every caller's outage handling applies."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the test connects
    client = redis_client(f"redis+cluster://127.0.0.1:{port}", socket_connect_timeout=0.5)
    try:
        with pytest.raises(RedisConnectionError, match="cannot be connected"):
            await client.ping()
    finally:
        await client.aclose()
