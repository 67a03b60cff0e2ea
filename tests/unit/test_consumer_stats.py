"""The consumer's periodic stats line: INFO when something changed since the last line, else
DEBUG (an idle consumer does not write a heartbeat at INFO every 30 s)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace

import pytest

from recstream.platform.logs import configure_logging
from recstream_consumer.handler import ConsumerCounters
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.quality import RollingQuality
from recstream_consumer.service import Consumer, stats_snapshot
from recstream_consumer.settings import ConsumerSettings
from recstream_consumer.stats import StatsLog, StatsSnapshot, lag_band
from tests.unit.logcapture import CapturedLog, saved_logging

OWNED = {("interactions", 0), ("interactions", 1), ("catalog", 0)}


@pytest.fixture
def log() -> Iterator[CapturedLog]:
    stream = io.StringIO()
    with saved_logging():
        configure_logging("DEBUG", "logfmt", {"service": "recstream-consumer"}, stream)
        yield CapturedLog(stream, "logfmt")


def snapshot(lag: int = 0, **counts: int) -> StatsSnapshot:
    counters = replace(ConsumerCounters(), **counts)
    return StatsSnapshot.of(counters.as_dict(), OWNED, set(), lag)


def levels(log: CapturedLog) -> list[str]:
    return [r["level"] for r in log.records() if r["msg"].startswith("consumer stats:")]


def test_an_idle_consumer_logs_its_unchanged_stats_at_debug(log: CapturedLog) -> None:
    stats = StatsLog()
    for _ in range(4):
        stats.write(snapshot(batches=3, records=300, applied=300))
    assert levels(log) == ["INFO", "DEBUG", "DEBUG", "DEBUG"]
    first = log.records()[0]
    assert first["logger"] == "recstream_consumer.stats"
    assert "applied=300" in first["msg"]
    assert "partitions=3 rebuilding=0 lag=0" in first["msg"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(snapshot(batches=4, records=301, applied=301), id="events applied"),
        pytest.param(snapshot(batches=4, records=301, applied=300, dead_lettered=1), id="dlq"),
        pytest.param(snapshot(batches=3, records=300, applied=300, retries=1), id="retries"),
        pytest.param(snapshot(lag=5, batches=3, records=300, applied=300), id="lag from 0"),
        pytest.param(
            replace(snapshot(batches=3, records=300, applied=300), partitions=frozenset()),
            id="assignment",
        ),
        pytest.param(
            replace(
                snapshot(batches=3, records=300, applied=300),
                rebuilding=frozenset({("interactions", 1)}),
            ),
            id="rebuild",
        ),
    ],
)
def test_a_change_is_logged_at_info_once(log: CapturedLog, change: StatsSnapshot) -> None:
    stats = StatsLog()
    idle = snapshot(batches=3, records=300, applied=300)
    for current in (idle, idle, change, change, idle):
        stats.write(current)
    assert levels(log) == ["INFO", "DEBUG", "INFO", "DEBUG", "INFO"]


def test_lag_moving_within_its_decade_is_no_change(log: CapturedLog) -> None:
    stats = StatsLog()
    for lag in (12, 57, 99, 100, 450, 0):
        stats.write(snapshot(lag=lag))
    assert levels(log) == ["INFO", "DEBUG", "DEBUG", "INFO", "DEBUG", "INFO"]
    assert [lag_band(n) for n in (0, 1, 9, 10, 99, 100)] == [0, 1, 1, 2, 2, 3]


def test_the_line_carries_the_quality_window(log: CapturedLog) -> None:
    window = RollingQuality(k=20, size=10)
    window.add(1)
    window.add(None)
    counters = ConsumerCounters(batches=1, records=2, applied=2).as_dict()
    StatsLog().write(StatsSnapshot.of(counters, OWNED, set(), 7, window))
    (line,) = log.records()
    assert line["msg"].endswith("lag=7 quality_samples=2 hit_rate@20=0.500 mrr@20=0.500")


class FakeSource:
    def assignment(self) -> set[tuple[str, int]]:
        return set(OWNED)


class FakeHandler:
    counters = ConsumerCounters(batches=2, records=20, applied=19, dead_lettered=1)


def test_a_running_consumer_is_summed_up_from_its_counters_assignment_and_lag() -> None:
    metrics = ConsumerMetrics(topics=["interactions", "catalog"])
    metrics.set_lag("interactions", 0, 40)
    metrics.set_lag("interactions", 1, 2)
    metrics.set_rebuilding("interactions", 1, True)
    consumer = Consumer(ConsumerSettings(), FakeHandler(), FakeSource(), metrics)
    taken = stats_snapshot(consumer)
    assert dict(taken.counters)["dead_lettered"] == 1
    assert taken.partitions == OWNED
    assert taken.rebuilding == {("interactions", 1)}
    assert taken.lag == 42
