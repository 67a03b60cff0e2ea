"""``recstream replay``: a dataset file into the interactions topic, or straight into Redis.

``--to kafka`` publishes every event keyed by its user (the partition Kafka's
default partitioner gives the key), optionally paced by ``--rate`` and
``--time-compression``. ``--to redis`` lays the same records out as the topic
would hold them (same partitions; offsets continuing after the keyspace's
watermarks for ``--topic``) and applies them partition batch by partition batch
with :func:`recstream.apply.batch.apply_batch`, the consumer's own write path, so the
result equals what the consumer builds from that topic.

Record timestamps are the events' own times by default (``--record-time event``:
a replay is reproducible, and the consumer's future-event check and dedupe window
see event time); ``now`` stamps the replay's wall clock instead (use it for a
Kafka topic whose time-based retention would drop old timestamps).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import click
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from redis.exceptions import RedisError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from recstream.apply.batch import apply_batch
from recstream.contract.events import Event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.datasets import FORMATS, BadRow, DatasetFormat, detect_format, read_events
from recstream.offline.evaluation.records import RecordLog, event_time_ms, partition_batches
from recstream.platform.kafka import KafkaConnectError, client_options, start_client
from recstream.platform.redis import redis_client
from recstream.platform.runtime import tune_gc
from recstream.platform.settings import KafkaSecurity, KafkaSettings
from recstream.store.port import StoreUnavailableError
from recstream.store.redis import RedisStore
from recstream_cli.reachability import (
    check_kafka,
    check_redis,
    kafka_unreachable,
    redis_unreachable,
)
from recstream_consumer.erasures import ErasureSync
from recstream_consumer.rebuild import KafkaPartitionLog
from recstream_consumer.settings import ConsumerSettings
from recstream_consumer.topics import TopicSetupError, TopicSpec, ensure_topics, topic_specs

RecordTime = Literal["event", "now"]
SHOWN_BAD_ROWS = 20
PROGRESS_LINES = 1000  # lines read between two progress bar updates
IN_FLIGHT = 2000


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def source_format(path: Path, fmt: str) -> DatasetFormat:
    if fmt != "auto":
        return cast(DatasetFormat, fmt)
    with path.open(encoding="utf-8") as handle:
        return detect_format(handle.readline())


def iter_source(
    path: Path, fmt: DatasetFormat, bad_rows: list[BadRow], on_lines: Callable[[int], None]
) -> Iterator[Event]:
    """The file's events in order; unmappable rows are collected into ``bad_rows``.

    ``on_lines`` is told how many lines were read, every :data:`PROGRESS_LINES` lines.
    """
    with path.open(encoding="utf-8", newline="") as handle:

        def lines() -> Iterator[str]:
            read = 0
            for line in handle:
                read += 1
                if read == PROGRESS_LINES:
                    on_lines(read)
                    read = 0
                yield line
            on_lines(read)

        yield from read_events(lines(), fmt, bad_rows)


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def advancer(progress: Progress, task: TaskID) -> Callable[[int], None]:
    """A callback that advances ``task`` by its argument."""
    return lambda count: progress.advance(task, count)


def report_bad_rows(console: Console, path: Path, bad_rows: list[BadRow]) -> None:
    for bad in bad_rows[:SHOWN_BAD_ROWS]:
        console.print(
            f"{path}:{bad.line}: {bad.reason}",
            style="yellow", markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    if len(bad_rows) > SHOWN_BAD_ROWS:
        console.print(f"[yellow]... and {len(bad_rows) - SHOWN_BAD_ROWS} more bad rows[/]")


@dataclass(slots=True)
class Pacer:
    """Holds sends back to at most ``rate`` events/s and to event-time gaps / ``compression``."""

    rate: float | None
    compression: float | None
    started: float = 0.0
    first_event: float | None = None
    sent: int = 0

    async def wait(self, event: Event) -> None:
        if self.sent == 0:
            self.started = time.monotonic()
        at = event.occurred_at.timestamp()
        if self.first_event is None:
            self.first_event = at
        due = self.started
        if self.rate is not None:
            due = max(due, self.started + self.sent / self.rate)
        if self.compression is not None:
            due = max(due, self.started + (at - self.first_event) / self.compression)
        self.sent += 1
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(slots=True)
class Totals:
    records: int = 0
    applied: int = 0
    skipped: int = 0
    duplicates: int = 0
    dead_letters: int = 0


async def to_kafka(
    events: Iterator[Event],
    bootstrap: str,
    topic: str,
    partitions: int,
    pacer: Pacer,
    record_time: RecordTime,
    configs: Mapping[str, str] | None = None,
    security: KafkaSecurity | None = None,
) -> Totals:
    """Publish ``events`` keyed by user; the topic is created with ``partitions`` (and the
    interactions topic's ``configs``) if missing."""
    security = security or KafkaSecurity()
    spec = TopicSpec(topic, partitions, 1, dict(configs or {}))
    await ensure_topics(bootstrap, [spec], security=security)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, **client_options(security)
    )
    await start_client(producer, bootstrap, security)
    totals = Totals()
    try:
        log = RecordLog(topic, len(await producer.partitions_for(topic)))
        pending: list[asyncio.Future[object]] = []
        for event in events:
            await pacer.wait(event)
            record = log.append(event)
            stamp = event_time_ms(event) if record_time == "event" else None
            pending.append(
                await producer.send(
                    topic,
                    value=record.value,
                    key=record.key,
                    partition=record.partition,
                    timestamp_ms=stamp,
                )
            )
            totals.records += 1
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return totals


