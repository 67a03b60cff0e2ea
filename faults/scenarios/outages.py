"""Redis stopped, Redis hung (SIGSTOP), and one Redis primary killed and restarted from its
append-only file, under load (the API answering meanwhile in the first two)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Literal

from faults.api_probe import running_api, summarize
from faults.driver import bounded
from faults.probes import MarkWatch, committed_offsets
from faults.report import ScenarioResult
from faults.rig import Rig, open_rig
from faults.scenarios.common import (
    SuiteOptions,
    alive_or_fail,
    converge,
    driving,
    oracle_check,
    verify_log,
    workload,
)
from faults.stack import Child
from recstream.platform.settings import RedisSettings
from recstream_api.main import REDIS_RETRIES

Mode = Literal["stop", "hang"]
MEMORY_LIMIT_KIB = 64 * 1024  # growth of the consumer's RSS allowed during the outage


async def _sample(rig: Rig, consumer: Child, until: asyncio.Event) -> tuple[int, dict[int, int]]:
    """Max RSS (KiB) and the max committed offset per partition until ``until`` is set."""
    rss, committed = 0, dict[int, int]()
    while not until.is_set():
        rss = max(rss, consumer.rss_kib() or 0)
        with contextlib.suppress(Exception):
            found = await bounded(
                committed_offsets(rig.broker.bootstrap, rig.group, rig.topic, rig.partitions), 5
            )
            for p, o in found.items():
                committed[p] = max(committed.get(p, -1), o)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), 0.5)
    return rss, committed


async def redis_outage(options: SuiteOptions, mode: Mode) -> ScenarioResult:
    title = "Redis stopped" if mode == "stop" else "Redis hung (SIGSTOP)"
    result = ScenarioResult(f"redis-{mode}", f"{title} under load, API probed")
    started = time.monotonic()
    outage = options.size(10.0, 20.0)
    rate = options.size(400.0, 600.0)
    items = workload(options, int(rate * (outage + 40)), options.size(150, 400), mode[0])
    rig_options = options.rig(persistent_redis=True)
    async with (
        open_rig(f"redis-{mode}", options.workdir, rig_options) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        user = str(items[0].key.decode()) if items[0].key else "nobody"
        async with running_api(rig, user) as (_, probe):
            stop = asyncio.Event()
            producing = asyncio.create_task(driver.send_paced(items, rate, stop=stop))
            await watch.wait_progress(time.monotonic(), 60)
            await asyncio.sleep(3.0)
            rss_before = consumer.rss_kib() or 0
            recovered = asyncio.Event()
            sampling = asyncio.create_task(_sample(rig, consumer, recovered))
            fault_at = time.monotonic()
            rig.redis.stop() if mode == "stop" else rig.redis.pause()
            await asyncio.sleep(outage)
            rig.redis.start() if mode == "stop" else rig.redis.resume()
            back_at = time.monotonic()
            recovered.set()
            rss_max, committed = await sampling
            first = await _first_marks_after(watch, back_at)
            pending = driver.last_offsets()
            converged = await watch.wait_caught_up(pending, 120)
            await asyncio.sleep(2.0)
            stop.set()
            result.counts["records sent"] = await producing
            during = summarize(probe.between(fault_at, back_at))
            after = summarize(probe.between(back_at + (converged or 0), time.monotonic()))
        result.require(alive_or_fail(result, consumer), "the consumer exited during the outage")
        ahead = {p: (c, first.get(p, -1)) for p, c in committed.items() if c > first.get(p, -1) + 1}
        result.require(not ahead, f"committed past what Redis applied (offset, watermark): {ahead}")
        growth = rss_max - rss_before
        result.require(
            growth < MEMORY_LIMIT_KIB, f"consumer RSS grew by {growth} KiB in the outage"
        )
        result.require(converged is not None, "the state did not converge after the outage")
        # the API's promise (recstream_api.main): its retries on one primary; on a cluster,
        # one attempt and a slot-map refresh that asks every node in turn
        attempts = 1 + len(rig.redis.node_urls) if rig.redis.cluster else REDIS_RETRIES + 1
        bound = attempts * RedisSettings().socket_timeout_seconds + 1.0
        statuses = during.get("statuses", {})
        assert isinstance(statuses, dict)
        result.require(statuses.get("0", 0) == 0, f"the API did not answer some requests: {during}")
        result.require(
            set(statuses) <= {"200", "503"},
            f"API answers other than 200/503 during the outage: {during}",
        )
        result.require(during.get("503 without Retry-After") == 0, "a 503 without Retry-After")
        worst = float(str(during.get("latency max (s)", 0)))
        result.require(worst <= bound, f"an API answer took {worst:.2f} s (bound {bound:.1f} s)")
        # a restart from the committed offsets must find nothing missing
        consumer.kill()
        consumer = rig.spawn_consumer()
        caught = await converge(watch, driver, 120)
        result.require(caught is not None, "the restarted consumer did not catch up")
        result.timings["outage (s)"] = outage
        result.timings["converged after recovery (s)"] = converged
        result.counts["consumer RSS before / max during outage (KiB)"] = f"{rss_before} / {rss_max}"
        result.counts["API during the outage"] = during
        result.counts["API after convergence"] = after
        result.resume_s = converged
        result.figure = (
            f"{outage:.0f} s outage: converged {converged or float('nan'):.1f} s after recovery; "
            f"API max {worst:.2f} s ({statuses}); RSS +{growth / 1024:.1f} MiB"
        )
        await consumer.terminate()
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)


async def _first_marks_after(watch: MarkWatch, moment: float) -> dict[int, int]:
    """The first watermark sample taken after ``moment``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for at, marks in watch.samples:
            if at > moment:
                return dict(marks)
        await asyncio.sleep(0.05)
    return {}


