"""Bad and awkward input: poison records, duplicates, late / out-of-order / future events."""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from faults.checker import compare
from faults.driver import Outgoing, event_record, now_ms
from faults.oracle import expect
from faults.poison import POISONS
from faults.report import ScenarioResult
from faults.rig import open_rig
from faults.scenarios.common import (
    SuiteOptions,
    alive_or_fail,
    converge,
    dead_letter_check,
    driving,
    events,
    oracle_check,
    verify_log,
)
from faults.snapshot import redis_snapshot
from recstream.apply.batch import RawRecord
from recstream.contract.events import WRITTEN_BY_API
from recstream.model.config import CoreConfig

HOUR_MS = 3_600_000


async def poison(options: SuiteOptions) -> ScenarioResult:
    """Every kind of bad record mixed into valid traffic: DLQ'd once each, nothing blocked."""
    result = ScenarioResult("poison", "poison messages mixed into valid traffic")
    started = time.monotonic()
    rng = random.Random(options.seed)
    valid = events(options, options.size(3000, 15000), options.size(100, 300), "p")
    items: list[Outgoing] = []
    injected = 0
    for event in valid:
        items.append(event_record(event))
        if rng.random() < 0.04:
            items.append(POISONS[injected % len(POISONS)](event, injected))
            injected += 1
    async with (
        open_rig("poison", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        await driver.send_paced(items, options.size(1500.0, 2000.0))
        caught = await converge(watch, driver, 120)
        result.require(caught is not None, "the consumer did not get past the poison records")
        alive_or_fail(result, consumer)
        _, expectation = await oracle_check(rig, driver, result)
        result.counts["poison records injected"] = injected
        result.require(
            len(expectation.dead_letters) == injected,
            f"the oracle dead-letters {len(expectation.dead_letters)}, {injected} were injected",
        )
        letters = await dead_letter_check(rig, driver, expectation, result)
        result.figure = (
            f"DLQ count {letters.found} = injected {injected}; extra copies {letters.copies}"
        )
        result.resume_s = caught
        await consumer.terminate()
        await verify_log(rig, driver, result)
    return result.finish(started)


async def duplicates(options: SuiteOptions) -> ScenarioResult:
    """Every event produced twice, plus redelivery after a kill, then copies outside the window."""
    result = ScenarioResult("duplicates", "duplicates: every event twice, redelivery, late copies")
    started = time.monotonic()
    rng = random.Random(options.seed)
    unique = events(options, options.size(2500, 12000), options.size(100, 300), "d")
    items: list[Outgoing] = []
    later: list[tuple[int, int]] = []  # heap of (send after this many events, event index)
    for n, event in enumerate(unique):
        items.append(event_record(event))
        heapq.heappush(later, (n + rng.randint(1, 300), n))
        while later and later[0][0] <= n:
            items.append(event_record(unique[heapq.heappop(later)[1]], tag="duplicate"))
    items += [event_record(unique[i], tag="duplicate") for _, i in sorted(later)]
    async with (
        open_rig("duplicates", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        producing = asyncio.create_task(driver.send_paced(items, options.size(800.0, 1200.0)))
        await watch.wait_progress(time.monotonic(), 60)
        await asyncio.sleep(2.0)
        consumer.kill()  # redelivery: the next member reads the uncommitted batches again
        consumer = rig.spawn_consumer()
        await producing
        caught = await converge(watch, driver, 120)
        result.require(caught is not None, "the consumer did not catch up")
        _, full = await oracle_check(rig, driver, result, label="inside the window vs oracle")
        firsts = [r for r in driver.records if driver.tags[(r.partition, r.offset)] == "event"]
        unique_oracle = await expect(firsts, rig.config, rig.keyspace, erasure_log=rig.erasure_log)
        actual = await redis_snapshot(rig.client, rig.keyspace)
        check = compare(unique_oracle.snapshot, actual, ignore_watermarks=True)
        result.add_check("inside the window vs the unique-event oracle (watermarks aside)", check)
        # outside the window: a third copy of some events, stamped 2 h after the first
        late_users = sorted({e["user_id"] for e in unique})[:5]
        copies = [e for e in unique if e["user_id"] in late_users][-options.size(10, 40) :]
        stamp = now_ms() + 2 * HOUR_MS
        await driver.send(
            [event_record(e, timestamp_ms=stamp, tag="late duplicate") for e in copies]
        )
        caught_late = await converge(watch, driver, 60)
        result.require(caught_late is not None, "the late copies were not applied")
        await oracle_check(rig, driver, result, label="outside the window vs oracle")
        actual = await redis_snapshot(rig.client, rig.keyspace)
        counted = sum(actual.users[u].total_events for u in late_users if u in actual.users)
        # lists shown are not behaviour: a user's total counts the other events only
        behaviour = [e for e in unique if e["event_type"] not in WRITTEN_BY_API]
        wanted = sum(1 for e in behaviour if e["user_id"] in late_users) + sum(
            1 for e in copies if e["event_type"] not in WRITTEN_BY_API
        )
        result.require(
            counted == wanted,
            f"late copies: {counted} events counted, the documented rule gives {wanted}",
        )
        result.counts["records (first copies / in-window copies / late copies)"] = (
            f"{len(firsts)} / {len(firsts)} / {len(copies)}"
        )
        result.counts["duplicates dropped inside the window (oracle)"] = full.duplicates
        result.figure = (
            "state = unique-event oracle inside the window; "
            f"{len(copies)} copies 2 h later counted again, as documented"
        )
        result.resume_s = caught
        alive_or_fail(result, consumer)
        await consumer.terminate()
        await verify_log(rig, driver, result)
    return result.finish(started)


def _shift(event: dict[str, Any], seconds: float) -> dict[str, Any]:
    at = datetime.fromisoformat(event["occurred_at"]) + timedelta(seconds=seconds)
    return {**event, "occurred_at": at.astimezone(UTC).isoformat()}


async def lateness(options: SuiteOptions) -> ScenarioResult:
    """Out-of-order, very late and future-dated events, and producers with skewed clocks."""
    result = ScenarioResult("lateness", "out-of-order, late, future-dated events and clock skew")
    started = time.monotonic()
    rng = random.Random(options.seed)
    base = events(options, options.size(3000, 12000), options.size(100, 300), "l")
    items: list[Outgoing] = []
    kinds: dict[str, int] = {}
    held: list[dict[str, Any]] = []
    for n, event in enumerate(base):
        roll = rng.random()
        if roll < 0.05:
            held.append(_shift(event, -rng.uniform(2, 10) * 86_400))  # sent at the end: very late
            kinds["late by days"] = kinds.get("late by days", 0) + 1
            continue
        if roll < 0.15 and n + 1 < len(base):
            base[n + 1], event = event, base[n + 1]  # swapped with the next one
            kinds["out of order"] = kinds.get("out of order", 0) + 1
        items.append(event_record(event))
    items += [event_record(e) for e in held]
    now = now_ms()
    fresh = [
        _shift(e, (now / 1000 - 30) - datetime.fromisoformat(e["occurred_at"]).timestamp())
        for e in base[-400:]
    ]
    for n, event in enumerate(fresh):
        event = {**event, "event_id": f"fresh-{n}"}
        skew = [0, 120, 3600, -600, 900][n % 5]  # event ahead of its record time, seconds
        label = {
            0: "fresh",
            120: "future within tolerance",
            3600: "future beyond tolerance",
            -600: "record clock ahead 10 min",
            900: "record clock behind 15 min",
        }[skew]
        if skew in (120, 3600):
            event, stamp = _shift(event, skew), now
        else:
            stamp = now - skew * 1000
        items.append(event_record(event, timestamp_ms=stamp, tag=label))
        kinds[label] = kinds.get(label, 0) + 1
    async with (
        open_rig("lateness", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        await driver.send_paced(items, options.size(1500.0, 2000.0))
        caught = await converge(watch, driver, 120)
        result.require(caught is not None, "the consumer did not catch up")
        alive_or_fail(result, consumer)
        _, expectation = await oracle_check(rig, driver, result)
        refused = _refused_by_rule(driver.records, rig.config)
        oracle_refused = {(d.record.partition, d.record.offset) for d in expectation.dead_letters}
        result.require(
            refused == oracle_refused,
            f"the lateness rule refuses {len(refused)}, the fold {len(oracle_refused)}",
        )
        await dead_letter_check(rig, driver, expectation, result)
        result.counts["events by kind"] = kinds
        tolerance = rig.config.future_tolerance_seconds
        result.figure = (
            f"{len(refused)} refused as future_event (more than {tolerance:.0f} s after the "
            "record time), every other one applied at its own time"
        )
        result.resume_s = caught
        await consumer.terminate()
        await verify_log(rig, driver, result)
    return result.finish(started)


def _refused_by_rule(records: Sequence[RawRecord], config: CoreConfig) -> set[tuple[int, int]]:
    """The records the documented rule refuses, computed apart from the fold:
    ``occurred_at`` more than ``future_tolerance_seconds`` after the record time."""
    refused = set()
    for record in records:
        assert record.value is not None
        occurred = datetime.fromisoformat(orjson.loads(record.value)["occurred_at"]).timestamp()
        if occurred - record.timestamp_ms / 1000 > config.future_tolerance_seconds:
            refused.add((record.partition, record.offset))
    return refused
