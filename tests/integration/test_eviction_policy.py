"""A Redis that may evict keys is refused at start (an eviction is silent state loss), unless
the operator allows it; then the services start and warn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace
from recstream.platform.settings import RedisSettings
from recstream.store.eviction import EvictionPolicyError, check_eviction
from recstream_consumer.service import open_consumer

from .conftest import consumer_settings
from .test_api import api_settings, closed_address, serve

pytestmark = pytest.mark.integration


@pytest.fixture
async def evicting(redis_client: Redis) -> AsyncIterator[Redis]:
    """The test Redis with maxmemory-policy allkeys-lru for the test's duration."""
    await redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        yield redis_client
    finally:
        await redis_client.config_set("maxmemory-policy", "noeviction")


async def test_noeviction_passes_and_an_unreachable_redis_is_not_a_refusal(
    redis_client: Redis,
) -> None:
    assert await check_eviction(redis_client, allow_eviction=False) == "noeviction"
    unreachable = Redis.from_url(f"redis://{closed_address()}/0", socket_connect_timeout=1)
    try:
        assert await check_eviction(unreachable, allow_eviction=False) is None
    finally:
        await unreachable.aclose()


async def test_an_evicting_redis_is_refused_unless_allowed(
    evicting: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(EvictionPolicyError, match="maxmemory-policy allkeys-lru"):
        await check_eviction(evicting, allow_eviction=False)
    with caplog.at_level(logging.WARNING, logger="recstream.store.eviction"):
        assert await check_eviction(evicting, allow_eviction=True) == "allkeys-lru"
    assert any("starting anyway" in r.getMessage() for r in caplog.records)


async def test_the_api_does_not_start_on_an_evicting_redis(
    evicting: Redis, redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str
) -> None:
    settings = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)
    with pytest.raises(EvictionPolicyError):
        async with serve(settings):
            pass
    allowed = settings.model_copy(
        update={"redis": RedisSettings(**{**settings.redis.model_dump(), "allow_eviction": True})}
    )
    async with serve(allowed) as api:
        assert (await api.get("/api/behavioral-ml/ready")).status_code == 200


async def test_the_consumer_does_not_start_on_an_evicting_redis(
    evicting: Redis, redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str
) -> None:
    settings = consumer_settings(
        redis_url=redis_url, kafka_bootstrap=kafka_bootstrap, keyspace=keyspace, topic=topic_name
    )
    with pytest.raises(EvictionPolicyError, match="RECSTREAM_REDIS__ALLOW_EVICTION"):
        async with open_consumer(settings):
            pass