async def redis_stop(options: SuiteOptions) -> ScenarioResult:
    return await redis_outage(options, "stop")


async def redis_hang(options: SuiteOptions) -> ScenarioResult:
    return await redis_outage(options, "hang")


async def redis_primary_killed(options: SuiteOptions) -> ScenarioResult:
    """``kill -9`` of one Redis primary under load (on a cluster, one of three: the others
    refuse work while its slots are down), restarted from its append-only file (fsync at
    every write) after a few seconds: the consumer waits it out and the state converges
    to the oracle's exactly."""
    result = ScenarioResult(
        "redis-primary-killed", "a Redis primary killed -9 under load, restarted from its AOF"
    )
    started = time.monotonic()
    down = options.size(5.0, 15.0)
    rate = options.size(400.0, 600.0)
    items = workload(options, int(rate * (down + 30)), options.size(150, 400), "m")
    async with (
        open_rig("primary-killed", options.workdir, options.rig(persistent_redis=True)) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        stop = asyncio.Event()
        producing = asyncio.create_task(driver.send_paced(items, rate, stop=stop))
        moved = await watch.wait_progress(time.monotonic(), 60)
        result.require(moved is not None, "the consumer made no progress before the kill")
        await asyncio.sleep(2.0)
        node = random.Random(options.seed).randrange(len(rig.redis.node_urls))
        rig.redis.kill_node(node)
        await asyncio.sleep(down)
        rig.redis.start_node(node)
        back_at = time.monotonic()
        resumed = await watch.wait_progress(back_at, 90)
        await asyncio.sleep(2.0)
        stop.set()
        result.counts["records sent"] = await producing
        caught = await converge(watch, driver, 180)
        result.require(resumed is not None, "no progress after the primary came back")
        result.require(caught is not None, "the consumer did not catch up with the input")
        result.require(alive_or_fail(result, consumer), "the consumer exited")
        result.counts["primary killed"] = f"{node + 1} of {len(rig.redis.node_urls)}"
        result.timings["down (s)"] = down
        result.timings["progress after the restart (s)"] = resumed
        result.timings["caught up after the last record (s)"] = caught
        result.resume_s = resumed
        result.figure = (
            f"primary {node + 1} of {len(rig.redis.node_urls)} down {down:.0f} s: progress "
            f"{resumed or float('nan'):.1f} s after its restart"
        )
        await consumer.terminate()
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)
