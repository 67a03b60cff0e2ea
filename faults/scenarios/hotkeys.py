"""Hot keys: one user with a large share of the traffic, one item in most sessions.

The same number of records is consumed twice from a backlog, once uniform and
once skewed, each by a fresh consumer with the default caps. The skewed run must
keep every structure within its cap and its rate within a factor of the uniform
one. The caps make the hot user's and the hot item's structures depend on where
batches end (a trimmed member loses its score), so the oracle comparison covers
the other users' states, which stay exact.
"""

from __future__ import annotations

import time
from typing import Any

from faults.caps import over_cap, structure_sizes
from faults.checker import CheckResult, compare_users
from faults.oracle import expect
from faults.report import ScenarioResult
from faults.rig import open_rig
from faults.scenarios.common import SuiteOptions, driving, verify_log, workload
from faults.snapshot import redis_snapshot

MIN_RATE_RATIO = 1 / 3  # the skewed run keeps at least a third of the uniform rate


async def _drain(
    options: SuiteOptions, name: str, spec: dict[str, Any], result: ScenarioResult
) -> float:
    """Records/s of one consumer draining the backlog (from its first applied batch)."""
    count = options.size(6000, 24000)
    items = workload(options, count, options.size(150, 400), name[0], **spec)
    async with (
        open_rig(f"hot-{name}", options.workdir, options.rig(core={})) as rig,
        driving(rig) as (driver, watch),
    ):
        for start in range(0, len(items), 2000):
            await driver.send(items[start : start + 2000])
        spawned = time.monotonic()
        consumer = rig.spawn_consumer()
        first = await watch.wait_progress(spawned, 60)
        caught = await watch.wait_caught_up(driver.last_offsets(), 300)
        done_at = time.monotonic()
        await consumer.terminate()
        if first is None or caught is None:
            result.failures.append(f"{name}: the backlog was not drained")
            return 0.0
        rate = len(items) / max(done_at - (spawned + first), 1e-3)
        result.timings[f"{name}: drain time from the first batch (s)"] = done_at - spawned - first
        actual = await redis_snapshot(rig.client, rig.keyspace)
        sizes = structure_sizes(actual, rig.config)
        result.counts[f"{name}: largest structure / cap"] = {
            k: f"{s}/{c}" for k, (s, c) in sizes.items()
        }
        result.require(not over_cap(sizes), f"{name}: over the cap: {over_cap(sizes)}")
        if spec:
            expectation = await expect(
                driver.records, rig.config, rig.keyspace, erasure_log=rig.erasure_log
            )
            hot = f"{name[0]}hot"
            users = CheckResult()
            cold = {u: s for u, s in expectation.snapshot.users.items() if u != hot}
            compare_users(cold, {u: s for u, s in actual.users.items() if u != hot}, users)
            result.add_check("the other users' states vs oracle", users)
            state = actual.users.get(hot)
            wanted = expectation.snapshot.users[hot].total_events
            result.require(
                state is not None and state.total_events == wanted,
                f"hot user counts {state and state.total_events} != {wanted}",
            )
            if state is not None:
                result.counts["hot user: events / stored state bytes"] = (
                    f"{state.total_events} / {len(state.to_json())}"
                )
            result.counts["hot user share of records"] = round(wanted / len(items), 3)
        await verify_log(rig, driver, result)
        return rate


async def hot_keys(options: SuiteOptions) -> ScenarioResult:
    result = ScenarioResult("hot-keys", "hot user and hot item")
    started = time.monotonic()
    uniform = await _drain(options, "uniform", {}, result)
    skewed = await _drain(options, "skewed", {"hot_user_share": 0.3, "hot_item_share": 0.7}, result)
    ratio = skewed / uniform if uniform else 0.0
    result.counts["drain rate uniform / skewed (records/s)"] = f"{uniform:.0f} / {skewed:.0f}"
    result.require(ratio >= MIN_RATE_RATIO, f"skewed rate is {ratio:.2f} of uniform")
    result.figure = (
        f"skewed/uniform drain rate {ratio:.2f} ({skewed:.0f} vs {uniform:.0f} records/s); "
        + ("every structure within its cap" if not result.failures else "see failures")
    )
    return result.finish(started)
