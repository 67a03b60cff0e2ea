"""The faust runtime under the faults that concern it alone (scenarios take ``--runtime``)."""

from __future__ import annotations

import asyncio
import time

import pytest
from faults.rig import RigOptions, open_rig
from faults.scenarios.common import SuiteOptions, driving, workload

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


async def test_the_faust_consumer_exits_within_5_s_of_sigterm_under_load(
    options: SuiteOptions,
) -> None:
    items = workload(options, 6000, 60, "q")
    async with (
        open_rig("faust-stop", options.workdir, RigOptions(runtime="faust")) as rig,
        driving(rig) as (driver, watch),
    ):
        stop = asyncio.Event()
        producing = asyncio.create_task(driver.send_paced(items, 800.0, stop=stop))
        consumer = rig.spawn_consumer()
        assert await watch.wait_progress(time.monotonic(), 90) is not None
        await asyncio.sleep(0.5)
        took = await consumer.terminate(within=10)
        stop.set()
        await producing
        assert took is not None, f"no exit 10 s after SIGTERM: {consumer.log_tail(800)}"
        assert took < 5.0
        assert consumer.returncode() == 0
