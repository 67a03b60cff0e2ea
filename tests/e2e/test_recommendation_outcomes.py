"""End to end: a user in an A/B experiment is shown recommendations by the API process,
clicks one, and the outcome counters of the user's variant, in the experiment's report,
change exactly once, through a ``kill -9`` of the consumer right after it applied the click.

Real processes (the fault suite's rig): a redis-server, a Tansu broker, the consumer and the
API. The API writes the impression record to the topic itself; the click is tracked through
the API with the list's ``recommendation_id``. After the consumer is killed and a new one
has read the topic again, the whole keyspace (counters included) equals the oracle's
replay of the topic.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from faults.api_probe import admin_token
from faults.checker import compare
from faults.driver import event_record, last_offsets, read_log
from faults.oracle import expect
from faults.probes import committed_offsets
from faults.rig import RigOptions, open_rig
from faults.scenarios.common import driving
from faults.snapshot import redis_snapshot
from faults.stack import Child, free_port

from recstream.scoring.experiments import Experiment, assign

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

EXPERIMENT = Experiment.model_validate(
    {
        "id": "ab",
        "variants": [
            {"name": "control", "share": 0.5},
            {"name": "sequential", "share": 0.5, "weights": {"content": 0, "sequential": 1}},
        ],
    }
)

PREFIX = "/api/behavioral-ml"
WAIT = 60.0


def _view(user: str, product: str, at: datetime, n: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"{user}-{n}",
        "event_type": "product_view",
        "user_id": user,
        "occurred_at": at.isoformat(),
        "product_id": product,
        **fields,
    }


async def _until(check: Any, what: str) -> Any:
    """``await check()`` until it returns something true, within ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    pytest.fail(f"{what} within {WAIT:g} s")


async def _wait_started(client: httpx.AsyncClient, child: Child) -> None:
    async def healthy() -> bool:
        try:
            return (await client.get("/health")).status_code == 200
        except httpx.HTTPError:
            assert child.alive(), child.log_tail(2000)
            return False

    await _until(healthy, "the API did not start")


async def test_a_click_on_a_recommendation_counts_once_through_a_consumer_kill(
    tmp_path: Path,
) -> None:
    admin = {"Authorization": f"Bearer {admin_token()}"}
    now = datetime.now(UTC) - timedelta(minutes=5)
    async with (
        open_rig("outcomes", tmp_path, RigOptions(partitions=3)) as rig,
        driving(rig) as (driver, watch),
    ):
        consumer = rig.spawn_consumer()
        # other shoppers went from p-1 to p-2 and p-3: what the blend will recommend
        history = [
            _view(f"o{u}", product, now + timedelta(seconds=10 * step), step)
            for u in range(6)
            for step, product in enumerate(["p-1", "p-2", "p-3"])
        ]
        await driver.send([event_record(e) for e in history])
        await watch.wait_caught_up(driver.last_offsets(), WAIT)
        port = free_port()
        api_child = rig.spawn_api(port, RECSTREAM_EXPERIMENTS=f"[{EXPERIMENT.model_dump_json()}]")
        variant = f"ab:{assign(EXPERIMENT, 'shopper').name}"
        base = f"http://127.0.0.1:{port}{PREFIX}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as api:
            await _wait_started(api, api_child)
            user = "shopper"
            await driver.send([event_record(_view(user, "p-1", now + timedelta(minutes=1), 0))])
            listed = await api.post(
                "/recommendations",
                json={"limit": 5, "user_id": user, "context": {"product_id": "p-1"}},
                headers=admin,
            )
            assert listed.status_code == 200, listed.text
            body = listed.json()
            assert body["variant"] == variant
            ids = [i["id"] for i in body["items"]]
            assert "p-2" in ids, body
            assert "p-1" not in ids, "the item on screen"

            async def outcomes() -> dict[str, Any] | None:
                """The shopper's variant's counters in the experiment's report, once shown."""
                report = await api.get(
                    "/recommendation-outcomes",
                    params={"days": 1, "experiment": "ab"},
                    headers=admin,
                )
                assert report.status_code == 200, report.text
                found = {v["variant"]: v["total"] for v in report.json()["variants"]}
                assert set(found) == {"ab:control", "ab:sequential"}
                return found[variant] if found[variant]["impressions"] else None

            shown = await _until(outcomes, "the impression was not counted")
            assert (shown["impressions"], shown["items"], shown["click"]["count"]) == (
                1,
                len(ids),
                0,
            )

            click = _view(
                user,
                "p-2",
                datetime.now(UTC),
                1,
                recommendation_id=body["recommendation_id"],
            )
            tracked = await api.post("/track-interaction", json=click, headers=admin)
            assert tracked.status_code == 202, tracked.text

            async def clicked() -> dict[str, Any] | None:
                total = await outcomes()
                return total if total and total["click"]["count"] else None

            total = await _until(clicked, "the click was not counted")
            consumer.kill()  # right after the click's batch: its offset may be uncommitted
            position = ids.index("p-2") + 1
            assert total["click"] == {
                **total["click"],
                "count": 1,
                "rate": 1.0,
                "by_position": {str(position): 1},
            }

            consumer = rig.spawn_consumer()
            later = _view("o0", "p-3", datetime.now(UTC), 99)
            await driver.send([event_record(later)])
            records = await read_log(rig.broker.bootstrap, rig.topic, len(driver.records) + 2)
            ends = last_offsets(records)

            async def committed() -> bool:  # the new consumer read the topic to its end
                found = await committed_offsets(
                    rig.broker.bootstrap, rig.group, rig.topic, rig.options.partitions
                )
                return all(found.get(p, 0) > end for p, end in ends.items())

            await _until(committed, "the new consumer did not read the topic to its end")
            again = await outcomes()
        assert again == total, "the counters changed after the restart"
        assert consumer.alive(), consumer.log_tail(2000)
        kinds = [r.value for r in records if r.value and b"recommendation_shown" in r.value]
        assert len(kinds) == 1, "one impression record on the topic"
        expected = await expect(records, rig.config, rig.keyspace, erasure_log=rig.erasure_log)
        check = compare(expected.snapshot, await redis_snapshot(rig.client, rig.keyspace))
        assert check.exact, check.describe()
