"""Sentinel URLs: what they name, and the clear error when they name too little."""

from __future__ import annotations

import pytest

from recstream.platform.redis import RedisUrlError, is_sentinel, parse_sentinel_url, redis_client


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
