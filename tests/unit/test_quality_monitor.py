"""The live quality monitor: sampling, the rolling window, the time budget, and scoring
sampled events against the state just before them (in-memory store)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from recstream.apply.batch import RawRecord, apply_batch, decode_batch
from recstream.contract.events import EventType
from recstream.model.config import CoreConfig
from recstream.scoring import ScoringConfig
from recstream.store.memory import MemoryStore
from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.prequential import QualityMonitor
from recstream_consumer.quality import RollingQuality, TimeBudget, is_sampled

from .eventgen import BASE, make_event

CORE = CoreConfig()
RECEIVED_MS = int((BASE + timedelta(days=1)).timestamp() * 1000)


def test_sampling_is_a_pure_function_of_the_event_id_with_the_asked_share() -> None:
    ids = [str(uuid.UUID(int=i * 7919 + 13)) for i in range(20_000)]
    picked = [i for i in ids if is_sampled(i, 0.05)]
    assert picked == [i for i in ids if is_sampled(i, 0.05)]  # a replay picks the same
    assert 0.04 < len(picked) / len(ids) < 0.06
    assert set(picked) <= {i for i in ids if is_sampled(i, 0.2)}  # a higher rate adds ids
    assert not any(is_sampled(i, 0.0) for i in ids[:500])
    assert all(is_sampled(i, 1.0) for i in ids[:500])


def test_rolling_window_gives_exact_hit_rate_and_mrr_over_the_last_samples() -> None:
    window = RollingQuality(k=3, size=4)
    assert (window.samples, window.hit_rate, window.mrr) == (0, 0.0, 0.0)
    for rank in (1, 2, None, 4):  # rank 4 is beyond k: a miss
        window.add(rank)
    assert window.samples == 4
    assert window.hit_rate == pytest.approx(2 / 4)
    assert window.mrr == pytest.approx((1 + 1 / 2) / 4)
    window.add(3)  # the first sample (rank 1) leaves the window
    assert window.samples == 4
    assert window.hit_rate == pytest.approx(2 / 4)
    assert window.mrr == pytest.approx((1 / 2 + 1 / 3) / 4)
    for _ in range(4):
        window.add(None)
    assert (window.hit_rate, window.mrr) == (0.0, 0.0)


def test_rolling_window_refuses_a_zero_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        RollingQuality(k=20, size=0)


def test_time_budget_refills_at_its_share_and_caps_bursts() -> None:
    budget = TimeBudget(share=0.1, burst=0.05, now=100.0)
    assert budget.available(100.0)
    budget.spend(0.08)  # overspent: 0.03 owed
    assert not budget.available(100.2)  # refilled 0.02
    assert budget.available(100.4)  # refilled 0.04 in all
    budget.spend(0.0)
    assert budget.available(1000.0)
    budget.spend(0.06)  # the refill stopped at the burst (0.05)
    assert not budget.available(1000.0)
    assert not TimeBudget(share=0.0, burst=0.01, now=0.0).available(10.0)


def record(offset: int, event: dict[str, object]) -> RawRecord:
    key = str(event["user_id"]).encode()
    return RawRecord("interactions", 0, offset, RECEIVED_MS, key, json.dumps(event).encode())


def training() -> list[RawRecord]:
    """Ten users who each view p1, then p2: the transition p1 -> p2."""
    events = []
    for n in range(10):
        for step, product in enumerate(("p1", "p2")):
            minutes = n * 60 + step
            events.append(
                make_event(
                    f"t{n}-{step}",
                    EventType.PRODUCT_VIEW,
                    f"u{n}",
                    minutes=minutes,
                    product_id=product,
                )
            )
    return [record(offset, event) for offset, event in enumerate(events)]


def live(start: int) -> list[RawRecord]:
    """A new user views p1, looks at a page, then views p2, all in one batch."""
    events = [
        make_event("x1", EventType.PRODUCT_VIEW, "new", minutes=1000, product_id="p1"),
        make_event("x2", EventType.PAGE_VIEW, "new", minutes=1001),
        make_event("x3", EventType.PRODUCT_VIEW, "new", minutes=1002, product_id="p2"),
    ]
    return [record(start + i, event) for i, event in enumerate(events)]


def samples(metrics: ConsumerMetrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "recstream_quality_samples_total", {"outcome": outcome}
    )
    return value or 0.0


async def sampled(store: MemoryStore, records: list[RawRecord], monitor: QualityMonitor) -> None:
    """What the consumer's handler does: sample the decoded batch, then apply it."""
    await monitor.sample(decode_batch(records, CORE))
    await apply_batch(store, records, CORE)


