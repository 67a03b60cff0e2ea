"""Backlog catch-up after downtime, and the soak run, both with the API probed meanwhile."""

from __future__ import annotations

import asyncio
import statistics
import time

from faults.api_probe import running_api, summarize
from faults.driver import read_log
from faults.oracle import replay
from faults.report import ScenarioResult
from faults.rig import open_rig
from faults.scenarios.common import (
    SuiteOptions,
    alive_or_fail,
    converge,
    driving,
    oracle_check,
    verify_log,
    workload,
)
from recstream.contract.keyspace import Keyspace
from recstream.store.redis import RedisStore

REPLAY_BATCH = 500
MIN_REPLAY_SHARE = 0.5  # the catch-up rate is at least half the in-process replay rate


async def backlog(options: SuiteOptions) -> ScenarioResult:
    """The consumer is down while traffic goes on; then it drains the backlog."""
    result = ScenarioResult("backlog", "backlog catch-up after downtime, API probed")
    started = time.monotonic()
    rate = options.size(800.0, 500.0)
    downtime = options.size(15.0, 120.0)
    items = workload(options, int(rate * (downtime + 8)), options.size(200, 600), "c")
    async with (
        open_rig("backlog", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        user = items[0].key.decode() if items[0].key else "nobody"
        async with running_api(rig, user) as (_, probe):
            head = int(rate * 4)
            await driver.send_paced(items[:head], rate)
            await converge(watch, driver, 60)
            await consumer.terminate()
            down_at = time.monotonic()
            await driver.send_paced(items[head:], rate)
            backlog_size = len(driver.records) - head
            result.timings["downtime (s)"] = time.monotonic() - down_at
            restarted = time.monotonic()
            consumer = rig.spawn_consumer()
            first = await watch.wait_progress(restarted, 60)
            caught = await converge(watch, driver, 600)
            done_at = time.monotonic()
            api = summarize(probe.between(restarted, done_at))
        result.require(first is not None and caught is not None, "the backlog was not drained")
        drain = done_at - restarted - (first or 0.0)
        catch_up = backlog_size / max(drain, 1e-3)
        alive_or_fail(result, consumer)
        await consumer.terminate()
        # the replay rate of the same records (the rebuild path) as the reference
        replay_keys = Keyspace(prefix=f"{rig.keyspace.prefix}replay")
        replay_started = time.monotonic()
        await replay(RedisStore(rig.client, replay_keys), driver.records, rig.config, REPLAY_BATCH)
        replay_rate = len(driver.records) / (time.monotonic() - replay_started)
        async for key in rig.client.scan_iter(match=f"{replay_keys.prefix}:*", count=2000):
            await rig.client.delete(key)
        statuses = api.get("statuses", {})
        assert isinstance(statuses, dict)
        result.require(set(statuses) == {"200"}, f"API answers during the catch-up: {api}")
        result.require(
            catch_up >= MIN_REPLAY_SHARE * replay_rate,
            f"catch-up at {catch_up:.0f}/s is below half the replay rate {replay_rate:.0f}/s",
        )
        result.counts["backlog (records)"] = backlog_size
        result.counts["API during the catch-up"] = api
        result.timings["drain time from the first batch (s)"] = drain
        result.counts["catch-up / replay rate (records/s)"] = f"{catch_up:.0f} / {replay_rate:.0f}"
        result.resume_s = done_at - restarted
        result.figure = (
            f"{backlog_size} records drained at {catch_up:.0f}/s (replay {replay_rate:.0f}/s); "
            f"API p99 {api.get('latency p99 (s)')} s, max {api.get('latency max (s)')} s"
        )
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)


async def soak(options: SuiteOptions) -> ScenarioResult:
    """Steady traffic for ``soak_seconds``: memory flat, freshness stable, DLQ empty."""
    result = ScenarioResult("soak", "soak run (time-bounded)")
    started = time.monotonic()
    duration = min(options.soak_seconds, 60.0) if options.quick else options.soak_seconds
    rate = 300.0
    items = workload(options, int(rate * duration), max(200, int(rate * duration / 150)), "s")
    rss: list[tuple[float, int]] = []
    async with (
        open_rig("soak", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        user = items[0].key.decode() if items[0].key else "nobody"
        async with running_api(rig, user) as (_, probe):
            stop = asyncio.Event()
            sent_at: list[tuple[float, int, int]] = []

            async def send() -> None:
                step = int(rate)
                for start in range(0, len(items), step):
                    if stop.is_set():
                        return
                    tick = time.monotonic()
                    records = await driver.send(items[start : start + step])
                    sent_at.append((time.monotonic(), records[-1].partition, records[-1].offset))
                    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

            producing = asyncio.create_task(send())
            while not producing.done():
                rss.append((time.monotonic(), consumer.rss_kib() or 0))
                await asyncio.wait([producing], timeout=5.0)
            caught = await converge(watch, driver, 120)
            api = summarize(probe.answers)
        result.require(caught is not None, "the consumer fell behind for good")
        alive_or_fail(result, consumer)
        await consumer.terminate()
        fresh = _freshness(watch.samples, sent_at)
        quarter = max(1, len(fresh) // 4)
        early, late = fresh[:quarter], fresh[-quarter:]
        memory = [kib for _, kib in rss]
        mem_q = max(1, len(memory) // 4)
        growth = statistics.mean(memory[-mem_q:]) - statistics.mean(
            memory[mem_q : 2 * mem_q] or memory
        )
        result.require(growth < 32 * 1024, f"consumer RSS grew {growth:.0f} KiB over the soak")
        p99 = (_p99(early), _p99(late))
        result.require(
            p99[1] <= 2 * p99[0] + 0.5, f"freshness p99 went from {p99[0]:.2f} to {p99[1]:.2f} s"
        )
        dlq = await read_log(rig.broker.bootstrap, rig.dlq_topic, 0, within=5, settle=2)
        result.require(not dlq, f"{len(dlq)} dead letters for valid input")
        result.counts["consumer RSS first / last quarter (MiB)"] = (
            f"{statistics.mean(memory[mem_q : 2 * mem_q] or memory) / 1024:.1f} / "
            f"{statistics.mean(memory[-mem_q:]) / 1024:.1f}"
        )
        result.counts["freshness p50 / p99, first and last quarter (s)"] = (
            f"{statistics.median(early or [0.0]):.2f} / {p99[0]:.2f}, "
            f"{statistics.median(late or [0.0]):.2f} / {p99[1]:.2f}"
        )
        result.counts["API"] = api
        result.timings["duration (s)"] = duration
        result.figure = (
            f"{duration:.0f} s at {rate:.0f} records/s: RSS {growth / 1024:+.1f} MiB, "
            f"freshness p99 {p99[0]:.2f} -> {p99[1]:.2f} s, DLQ {len(dlq)}"
        )
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def _freshness(
    samples: list[tuple[float, dict[int, int]]], sent: list[tuple[float, int, int]]
) -> list[float]:
    """Seconds from each chunk's acknowledgement until its last record's partition covered it."""
    found = []
    start = 0
    for at, partition, offset in sent:
        while start < len(samples) and samples[start][0] < at:
            start += 1
        for sample_at, marks in samples[start:]:
            if marks.get(partition, -1) >= offset:
                found.append(sample_at - at)
                break
    return found
