"""Every Kafka client of the project over TLS (with client certificates) and SASL.

The TLS broker is Tansu behind stunnel (mutual TLS); the SASL broker is Tansu with
``--authentication`` (SCRAM). What the SASL broker cannot show (a successful login)
is said in docs/operations.md: its in-memory store only takes SCRAM users over an
already authenticated connection, and it offers no PLAIN.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from recstream.contract.events import Event, encode_event
from recstream.contract.keyspace import Keyspace
from recstream.offline.datasets import diginetica_events
from recstream.platform.kafka import KafkaConnectError
from recstream.platform.redis import redis_client as open_redis
from recstream.platform.settings import KafkaSecurity
from recstream.store.redis import RedisStore
from recstream_api.publisher import EventPublisher, OutgoingRecord
from recstream_cli.demo_generator import load_sessions, run_generator
from recstream_cli.localstack import LocalService
from recstream_cli.replay import Pacer, to_kafka
from recstream_cli.train import read_topic as read_whole_topic
from recstream_consumer.settings import ConsumerSettings, Runtime
from recstream_consumer.topics import TopicSpec, ensure_topics

from ..pki import Pki, make_pki
from .conftest import (
    RUNTIMES,
    consumer_command,
    consumer_settings,
    running_consumer,
    settings_env,
    wait_for_total_events,
)
from .secure_kafka import start_sasl_broker, start_tls_broker

pytestmark = pytest.mark.integration

PARTITIONS = 3


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_bootstrap(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    stunnel, broker = start_tls_broker(pki, tmp_path_factory.mktemp("tls-broker"))
    try:
        yield stunnel.address
    finally:
        stunnel.stop()
        broker.stop()


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    broker = start_sasl_broker(tmp_path_factory.mktemp("sasl-broker"))
    try:
        yield broker
    finally:
        broker.stop()


def mutual_tls(pki: Pki) -> KafkaSecurity:
    return KafkaSecurity(
        protocol="SSL", ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
    )


def with_security(settings: ConsumerSettings, security: KafkaSecurity) -> ConsumerSettings:
    kafka = settings.kafka.model_copy(update={"security": security})
    return settings.model_copy(update={"kafka": kafka})


def sample_events(datasets: Path, count: int) -> list[Event]:
    with (datasets / "diginetica-sample" / "events.csv").open(newline="") as handle:
        return list(itertools.islice(diginetica_events(handle), count))


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_replay_publishes_and_both_runtimes_consume_over_mutual_tls(
    runtime: Runtime,
    pki: Pki,
    tls_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
    datasets: Path,
) -> None:
    security = mutual_tls(pki)
    events = sample_events(datasets, 400)
    totals = await to_kafka(
        iter(events), tls_bootstrap, topic_name, PARTITIONS, Pacer(None, None), "event",
        security=security,
    )  # fmt: skip
    assert totals.records == len(events)
    settings = consumer_settings(
        redis_url=redis_url, kafka_bootstrap=tls_bootstrap, keyspace=keyspace,
        topic=topic_name, runtime=runtime, partitions=PARTITIONS, create_topics=True,
    )  # fmt: skip
    async with running_consumer(with_security(settings, security)) as (consumer, task):
        await wait_for_total_events(store, {e.user_id for e in events}, len(events))
    assert not task.exception()
    assert consumer.counters.applied == len(events)
    assert consumer.counters.dead_lettered == 0


async def test_the_consumer_process_reads_its_tls_settings_from_the_environment(
    pki: Pki,
    tls_bootstrap: str,
    redis_url: str,
    keyspace: Keyspace,
    store: RedisStore,
    topic_name: str,
    datasets: Path,
    tmp_path: Path,
) -> None:
    security = mutual_tls(pki)
    events = sample_events(datasets, 200)
    await to_kafka(
        iter(events), tls_bootstrap, topic_name, PARTITIONS, Pacer(None, None), "event",
        security=security,
    )  # fmt: skip
    settings = consumer_settings(
        redis_url=redis_url, kafka_bootstrap=tls_bootstrap, keyspace=keyspace,
        topic=topic_name, partitions=PARTITIONS,
    )  # fmt: skip
    env = settings_env(with_security(settings, security))
    assert env["RECSTREAM_KAFKA__SECURITY__CERT_FILE"] == str(pki.client_cert)
    log = tmp_path / "consumer.log"
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            *consumer_command(), env=env, stdout=sink, stderr=asyncio.subprocess.STDOUT
        )
    try:
        await wait_for_total_events(store, {e.user_id for e in events}, len(events))
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)
    assert process.returncode == 0, log.read_text()


async def test_api_publisher_training_reader_and_demo_generator_over_mutual_tls(
    pki: Pki, tls_bootstrap: str, topic_name: str, datasets: Path
) -> None:
    security = mutual_tls(pki)
    await ensure_topics(tls_bootstrap, [TopicSpec(topic_name, PARTITIONS, 1)], security=security)
    settings = consumer_settings(
        redis_url="redis://unused", kafka_bootstrap=tls_bootstrap,
        keyspace=Keyspace(prefix="unused"), topic=topic_name,
    )  # fmt: skip
    kafka = with_security(settings, security).kafka
    publisher = EventPublisher(kafka, linger_ms=0, timeout_seconds=10.0)
    events = sample_events(datasets, 30)
    try:
        delivered = await publisher.publish(
            [OutgoingRecord(e.user_id.encode(), encode_event(e)) for e in events]
        )
    finally:
        await publisher.stop()
    assert len(delivered) == len(events)

    sessions = load_sessions(datasets / "diginetica-sample" / "events.csv", "auto", 500)
    generated = await run_generator(
        tls_bootstrap, topic_name, sessions, rate=2000.0, limit=20, concurrency=5,
        loop=False, seed=1, run_id="tls", connect_timeout=10.0, security=security,
    )  # fmt: skip
    assert generated == 20

    read = await read_whole_topic(tls_bootstrap, topic_name, Console(quiet=True), security)
    assert len(read) == len(events) + generated
    assert {e.event_id for e in events} <= {e.event_id for e in read}


async def test_a_client_without_its_certificate_is_refused(
    pki: Pki, tls_bootstrap: str, topic_name: str
) -> None:
    no_certificate = KafkaSecurity(protocol="SSL", ca_file=pki.ca)
    with pytest.raises(KafkaConnectError, match="certificate required") as raised:
        await ensure_topics(tls_bootstrap, [TopicSpec(topic_name, 1, 1)], security=no_certificate)
    assert f"Kafka at {tls_bootstrap} (SSL, CA {pki.ca})" in str(raised.value)


async def test_a_broker_certificate_from_an_unknown_ca_is_refused(
    pki: Pki, tls_bootstrap: str, topic_name: str
) -> None:
    wrong_ca = KafkaSecurity(
        protocol="SSL", ca_file=pki.stranger_ca, cert_file=pki.client_cert, key_file=pki.client_key
    )
    with pytest.raises(KafkaConnectError, match="CERTIFICATE_VERIFY_FAILED") as raised:
        await ensure_topics(tls_bootstrap, [TopicSpec(topic_name, 1, 1)], security=wrong_ca)
    assert f"Kafka at {tls_bootstrap} (SSL, CA {pki.stranger_ca}" in str(raised.value)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_a_scram_login_the_broker_does_not_know_is_refused_with_a_clear_error(
    mechanism: str, sasl_broker: LocalService, topic_name: str
) -> None:
    security = KafkaSecurity(
        protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username=f"nobody-{uuid.uuid4().hex[:6]}",
        sasl_password="not-the-password",  # type: ignore[arg-type]
    )
    with pytest.raises(KafkaConnectError, match="refused the SCRAM login") as raised:
        await ensure_topics(sasl_broker.address, [TopicSpec(topic_name, 1, 1)], security=security)
    assert f"SASL_PLAINTEXT, {mechanism} as nobody-" in str(raised.value)
    assert "not-the-password" not in str(raised.value)


async def test_the_consumer_does_not_start_when_its_login_is_refused(
    sasl_broker: LocalService, redis_url: str, keyspace: Keyspace, topic_name: str
) -> None:
    settings = consumer_settings(
        redis_url=redis_url, kafka_bootstrap=sasl_broker.address, keyspace=keyspace,
        topic=topic_name,
    )  # fmt: skip
    security = KafkaSecurity(
        protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="nobody",
        sasl_password="wrong",  # type: ignore[arg-type]
    )
    with pytest.raises(KafkaConnectError, match="refused the SCRAM login"):
        async with running_consumer(with_security(settings, security)):
            pass
    redis = open_redis(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{keyspace.prefix}:*")]
        assert not [k for k in keys if not Keyspace.is_slot_marker(k.decode())]
    finally:
        await redis.aclose()