async def to_redis(
    events: Iterator[Event],
    store: RedisStore,
    topic: str,
    partitions: int,
    config: CoreConfig,
    batch_records: int,
    record_time: RecordTime,
) -> Totals:
    """Apply ``events`` through the batch-apply core, as if read from ``topic``."""
    marks = await store.partition_watermarks(topic)
    log = RecordLog(topic, partitions, {p: offset + 1 for p, offset in marks.items()})
    now_ms: int | None = round(time.time() * 1000) if record_time == "now" else None
    records = (log.append(event, now_ms) for event in events)
    totals = Totals()
    for batch in partition_batches(records, batch_records):
        report = await apply_batch(store, batch, config)
        totals.records += report.records
        totals.applied += report.applied
        totals.skipped += report.skipped
        totals.duplicates += report.duplicates
        totals.dead_letters += len(report.dead_letters)
    return totals


async def restore_erasure_log(
    store: RedisStore, config: CoreConfig, bootstrap: str, kafka: KafkaSettings
) -> int:
    """Bring the store's erasures up to the erasure log before anything is applied."""
    reader = KafkaPartitionLog(bootstrap, f"{kafka.client_id}-replay-erasures", kafka.security)
    await reader.start()
    try:
        return await ErasureSync(reader, kafka.erasures_topic, store, config).ensure()
    finally:
        await reader.stop()


