"""The faust-streaming runtime: faust agents on the topics, the same batch handler.

One agent per topic (``interactions``, ``catalog``) reads raw bytes (key and
value serializer ``raw``) from a stream with automatic acks turned off and
hands each event to one bounded queue. A batcher task takes up to
``max_poll_records`` events (or what arrived within
``faust_batch_within_ms``), groups them by topic partition in offset order,
runs the shared :class:`~recstream_consumer.handler.BatchHandler` per
partition batch (at most ``max_batch_records``) and only then acks them.
Faust commits acked offsets itself (every ``faust_commit_interval_seconds``,
on rebalance and at stop), so no offset is committed before its Redis step.

During a Redis outage the batcher retries the same batch; fetching stops by
back-pressure alone (the queue, then faust's stream buffer, fill up and faust
stops fetching the partitions). Faust's ``Consumer.pause_partitions`` is not
used for this: it silently drops records already fetched for the paused
partitions while the fetch position moves on.

At a rebalance the app waits, as faust does by default, until every event
delivered to the agent is acked: the batcher goes on applying them. At a stop
it does not (``stream_wait_empty`` is switched off just before ``App.stop``):
the batcher is cancelled first, so events still queued for it, or in a batch
abandoned at the stop, are never acked and faust's wait would never end; it
commits the acked offsets and goes, and the next owner reads the rest again.

Rebalances are counted from the app's ``on_partitions_assigned`` signal; lag
is the high-water mark faust's consumer knows minus the next offset to apply,
set after each applied batch.

``Stream.take_events`` is not used: its buffer acks the yielded events in a
``finally`` clause, which also runs when the agent is cancelled mid-batch,
so a stop could mark an unapplied batch as done. The queue also bounds
memory: when it is full the agent waits and faust's own flow control stops
fetching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
from faust.exceptions import AlreadyConfiguredWarning, ConsumerNotStarted
from faust.types.auth import CredentialsT

from recstream.apply.batch import RawRecord
from recstream.platform.kafka import client_options
from recstream.platform.settings import KafkaSecurity
from recstream_consumer.handler import (
    BatchNotAppliedError,
    RecordHandler,
    batch_fields,
    not_applied_level,
)
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.settings import ConsumerSection
from recstream_consumer.source import make_record

log = logging.getLogger(__name__)


class FaustSource:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        security: KafkaSecurity | None = None,
        topics: Sequence[str],
        partitions: int,
        settings: ConsumerSection,
        handler: RecordHandler,
        client_id: str = "recstream-consumer",
        datadir: Path | None = None,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._handler = handler
        self._stopping = asyncio.Event()
        self._queue: asyncio.Queue[tuple[Any, Any]] = asyncio.Queue(
            maxsize=settings.max_poll_records
        )
        self._full = asyncio.Event()  # the queue holds a whole batch
        self._inflight: asyncio.Task[None] | None = None
        self._tmpdir = None if datadir else tempfile.TemporaryDirectory(prefix="recstream-faust-")
        brokers = [f"kafka://{host.strip()}" for host in bootstrap_servers.split(",")]
        session = settings.session_timeout_ms / 1000
        self._app = faust.App(
            settings.group_id,
            broker=brokers,
            broker_client_id=client_id,
            broker_credentials=faust_credentials(security or KafkaSecurity()),
            datadir=str(datadir or self._tmpdir.name),  # type: ignore[union-attr]
            autodiscover=False,
            web_enabled=False,
            key_serializer="raw",
            value_serializer="raw",
            topic_partitions=partitions,
            topic_allow_declare=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset=settings.auto_offset_reset,
            broker_session_timeout=session,
            broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
            broker_request_timeout=max(session * 2, 30.0),
            broker_rebalance_timeout=max(session * 2, 10.0),
            broker_max_poll_interval=settings.max_poll_interval_ms / 1000,
            broker_max_poll_records=settings.max_poll_records,
            broker_commit_interval=settings.faust_commit_interval_seconds,
            consumer_max_fetch_size=settings.max_partition_fetch_bytes,
            stream_buffer_maxsize=settings.faust_stream_buffer_maxsize,
            stream_recovery_delay=0.0,
            stream_wait_empty=True,  # at a rebalance; switched off for the stop (see run)
        )
        self._topics = list(topics)
        for name in self._topics:
            channel = self._app.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            )
            self._app.agent(channel, name=f"{settings.group_id}.{name}")(self._agent)
        self._app.on_partitions_assigned.connect(self._on_assigned)
        self._app.on_partitions_revoked.connect(self._on_revoked)

    @property
    def name(self) -> str:
        return "faust"

    @property
    def app(self) -> faust.App:
        return self._app

    def stop(self) -> None:
        self._stopping.set()
        self._handler.request_stop()

    def assignment(self) -> set[tuple[str, int]]:
        try:
            return {(tp.topic, tp.partition) for tp in self._app.consumer.assignment()}
        except ConsumerNotStarted:
            return set()

    def _on_assigned(self, _app: Any, /, *args: Any, signal: Any = None, **__: Any) -> None:
        if args:
            self._handler.forget_partitions((tp.topic, tp.partition) for tp in args[0])
        if self._metrics is not None:
            self._metrics.rebalances.inc()

    def _on_revoked(self, _app: Any, /, *args: Any, signal: Any = None, **__: Any) -> None:
        if args:
            self._handler.forget_partitions((tp.topic, tp.partition) for tp in args[0])
        if self._metrics is not None and args:
            self._metrics.forget_partitions((tp.topic, tp.partition) for tp in args[0])

    def _set_lag(self, message: Any) -> None:
        if self._metrics is None:
            return
        try:
            highwater = self._app.consumer.highwater(message.tp)
        except (AssertionError, ConsumerNotStarted):  # not assigned (any more)
            return
        if highwater is not None:
            self._metrics.set_lag(message.topic, message.partition, highwater - message.offset - 1)

    async def _agent(self, stream: Any) -> None:
        manual = stream.noack()
        queue, full, limit = self._queue, self._full, self._settings.max_poll_records - 1
        async for event in manual.events():
            await queue.put((event, manual))
            if queue.qsize() >= limit:
                full.set()

    async def run(self) -> None:
        await self._app.start()
        log.info("faust source started: topics=%s group=%s", self._topics, self._settings.group_id)
        batcher = asyncio.create_task(self._batches(), name="recstream-faust-batcher")
        try:
            await self._stopping.wait()
        finally:
            batcher.cancel()  # stops the batching, never a batch being applied
            with contextlib.suppress(asyncio.CancelledError):
                await batcher
            if self._inflight is not None:
                await self._inflight  # finishes, or is abandoned whole once stop is requested
            # The queued events will never be acked now: waiting for them would never end.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AlreadyConfiguredWarning)
                self._app.conf.stream_wait_empty = False
            await self._app.stop()
            if self._tmpdir is not None:
                self._tmpdir.cleanup()
            log.info("faust source stopped: %s", self._handler.counters.summary())

    async def _batches(self) -> None:
        """Batch what arrives within ``faust_batch_within_ms`` (or until the queue is full)."""
        within = self._settings.faust_batch_within_ms / 1000
        limit = self._settings.max_poll_records
        while True:
            batch = [await self._queue.get()]
            if not self._full.is_set():
                # one timer per batch, not one wake-up per event
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), within)
            self._full.clear()
            while len(batch) < limit and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._inflight = asyncio.create_task(self._apply(batch))
            await asyncio.shield(self._inflight)
            self._inflight = None

    async def _apply(self, events: list[tuple[Any, Any]]) -> None:
        """Apply and ack a batch (shielded: a stop lets it finish or abandon it whole)."""
        by_partition: dict[tuple[str, int], list[tuple[Any, Any]]] = {}
        for event, stream in events:
            message = event.message
            by_partition.setdefault((message.topic, message.partition), []).append((event, stream))
        size = self._settings.max_batch_records
        for pairs in by_partition.values():
            pairs.sort(key=lambda pair: pair[0].message.offset)
            for start in range(0, len(pairs), size):
                if self._stopping.is_set():
                    return  # the rest is not acked: read again after the restart
                if not await self._apply_batch(pairs[start : start + size]):
                    return

    async def _apply_batch(self, pairs: list[tuple[Any, Any]]) -> bool:
        """Apply one partition batch, then ack it; False when abandoned because of a stop."""
        records = [_record(event.message) for event, _ in pairs]
        while True:
            try:
                await self._handler.handle(records)
                break
            except BatchNotAppliedError as exc:
                if self._stopping.is_set():
                    return False  # abandoned whole: not acked, read again after restart
                log.log(
                    not_applied_level(exc),
                    "batch not applied, trying again: %s",
                    exc,
                    extra=batch_fields(records),
                )
        for event, stream in pairs:
            await stream.ack(event)
        self._set_lag(pairs[-1][0].message)
        return True


def _record(message: Any) -> RawRecord:
    return make_record(
        message.topic,
        message.partition,
        message.offset,
        round(message.timestamp * 1000),  # faust keeps the record time in seconds
        message.key,
        message.value,
        _header_pairs(message.headers),
    )


def _header_pairs(headers: Any) -> list[tuple[str, bytes | None]]:
    if not headers:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return [(k, v) for k, v in headers]


def faust_credentials(security: KafkaSecurity) -> CredentialsT | None:
    """faust's credentials for ``security``: the same TLS context and SASL login as the
    aiokafka clients (faust turns them back into aiokafka's keyword arguments)."""
    options = client_options(security)
    context = options.get("ssl_context")
    mechanism = options.get("sasl_mechanism")
    if mechanism == "OAUTHBEARER":
        return faust.OAuthCredentials(
            oauth_cb=options["sasl_oauth_token_provider"], ssl_context=context
        )
    if mechanism is not None:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=context,
            mechanism=mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
