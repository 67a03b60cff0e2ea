"""Real services for the tests, chosen in this order.

1. An address from the environment: ``RECSTREAM_TEST_REDIS_URL`` and
   ``RECSTREAM_TEST_KAFKA_BOOTSTRAP``.
2. A testcontainers container when a Docker daemon answers.
3. Otherwise a local ``redis-server`` and the Tansu broker on free loopback
   ports, started here and stopped at the end of the session.

``RECSTREAM_TEST_REDIS_MODE=cluster`` runs the same tests on a Redis Cluster instead:
three local ``redis-server --cluster-enabled yes`` primaries joined by
``redis-cli --cluster create`` (or the cluster ``RECSTREAM_TEST_REDIS_URL`` names, a
``redis+cluster://`` URL). ``make test`` runs the integration tests and the quick fault
scenarios both ways.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.cluster

from recstream.contract.keyspace import Keyspace
from recstream.platform.redis import is_cluster, parse_cluster_url
from recstream.platform.redis import redis_client as open_redis
from recstream.store.redis import RedisClient
from recstream_cli.localstack import start_redis, start_redis_cluster, start_tansu

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# The services default to prod; the tests run the development set-up (its published
# secret, the demo page), in this process and the ones it starts, unless a test asks for
# prod explicitly.
os.environ.setdefault("RECSTREAM_ENVIRONMENT", "dev")


def sync_redis(url: str) -> redis.Redis | redis.cluster.RedisCluster:
    """A blocking client of the test Redis (a cluster client for a cluster URL)."""
    if not is_cluster(url):
        return redis.Redis.from_url(url)
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in parse_cluster_url(url).nodes]
    return redis.cluster.RedisCluster(startup_nodes=nodes)


def cluster_mode() -> bool:
    """Whether this run's Redis is a cluster (``RECSTREAM_TEST_REDIS_MODE=cluster``)."""
    return os.environ.get("RECSTREAM_TEST_REDIS_MODE", "single") == "cluster"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A cluster run leaves out the tests marked ``single_redis`` (reported as deselected)."""
    if not cluster_mode():
        return
    single = [item for item in items if item.get_closest_marker("single_redis")]
    if single:
        config.hook.pytest_deselected(items=single)
        items[:] = [item for item in items if item not in single]


def pytest_configure(config: pytest.Config) -> None:
    """Worker processes (``make test`` runs pytest-xdist) each start services of their own;
    a Redis named in the environment would be shared by them, and the tests that empty
    their Redis to check a rebuild would empty it under the others' feet."""
    if getattr(config.option, "numprocesses", None) and os.environ.get("RECSTREAM_TEST_REDIS_URL"):
        raise pytest.UsageError(
            "RECSTREAM_TEST_REDIS_URL names one Redis for every pytest worker, and some "
            "tests empty their Redis (FLUSHALL): run in one process (make test "
            "PYTEST_WORKERS=0, or pytest without -n)"
        )


def _docker_answers() -> bool:
    if os.environ.get("RECSTREAM_TEST_NO_DOCKER"):
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The shared datasets beside the repository (``../shared/datasets``, where CI lays
    them out). A test that needs them fails, with what to do, when they are missing: a
    skipped test would pass a suite that did not run it."""
    if not DATASETS.is_dir():
        pytest.fail(
            f"{DATASETS} is missing: the tests that replay real data read the shared "
            "datasets from ../shared/datasets beside the repository (see README, the two "
            "commands)"
        )
    return DATASETS


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("RECSTREAM_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    if cluster_mode():
        cluster = start_redis_cluster(log_dir=tmp_path_factory.mktemp("redis-cluster"))
        try:
            yield cluster.address
        finally:
            cluster.stop()
        return
    if _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
        return
    service = start_redis(log_dir=tmp_path_factory.mktemp("redis"))
    try:
        yield service.address
    finally:
        service.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("RECSTREAM_TEST_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    service = start_tansu(log_dir=tmp_path_factory.mktemp("tansu"))
    try:
        yield service.address
    finally:
        service.stop()


@pytest.fixture
def keyspace() -> Keyspace:
    """A key prefix of this test's own, so tests never see each other's keys."""
    return Keyspace(prefix=f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def redis_client(redis_url: str, keyspace: Keyspace) -> AsyncIterator[RedisClient]:
    """A client of the test Redis (a cluster client in cluster mode); the test's keys are
    deleted afterwards."""
    client = open_redis(redis_url)
    try:
        yield client
    finally:
        await delete_keyspace(client, keyspace)
        await client.aclose()


async def delete_keyspace(client: RedisClient, keyspace: Keyspace) -> None:
    """Every key under the keyspace's prefix, in slices (a cluster's consumer wrote 16,384
    slot markers)."""
    keys = [key async for key in client.scan_iter(match=f"{keyspace.prefix}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.delete(*keys[start : start + 1000])


@pytest.fixture
def topic_name() -> str:
    """A topic name of this test's own."""
    return f"interactions-{uuid.uuid4().hex[:10]}"