@contextlib.contextmanager
def service_errors(bootstrap: str, url: str) -> Iterator[None]:
    """Kafka or Redis failing during the replay ends it with one line, not a traceback."""
    try:
        yield
    except KafkaConnectionError as exc:  # the port is open: something else listens there?
        raise kafka_unreachable(bootstrap, "a connection opens, but no broker answers") from exc
    except KafkaTimeoutError as exc:
        raise kafka_unreachable(bootstrap, "the broker stopped answering") from exc
    except KafkaConnectError as exc:
        if isinstance(exc.__cause__, KafkaConnectionError):
            raise kafka_unreachable(bootstrap, "a connection opens, but no broker answers") from exc
        raise click.ClickException(str(exc)) from exc  # a refused certificate or login
    except (KafkaError, TopicSetupError) as exc:
        raise click.ClickException(f"Kafka at {bootstrap} refused the replay: {exc}") from exc
    except (StoreUnavailableError, RedisError) as exc:
        raise redis_unreachable(url, str(exc) or type(exc).__name__) from exc


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["auto", *FORMATS]), default="auto", show_default=True
)
@click.option("--to", "target", type=click.Choice(["kafka", "redis"]), required=True)
@click.option("--topic", help="Topic (default: the interactions topic of the settings).")
@click.option(
    "--partitions",
    type=click.IntRange(1, 10_000),
    help="Partitions: of a topic created here (--to kafka), or of the laid-out log "
    "(--to redis). [default: the settings' kafka.partitions]",
)
@click.option("--rate", type=click.FloatRange(0, min_open=True), help="At most this many events/s.")
@click.option(
    "--time-compression",
    type=click.FloatRange(0, min_open=True),
    help="Keep the events' time gaps divided by this factor (60: an hour in a minute).",
)
@click.option(
    "--record-time", type=click.Choice(["event", "now"]), default="event", show_default=True
)
@click.option("--batch-records", type=click.IntRange(1, 100_000), default=2000, show_default=True)
@click.option("--key-prefix", help="Redis key prefix (default: the settings').")
@click.option("--keyspace-version", type=click.IntRange(1), help="Keyspace version to write.")
@click.option("--bootstrap-servers", help="Kafka address (default: the settings').")
@click.option("--redis-url", help="Redis URL (default: the settings').")
@click.option(
    "--erasure-log/--no-erasure-log",
    default=True,
    show_default=True,
    help="--to redis: first restore who was erased from the erasure log on Kafka, so no "
    "erased user comes back; --no-erasure-log trusts the erasures Redis already holds.",
)
def replay(
    source: Path,
    fmt: str,
    target: str,
    topic: str | None,
    partitions: int | None,
    rate: float | None,
    time_compression: float | None,
    record_time: RecordTime,
    batch_records: int,
    key_prefix: str | None,
    keyspace_version: int | None,
    bootstrap_servers: str | None,
    redis_url: str | None,
    erasure_log: bool,
) -> None:
    """Replay a dataset file (SOURCE) to the interactions topic or directly into Redis.

    Formats: event-contract JSON Lines, session TSV (SessionId, ItemId, Time),
    Diginetica CSV, RetailRocket CSV/TSV, OTTO JSON Lines; bad rows are reported
    with their line numbers and skipped. Settings come from RECSTREAM_* variables.
    """
    if target == "redis" and (rate is not None or time_compression is not None):
        raise click.UsageError("--rate and --time-compression pace --to kafka only")
    settings = ConsumerSettings()
    topic = topic or settings.kafka.interactions_topic
    partitions = partitions or settings.kafka.partitions
    bootstrap = bootstrap_servers or settings.kafka.bootstrap_servers
    url = redis_url or settings.redis.url
    if target == "kafka":
        check_kafka(bootstrap)
    else:
        check_redis(url)
        if erasure_log:
            check_kafka(
                bootstrap,
                advice="the erasure log is read from Kafka before a replay into Redis: start "
                "a broker there, point --bootstrap-servers or RECSTREAM_KAFKA__BOOTSTRAP_SERVERS "
                "at one, or give --no-erasure-log to trust the erasures Redis holds",
            )
    console = Console(stderr=True)
    chosen = source_format(source, fmt)
    bad_rows: list[BadRow] = []
    tune_gc()
    started = time.monotonic()
    with service_errors(bootstrap, url), progress_bar(console) as progress:
        task = progress.add_task(f"{source.name} -> {target}", total=count_lines(source))
        events = iter_source(source, chosen, bad_rows, advancer(progress, task))
        if target == "kafka":
            pacer = Pacer(rate, time_compression)
            configs = topic_specs(settings.kafka)[0].configs  # the interactions topic's
            totals = asyncio.run(
                to_kafka(
                    events,
                    bootstrap,
                    topic,
                    partitions,
                    pacer,
                    record_time,
                    configs,
                    settings.kafka.security,
                )
            )
        else:
            redis = settings.redis
            keyspace = Keyspace(
                key_prefix or redis.key_prefix,
                keyspace_version or redis.keyspace_version,
                redis.user_ttl_seconds,
                redis.stat_shards,
            )
            erasures = (bootstrap, settings.kafka) if erasure_log else None
            totals = asyncio.run(
                _redis_replay(
                    events, url, keyspace, topic, partitions,
                    settings.core, batch_records, record_time, erasures,
                )
            )  # fmt: skip
    elapsed = max(time.monotonic() - started, 1e-9)
    report_bad_rows(console, source, bad_rows)
    where = f"topic {topic}" if target == "kafka" else f"Redis ({topic}, {partitions} partitions)"
    console.print(
        f"replayed {totals.records:,} events ({chosen}) to {where} in {elapsed:.1f}s: "
        f"{totals.records / elapsed:,.0f} events/s; {len(bad_rows)} bad rows",
        highlight=False,
        soft_wrap=True,
    )
    if target == "redis":
        console.print(
            f"applied {totals.applied:,}, already applied {totals.skipped:,}, "
            f"duplicates {totals.duplicates:,}, dead letters {totals.dead_letters:,}",
            highlight=False,
            soft_wrap=True,
        )


async def _redis_replay(
    events: Iterator[Event],
    url: str,
    keyspace: Keyspace,
    topic: str,
    partitions: int,
    config: CoreConfig,
    batch_records: int,
    record_time: RecordTime,
    erasures: tuple[str, KafkaSettings] | None = None,
) -> Totals:
    client = redis_client(url)
    try:
        store = RedisStore(client, keyspace)
        if erasures is not None:
            restored = await restore_erasure_log(store, config, *erasures)
            Console(stderr=True).print(f"erasure log: {restored} erased users restored first")
        return await to_redis(events, store, topic, partitions, config, batch_records, record_time)
    finally:
        await client.aclose()
