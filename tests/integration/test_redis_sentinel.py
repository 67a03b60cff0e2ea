"""Redis through Sentinel: the consumer, the API and the store find the primary by
asking the Sentinel, and follow it through a failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError

from recstream.contract.keyspace import Keyspace
from recstream.platform.redis import redis_client
from recstream.store.redis import RedisStore
from recstream_api.settings import RedisSettings
from recstream_cli.localstack import free_port
from recstream_cli.reachability import redis_problem

from .conftest import (
    consumer_settings,
    create_topic,
    interaction_events,
    produce_events,
    running_consumer,
    wait_for_total_events,
)
from .sentinel_redis import SentinelSet, start_sentinel_set
from .test_api import PREFIX, api_settings, bearer, serve

# Sentinel serves one primary and its replicas: nothing here depends on the test Redis.
pytestmark = [pytest.mark.integration, pytest.mark.single_redis]


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    found = start_sentinel_set(tmp_path_factory.mktemp("sentinel"))
    try:
        yield found
    finally:
        found.stop()


async def test_the_consumer_and_the_api_find_the_primary_through_sentinel(
    sentinel_set: SentinelSet, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str
) -> None:
    url = sentinel_set.url()
    assert redis_problem(url) is None
    await create_topic(kafka_bootstrap, topic_name, 2)
    events = interaction_events(120, users=6)
    await produce_events(kafka_bootstrap, topic_name, events)
    settings = consumer_settings(
        redis_url=url, kafka_bootstrap=kafka_bootstrap, keyspace=keyspace, topic=topic_name,
        partitions=2,
    )  # fmt: skip
    client = redis_client(url, socket_timeout=2.0)
    store = RedisStore(client, keyspace)
    try:
        async with running_consumer(settings):
            await wait_for_total_events(store, {e["user_id"] for e in events}, len(events))
        api = api_settings(url, kafka_bootstrap, keyspace, topic_name)
        async with serve(api) as http:
            ready = await http.get(f"{PREFIX}/ready")
            profile = await http.get(f"{PREFIX}/user-profile/behavioral", headers=bearer(api, "u1"))
        assert ready.status_code == 200, ready.text
        assert profile.status_code == 200, profile.text
        assert profile.json()["features"]["total_events"] == sum(
            1 for e in events if e["user_id"] == "u1"
        )
    finally:
        await client.aclose()


async def test_a_client_follows_the_primary_through_a_failover(
    sentinel_set: SentinelSet, keyspace: Keyspace
) -> None:
    client = redis_client(sentinel_set.url(), socket_timeout=2.0, socket_connect_timeout=2.0)
    key = f"{keyspace.prefix}:failover"
    try:
        await client.set(key, "before")
        old = sentinel_set.primary_port()
        sentinel = redis_client(f"redis://127.0.0.1:{sentinel_set.sentinel.port}/0")
        await sentinel.execute_command("SENTINEL", "FAILOVER", "recstream")
        await sentinel.aclose()
        deadline = time.monotonic() + 30
        while sentinel_set.primary_port() == old:
            assert time.monotonic() < deadline, "the Sentinel did not fail over"
            await asyncio.sleep(0.2)
        # the old primary takes writes until the Sentinel demoted it (a write there in
        # that window is lost with it: docs/reliability.md); then the client, refused,
        # asks the Sentinel again
        demoted = redis_client(f"redis://127.0.0.1:{old}/0")
        while not await is_replica(demoted):
            assert time.monotonic() < deadline, "the old primary was never demoted"
            await asyncio.sleep(0.2)
        await demoted.aclose()
        while True:
            assert time.monotonic() < deadline, "the client never reached the new primary"
            try:
                await client.set(key, "after")
                break
            except (ReadOnlyError, RedisConnectionError):
                await asyncio.sleep(0.2)
        assert await client.get(key) == b"after"
        info = await client.info("server")
        assert int(info["tcp_port"]) == sentinel_set.primary_port() != old
    finally:
        await client.delete(key)
        await client.aclose()


async def is_replica(client: Redis) -> bool:
    try:
        return bool((await client.execute_command("ROLE"))[0] == b"slave")
    except RedisConnectionError:  # a server changing its role closes its clients
        return False


def test_a_sentinel_url_is_checked_before_a_command_uses_it() -> None:
    closed = free_port()
    problem = redis_problem(f"redis+sentinel://127.0.0.1:{closed}/recstream")
    assert problem is not None
    assert problem.startswith("no sentinel answers")
    assert redis_problem("redis+sentinel://127.0.0.1:1") is not None
    assert RedisSettings(url="redis+sentinel://a:26379,b:26379/svc/2").url.endswith("/svc/2")