def monitor_for(
    store: MemoryStore, metrics: ConsumerMetrics, budget: float = 1.0
) -> QualityMonitor:
    return QualityMonitor(
        store, CORE, ScoringConfig(), metrics, rate=1.0, k=20, window=100, budget=budget
    )


async def test_an_event_is_scored_against_the_state_just_before_it() -> None:
    store = MemoryStore()
    await apply_batch(store, training(), CORE)
    metrics = ConsumerMetrics()
    monitor = monitor_for(store, metrics)
    batch = live(start=100)
    await sampled(store, batch, monitor)

    # x1 starts the session (nothing to predict from), x2 has no product,
    # x3 follows p1 within the session: p2 is the top next item
    assert samples(metrics, "no_session") == 1
    assert samples(metrics, "no_product") == 1
    assert samples(metrics, "scored") == 1
    assert (monitor.window.samples, monitor.window.hit_rate, monitor.window.mrr) == (1, 1.0, 1.0)
    registry = metrics.registry
    assert registry.get_sample_value("recstream_quality_hit_rate", {"k": "20"}) == 1.0
    assert registry.get_sample_value("recstream_quality_mrr", {"k": "20"}) == 1.0
    assert monitor.spent > 0.0

    # the same batch read again (a retry, a rewind) is not scored twice
    await sampled(store, batch, monitor)
    assert samples(metrics, "repeat") == 3
    assert monitor.window.samples == 1


async def test_a_miss_lowers_the_gauges() -> None:
    store = MemoryStore()
    await apply_batch(store, training(), CORE)
    metrics = ConsumerMetrics()
    monitor = monitor_for(store, metrics)
    events = [
        make_event("y1", EventType.PRODUCT_VIEW, "other", minutes=1000, product_id="p1"),
        make_event("y2", EventType.PRODUCT_VIEW, "other", minutes=1001, product_id="p9"),
    ]
    await sampled(store, [record(200 + i, e) for i, e in enumerate(events)], monitor)
    assert samples(metrics, "scored") == 1
    assert monitor.window.hit_rate == 0.0
    assert metrics.registry.get_sample_value("recstream_quality_mrr", {"k": "20"}) == 0.0


async def test_scoring_leaves_the_applied_state_exactly_as_without_it() -> None:
    plain, observed = MemoryStore(), MemoryStore()
    monitor = monitor_for(observed, ConsumerMetrics())
    for store in (plain, observed):
        await apply_batch(store, training(), CORE)
    await apply_batch(plain, live(100), CORE)
    await sampled(observed, live(100), monitor)
    assert monitor.window.samples == 1
    for user in ("new", "u0", "u9"):
        want, got = await plain.get_user(user), await observed.get_user(user)
        assert want is not None
        assert got is not None
        assert got.to_json() == want.to_json()
    assert observed.zsets == plain.zsets


async def test_samples_beyond_the_time_budget_are_counted_not_scored() -> None:
    store = MemoryStore()
    await apply_batch(store, training(), CORE)
    metrics = ConsumerMetrics()
    monitor = monitor_for(store, metrics, budget=0.0)
    await sampled(store, live(100), monitor)
    assert samples(metrics, "over_budget") == 2  # the two product views
    assert samples(metrics, "scored") == 0
    assert monitor.window.samples == 0
