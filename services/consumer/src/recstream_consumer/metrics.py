"""Prometheus metrics of one consumer process, served at ``GET /metrics`` (:mod:`.web`).

- ``recstream_consumer_events_total{outcome,topic}`` (counter): records by what
  became of them: ``applied``, ``skipped`` (at or below a watermark: a
  redelivery), ``duplicate`` (a producer resent an ``event_id``),
  ``dead_lettered``, ``erased`` (an erased user's event);
- ``recstream_consumer_dead_letters_total{reason}`` (counter);
- ``recstream_consumer_batch_seconds`` (histogram): the Redis step of one
  partition batch (decode, fold, the atomic commit; backoff and the quality
  sampler excluded);
- ``recstream_consumer_batch_records`` (histogram): records per partition batch;
- ``recstream_consumer_freshness_seconds`` (histogram): record timestamp to the
  commit of its state, per applied ``interactions`` record, on the consumer's clock;
- ``recstream_consumer_lag{topic,partition}`` (gauge): high-water mark minus the
  next offset to apply, per owned partition;
- ``recstream_consumer_rebalances_total``, ``recstream_consumer_retries_total``;
- ``recstream_consumer_state_lost_total{topic,partition}`` (counter): partitions
  found to have lost state in Redis (it came back empty, or went back in time),
  each one rebuilt from the log (:mod:`~recstream_consumer.rebuild`);
- ``recstream_consumer_rebuilding{topic,partition}`` (gauge): 1 while the
  partition is being rebuilt (``/readyz`` answers 503 meanwhile);
- ``recstream_consumer_rebuilt_records_total{topic}`` (counter): records
  re-applied from the log by rebuilds;
- ``recstream_quality_hit_rate{k}``, ``recstream_quality_mrr{k}`` (gauges): the
  prequential sampler's rolling window (:mod:`~recstream_consumer.prequential`);
- ``recstream_quality_samples_total{outcome}`` and
  ``recstream_quality_seconds_total``: what the sampler did and the time it took;

plus the client library's ``process_*``, ``python_*`` and ``python_gc_*``.

Every consumer has a registry of its own: no module-level metric objects.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from recstream.apply.batch import BatchReport, RawRecord

BATCH_SECONDS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_RECORDS_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 25000)
FRESHNESS_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
OUTCOMES = ("applied", "skipped", "duplicate", "dead_lettered", "erased")


class ConsumerMetrics:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        topics: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry if registry is not None else _registry_with_process_collectors()
        self._clock = clock
        self.store_seen_at: float | None = None
        self.rebuilding_partitions: set[tuple[str, int]] = set()
        r = self.registry
        self.events = Counter(
            "recstream_consumer_events",
            "Records by outcome: applied, skipped (already applied), duplicate, dead_lettered, "
            "erased",
            ["outcome", "topic"],
            registry=r,
        )
        self.dead_letters = Counter(
            "recstream_consumer_dead_letters",
            "Records sent to the dead-letter topic, by reason",
            ["reason"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "recstream_consumer_batch_seconds",
            "Redis step of one partition batch: decode, fold, atomic commit (no backoff, "
            "no quality sampling)",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        self.batch_records = Histogram(
            "recstream_consumer_batch_records",
            "Records in one partition batch",
            buckets=BATCH_RECORDS_BUCKETS,
            registry=r,
        )
        self.freshness = Histogram(
            "recstream_consumer_freshness_seconds",
            "Record timestamp to the commit of its state in Redis, per applied interactions "
            "record, measured on the consumer's clock (skew against the producer's or "
            "broker's clock adds to it)",
            buckets=FRESHNESS_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "recstream_consumer_lag",
            "High-water mark minus the next offset to apply, per owned partition",
            ["topic", "partition"],
            registry=r,
        )
        self.rebalances = Counter(
            "recstream_consumer_rebalances", "Partition assignments received", registry=r
        )
        self.retries = Counter(
            "recstream_consumer_retries",
            "Batch attempts retried after a Redis or dead-letter topic failure",
            registry=r,
        )
        self.state_lost = Counter(
            "recstream_consumer_state_lost",
            "Partitions found to have lost state in Redis (empty, or gone back in time), "
            "then rebuilt from the log",
            ["topic", "partition"],
            registry=r,
        )
        self.rebuilding = Gauge(
            "recstream_consumer_rebuilding",
            "1 while the partition's state is being rebuilt from the log",
            ["topic", "partition"],
            registry=r,
        )
        self.rebuilt_records = Counter(
            "recstream_consumer_rebuilt_records",
            "Records re-applied from the log by rebuilds of lost state",
            ["topic"],
            registry=r,
        )
        self.hit_rate = Gauge(
            "recstream_quality_hit_rate",
            "Share of sampled events whose item was in the user's top-k next items just "
            "before the event (rolling window)",
            ["k"],
            registry=r,
        )
        self.mrr = Gauge(
            "recstream_quality_mrr",
            "Mean reciprocal rank at k of sampled events' items (rolling window)",
            ["k"],
            registry=r,
        )
        self.quality_samples = Counter(
            "recstream_quality_samples",
            "Sampled events by outcome: scored, no_session (nothing to predict from), "
            "no_product, repeat, over_budget, error",
            ["outcome"],
            registry=r,
        )
        self.quality_seconds = Counter(
            "recstream_quality_seconds",
            "Time spent scoring sampled events",
            registry=r,
        )
        for topic in topics:
            for outcome in OUTCOMES:
                self.events.labels(outcome, topic)

    def record_batch(
        self,
        report: BatchReport,
        records: Sequence[RawRecord],
        seconds: float,
        committed_at: float | None = None,
    ) -> None:
        """Count one applied batch; ``committed_at`` (epoch seconds) adds its freshness."""
        topic = report.topic
        counts = (
            ("applied", report.applied),
            ("skipped", report.skipped),
            ("duplicate", report.duplicates),
            ("dead_lettered", len(report.dead_letters)),
            ("erased", report.erased),
        )
        for outcome, count in counts:
            if count:
                self.events.labels(outcome, topic).inc(count)
        for letter in report.dead_letters:
            self.dead_letters.labels(letter.reason).inc()
        self.batch_seconds.observe(seconds)
        self.batch_records.observe(len(records))
        self.store_seen()
        if committed_at is not None and report.applied:
            observe = self.freshness.observe
            for timestamp_ms in applied_timestamps(report, records):
                observe(max(0.0, committed_at - timestamp_ms / 1000.0))

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(topic, str(partition)).set(max(0, lag))

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the lag of partitions this member no longer owns."""
        for topic, partition in partitions:
            with contextlib.suppress(KeyError):
                self.lag.remove(topic, str(partition))

    def set_rebuilding(self, topic: str, partition: int, rebuilding: bool) -> None:
        if rebuilding:
            self.rebuilding_partitions.add((topic, partition))
            self.rebuilding.labels(topic, str(partition)).set(1)
        else:
            self.rebuilding_partitions.discard((topic, partition))
            with contextlib.suppress(KeyError):
                self.rebuilding.remove(topic, str(partition))

    def set_quality(self, k: int, hit_rate: float, mrr: float) -> None:
        self.hit_rate.labels(str(k)).set(hit_rate)
        self.mrr.labels(str(k)).set(mrr)

    def store_seen(self) -> None:
        """The store answered just now (a batch was committed, or a ping came back)."""
        self.store_seen_at = self._clock()

    def store_age(self) -> float | None:
        """Seconds since the store last answered; None when it never did."""
        return None if self.store_seen_at is None else self._clock() - self.store_seen_at


def applied_timestamps(report: BatchReport, records: Sequence[RawRecord]) -> list[int]:
    """Record timestamps of the batch's applied records (approximately, see below).

    Dead letters are left out, and so are the first ``skipped`` records: events at or
    below a watermark are the head of a redelivered batch. Duplicates and erased
    events count, their outcome was decided (and committed) with the batch.
    """
    dead = {letter.record.offset for letter in report.dead_letters}
    kept = [r.timestamp_ms for r in records if r.offset not in dead]
    return kept[report.skipped :]


def _registry_with_process_collectors() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
