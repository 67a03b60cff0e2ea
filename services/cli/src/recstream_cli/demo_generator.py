"""``recstream demo-generate``: a dataset's sessions replayed as live traffic, rate-limited.

The sessions of a dataset file (any layout :func:`recstream.offline.datasets.read_events`
reads) are interleaved the way concurrent visitors interleave: ``concurrency``
sessions are open at once, each step emits the next event of one of them (seeded
choice), and a finished session is replaced by the next one of the file. Every
event is stamped with the wall clock at send time, so decay, sessions and
trending see live traffic, and carries a run tag in its event id and session id
(``<id>-<run>.<round>``), so a restarted generator or a second pass over the
file is new traffic, not a duplicate the consumer drops. Events go to the
interactions topic keyed by user, at most ``rate`` per second.

The module imports only the core library, aiokafka and click (all in the API
image), so docker-compose runs it as a plain script in that image:
``python demo_generator.py --dataset ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
import signal
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import click
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from recstream.contract.events import MAX_ID_LENGTH, Event, encode_event, validate_event
from recstream.offline.datasets import FORMATS, DatasetFormat, detect_format, read_events
from recstream.platform.kafka import (
    KafkaConnectError,
    KafkaSecurityError,
    client_options,
    security_from_environ,
    start_client,
)
from recstream.platform.settings import KafkaSecurity

IN_FLIGHT = 500
REPORT_EVERY_SECONDS = 10.0
CONNECT_RETRY_SECONDS = 2.0
RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")

Session = Sequence[Event]


def group_sessions(events: Iterable[Event], max_events: int) -> list[list[Event]]:
    """The first ``max_events`` events grouped by (user, session), in order of first appearance.

    Events without a session id form one session per user.
    """
    sessions: dict[tuple[str, str | None], list[Event]] = {}
    for count, event in enumerate(events):
        if count >= max_events:
            break
        sessions.setdefault((event.user_id, event.session_id), []).append(event)
    return list(sessions.values())


def interleave(
    sessions: Sequence[Session], concurrency: int, rng: random.Random, loop: bool
) -> Iterator[tuple[int, Event]]:
    """``(round, event)`` pairs: events of up to ``concurrency`` open sessions, interleaved.

    Each session's own events keep their order. ``round`` counts passes over the
    sessions; with ``loop`` the passes never end (when there is any event).
    """
    if not any(sessions):
        return
    queue = deque((0, index) for index in range(len(sessions)))
    open_: list[tuple[int, int, int]] = []  # (round, session index, next position)
    next_round = 1
    while True:
        while len(open_) < concurrency and (queue or loop):
            if not queue:
                queue.extend((next_round, index) for index in range(len(sessions)))
                next_round += 1
            round_, index = queue.popleft()
            if sessions[index]:
                open_.append((round_, index, 0))
        if not open_:
            return
        slot = rng.randrange(len(open_))
        round_, index, position = open_[slot]
        yield round_, sessions[index][position]
        if position + 1 < len(sessions[index]):
            open_[slot] = (round_, index, position + 1)
        else:
            open_[slot] = open_[-1]
            open_.pop()


def tagged(value: str, tag: str) -> str:
    """``<value>-<tag>``, with ``value`` replaced by its digest when the id would be too long."""
    if len(value) + len(tag) + 1 > MAX_ID_LENGTH:
        value = hashlib.blake2b(value.encode(), digest_size=16).hexdigest()
    return f"{value}-{tag}"


def live_event(event: Event, now: datetime, tag: str) -> Event:
    """The event as new traffic: occurred ``now``, event and session ids carrying ``tag``."""
    data = event.model_dump()
    data["occurred_at"] = now
    data["event_id"] = tagged(event.event_id, tag)
    if event.session_id is not None:
        data["session_id"] = tagged(event.session_id, tag)
    return validate_event(data)


def pace_delay(sent: int, rate: float, elapsed: float) -> float:
    """Seconds to wait before the next send so that ``sent`` sends take ``sent / rate`` s."""
    return max(0.0, sent / rate - elapsed)


@contextlib.contextmanager
def quiet_client_log() -> Iterator[None]:
    """aiokafka's own lines (one per failed connection attempt) held back while the block runs:
    :func:`start_producer` says itself that it waits, and the command why it gave up."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def start_producer(
    bootstrap: str, connect_timeout: float, security: KafkaSecurity | None = None
) -> AIOKafkaProducer:
    """A started producer; retries while the broker is not reachable, up to the timeout."""
    options = client_options(security or KafkaSecurity())
    deadline = time.monotonic() + connect_timeout
    waiting = False
    with quiet_client_log():
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap,
                client_id="recstream-demo-generator",
                acks="all",
                linger_ms=20,
                **options,
            )
            try:
                await start_client(producer, bootstrap, security or KafkaSecurity())
                return producer
            except KafkaConnectError as exc:
                # an unreachable broker is waited for; a refused login or certificate is not
                if not isinstance(exc.__cause__, KafkaConnectionError):
                    raise
                if time.monotonic() >= deadline:
                    raise exc.__cause__ from exc
                if not waiting:
                    waiting = True
                    click.echo(
                        f"demo-generator waiting for Kafka at {bootstrap} "
                        f"(up to {connect_timeout:g}s)",
                        err=True,
                    )
                await asyncio.sleep(CONNECT_RETRY_SECONDS)


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    stream: Iterator[tuple[int, Event]],
    *,
    rate: float,
    limit: int,
    run_id: str,
    stop: asyncio.Event,
) -> int:
    """Send the stream's events as live traffic, at most ``rate``/s; the number sent."""
    started = time.monotonic()
    reported = started
    in_flight: deque[asyncio.Future[object]] = deque()
    sent = 0
    for round_, source in stream:
        if stop.is_set() or (limit and sent >= limit):
            break
        delay = pace_delay(sent, rate, time.monotonic() - started)
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                break
            except TimeoutError:
                pass
        event = live_event(source, datetime.now(UTC), f"{run_id}.{round_}")
        key = event.user_id.encode()
        in_flight.append(await producer.send(topic, key=key, value=encode_event(event)))
        sent += 1
        if len(in_flight) >= IN_FLIGHT:
            await in_flight.popleft()
        now = time.monotonic()
        if now - reported >= REPORT_EVERY_SECONDS:
            reported = now
            click.echo(f"demo-generator sent={sent} rate={sent / (now - started):.1f}/s")
    await asyncio.gather(*in_flight)
    return sent


