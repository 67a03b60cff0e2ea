"""Consumer crashes and stops under load: ``kill -9`` (repeated) and SIGTERM."""

from __future__ import annotations

import asyncio
import random
import re
import time

from faults.probes import MarkWatch, committed_offsets
from faults.report import ScenarioResult, seconds
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

# Where the kill lands: anywhere, while the batch's Redis script is held back by
# CLIENT PAUSE WRITE ("during the Redis step"; on a Redis Cluster one primary is paused,
# so the kill lands between the batch's slot steps: those of the other primaries ran),
# or while the broker is stopped so the offset commit after an applied batch cannot
# complete ("before/during the commit").
KILL_POINTS = ("random", "redis-step", "commit")


def assigned(log: str, topic: str) -> set[int]:
    """The partitions of ``topic`` in a consumer log's last "partitions assigned" line."""
    found: set[int] = set()
    for line in log.splitlines():
        if "partitions assigned:" in line:
            listed = dict(re.findall(r"(\S+?)\[([\d, ]*)\]", line.split("assigned:", 1)[1]))
            found = {int(x) for x in listed.get(topic, "").split(",") if x.strip()}
    return found


async def wait_split(topic: str, partitions: int, members: list[Child], within: float) -> bool:
    """Wait until the members' last assignments split the topic's partitions exactly."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        owned = [assigned(m.log_tail(50_000), topic) for m in members]
        flat = sorted(p for parts in owned for p in parts)
        if all(owned) and flat == list(range(partitions)):
            return True
        await asyncio.sleep(0.2)
    return False


async def _blocked_scripts(rig: Rig) -> int:
    """Clients whose script is held back by CLIENT PAUSE (flag ``b``, command evalsha)."""
    clients = await rig.node(0).client_list()
    return sum(1 for c in clients if "b" in c.get("flags", "") and c.get("cmd") == "evalsha")


async def _arm(rig: Rig, watch: MarkWatch, point: str) -> bool:
    """Hold the consumer at ``point``; True when it was seen there."""
    deadline = time.monotonic() + 3.0
    if point == "redis-step":
        await rig.node(0).client_pause(6000, all=False)  # WRITE: writes and scripts wait
        while time.monotonic() < deadline:
            if await _blocked_scripts(rig):
                return True
            await asyncio.sleep(0.05)
        return False
    if point == "commit":
        rig.broker.pause()
        moment = time.monotonic()
        return await watch.wait_progress(moment, 3.0) is not None  # applied, cannot commit
    return True


async def _disarm(rig: Rig, point: str) -> None:
    if point == "redis-step":
        await rig.node(0).client_unpause()
    elif point == "commit":
        rig.broker.resume()


async def kill9(options: SuiteOptions) -> ScenarioResult:
    result = ScenarioResult("kill9", "consumer kill -9 under load, repeated")
    started = time.monotonic()
    rng = random.Random(options.seed)
    kills = options.size(3, 9)
    rate = options.size(500.0, 800.0)
    items = workload(options, int(rate * (kills * 12 + 10)), options.size(150, 500), "k")
    async with (
        open_rig("kill9", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        stop = asyncio.Event()
        producing = asyncio.create_task(driver.send_paced(items, rate, stop=stop))
        consumer = rig.spawn_consumer()
        resumes: list[float | None] = []
        landed: dict[str, int] = {}
        for k in range(kills):
            moved = await watch.wait_progress(time.monotonic(), 60)
            if not result.require(moved is not None, f"kill {k}: the consumer made no progress"):
                alive_or_fail(result, consumer)
                break
            await asyncio.sleep(rng.uniform(0.1, 1.5))
            point = KILL_POINTS[k % len(KILL_POINTS)]
            seen = await _arm(rig, watch, point)
            consumer.kill()
            await _disarm(rig, point)
            key = point if seen else f"{point} (not confirmed)"
            landed[key] = landed.get(key, 0) + 1
            await asyncio.sleep(0.3)  # a script the dead process had sent runs now, not later
            restarted = time.monotonic()
            consumer = rig.spawn_consumer()
            resumes.append(await watch.wait_progress(restarted, 90))
        await asyncio.sleep(1.0)
        stop.set()
        result.counts["records sent"] = await producing
        result.counts["kills (where they landed)"] = landed
        caught = await converge(watch, driver, 180)
        result.require(caught is not None, "the consumer did not catch up with the input")
        result.require(all(r is not None for r in resumes), f"no resume after some kill: {resumes}")
        result.counts["resume times (s)"] = [None if r is None else round(r, 2) for r in resumes]
        result.resume_s = max((r for r in resumes if r is not None), default=None)
        result.timings["caught up after the last record (s)"] = caught
        result.figure = f"time to resume after restart: {seconds(resumes)}"
        alive_or_fail(result, consumer)
        await consumer.terminate()
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)


async def sigterm(options: SuiteOptions) -> ScenarioResult:
    """SIGTERM under load: exit within 5 s, applied offsets committed, the group takes over."""
    result = ScenarioResult("sigterm", "SIGTERM under load")
    started = time.monotonic()
    rounds = options.size(1, 3)
    rate = options.size(500.0, 800.0)
    items = workload(options, int(rate * (rounds * 25 + 10)), options.size(150, 500), "t")
    exits: list[float | None] = []
    takeovers: list[float | None] = []
    logs_assignments = options.runtime == "aiokafka"  # its "partitions assigned" log lines
    async with (
        open_rig("sigterm", options.workdir, options.rig()) as rig,
        driving(rig) as (driver, watch),
    ):
        stop = asyncio.Event()
        producing = asyncio.create_task(driver.send_paced(items, rate, stop=stop))
        first = rig.spawn_consumer("a")
        for n in range(rounds):
            # alone: after the exit, every partition's commit equals its Redis watermark + 1
            await watch.wait_progress(time.monotonic(), 60)
            await asyncio.sleep(0.5 + (n % 3) * 0.37)
            took = await first.terminate(within=15)
            exits.append(took)
            result.require(
                first.returncode() == 0, f"exit status {first.returncode()}: {first.log_tail(400)}"
            )
            marks = await rig.store().partition_watermarks(rig.topic)
            committed = await committed_offsets(
                rig.broker.bootstrap, rig.group, rig.topic, rig.partitions
            )
            wanted = {p: o + 1 for p, o in marks.items()}
            result.require(
                committed == wanted, f"round {n}: committed {committed} != watermarks + 1 {wanted}"
            )
            # two members: the survivor takes over the stopped member's partitions
            first = rig.spawn_consumer("a")
            second = rig.spawn_consumer("b")
            if logs_assignments:
                split = await wait_split(rig.topic, rig.partitions, [first, second], 60)
                result.require(split, f"round {n}: the two members did not split the partitions")
            else:
                await asyncio.sleep(8.0)
            await watch.wait_progress(time.monotonic(), 60)
            owned = assigned(second.log_tail(20_000), rig.topic) if logs_assignments else set()
            result.require(
                bool(owned) or not logs_assignments,
                f"round {n}: the second member got no partition",
            )
            owned = owned or set(range(rig.partitions))
            took = await second.terminate(within=15)
            exited_at = time.monotonic()
            pending = driver.last_offsets()
            exits.append(took)
            result.require(second.returncode() == 0, f"exit status {second.returncode()}")
            takeover = None
            deadline = time.monotonic() + 60
            while takeover is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                takeover = watch.pause_after(
                    exited_at, {p: pending[p] for p in owned if p in pending}
                )
            takeovers.append(takeover)
        stop.set()
        result.counts["records sent"] = await producing
        caught = await converge(watch, driver, 180)
        result.require(caught is not None, "the consumer did not catch up with the input")
        result.require(
            all(e is not None and e < 5.0 for e in exits), f"exit times {exits} (limit 5 s)"
        )
        result.require(all(t is not None for t in takeovers), f"takeover times {takeovers}")
        result.counts["exit times (s)"] = [None if e is None else round(e, 2) for e in exits]
        result.counts["takeover times (s)"] = [
            None if t is None else round(t, 2) for t in takeovers
        ]
        result.resume_s = max((t for t in takeovers if t is not None), default=None)
        result.figure = (
            f"exit after SIGTERM: {seconds(exits)}; "
            f"the stopped member's partitions moving again: {seconds(takeovers)}"
        )
        await first.terminate()
        await verify_log(rig, driver, result)
        await oracle_check(rig, driver, result)
    return result.finish(started)