async def run_generator(
    bootstrap: str,
    topic: str,
    sessions: Sequence[Session],
    *,
    rate: float,
    limit: int,
    concurrency: int,
    loop: bool,
    seed: int,
    run_id: str,
    connect_timeout: float,
    security: KafkaSecurity | None = None,
) -> int:
    """Publish until the limit, the end of the file (without ``loop``) or SIGTERM/SIGINT."""
    stop = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        event_loop.add_signal_handler(signum, stop.set)
    try:
        producer = await start_producer(bootstrap, connect_timeout, security)
        try:
            stream = interleave(sessions, concurrency, random.Random(seed), loop)
            return await publish(
                producer, topic, stream, rate=rate, limit=limit, run_id=run_id, stop=stop
            )
        finally:
            await producer.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            event_loop.remove_signal_handler(signum)


def load_sessions(path: Path, fmt: str, max_events: int) -> list[list[Event]]:
    with path.open(encoding="utf-8", newline="") as handle:
        first = handle.readline()
        layout = detect_format(first) if fmt == "auto" else cast(DatasetFormat, fmt)
        handle.seek(0)
        return group_sessions(read_events(handle, layout, bad_rows=[]), max_events)


def check_run_id(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not RUN_ID.fullmatch(value):
        raise click.BadParameter("1-32 letters, digits, '_', '.' or '-'")
    return value


@click.command("demo-generate")
@click.option(
    "--dataset",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Dataset file whose sessions are replayed (e.g. diginetica-sample/events.csv).",
)
@click.option("--format", "fmt", type=click.Choice(["auto", *FORMATS]), default="auto")
@click.option(
    "--bootstrap-servers",
    envvar="RECSTREAM_KAFKA__BOOTSTRAP_SERVERS",
    default="127.0.0.1:9092",
    show_default=True,
    help="Kafka bootstrap servers [env: RECSTREAM_KAFKA__BOOTSTRAP_SERVERS].",
)
@click.option(
    "--topic",
    envvar="RECSTREAM_KAFKA__INTERACTIONS_TOPIC",
    default="interactions",
    show_default=True,
    help="Interactions topic [env: RECSTREAM_KAFKA__INTERACTIONS_TOPIC].",
)
@click.option(
    "--rate",
    type=click.FloatRange(0.1, 100_000),
    default=20.0,
    show_default=True,
    help="Events per second, at most.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="Sessions open at once.",
)
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Stop after this many events (0: no limit).",
)
@click.option(
    "--loop/--once",
    default=True,
    show_default=True,
    help="Start over with new session ids at the end of the file.",
)
@click.option(
    "--max-events",
    type=click.IntRange(1),
    default=200_000,
    show_default=True,
    help="Events read from the file (bounds memory).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--run-id",
    default=None,
    callback=check_run_id,
    help="Tag of this run's ids (letters, digits, _ . -) [default: random].",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(0),
    default=120.0,
    show_default=True,
    help="Seconds to keep retrying an unreachable broker.",
)
def demo_generate(
    dataset: Path,
    fmt: str,
    bootstrap_servers: str,
    topic: str,
    rate: float,
    concurrency: int,
    limit: int,
    loop: bool,
    max_events: int,
    seed: int,
    run_id: str | None,
    connect_timeout: float,
) -> None:
    """Publish a dataset's sessions to the interactions topic as live, rate-limited traffic."""
    sessions = load_sessions(dataset, fmt, max_events)
    if not sessions:
        raise click.ClickException(f"{dataset}: no events")
    tag = run_id if run_id is not None else uuid.uuid4().hex[:8]
    try:
        security = security_from_environ()
    except KafkaSecurityError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"demo-generator dataset={dataset} sessions={len(sessions)} "
        f"events={sum(map(len, sessions))} rate={rate}/s topic={topic} run={tag}"
    )
    try:
        sent = asyncio.run(
            run_generator(
                bootstrap_servers,
                topic,
                sessions,
                rate=rate,
                limit=limit,
                concurrency=concurrency,
                loop=loop,
                seed=seed,
                run_id=tag,
                connect_timeout=connect_timeout,
                security=security,
            )
        )
    except KafkaConnectionError as exc:
        raise click.ClickException(
            f"cannot reach Kafka at {bootstrap_servers} (no answer within --connect-timeout "
            f"{connect_timeout:g}s): start a broker there, or point --bootstrap-servers or "
            "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS at one"
        ) from exc
    except (KafkaError, KafkaConnectError) as exc:
        raise click.ClickException(f"Kafka at {bootstrap_servers} failed: {exc}") from exc
    click.echo(f"demo-generator stopped sent={sent}")


if __name__ == "__main__":
    demo_generate()
