"""Each fault scenario in quick mode: an exact oracle match plus its figure.

The CI subset runs here by default; the scenarios marked ``slow`` run with
``pytest -m slow tests/faults`` (or in ``recstream faults``).
"""

from __future__ import annotations

import pytest
from faults.scenarios import backlog, broker, crash, hotkeys, inputs, outages, rebalance, rebuild
from faults.scenarios.common import SuiteOptions

from .conftest import explain

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


async def test_kill_9_at_random_points_and_in_the_redis_step_and_before_the_commit(
    options: SuiteOptions,
) -> None:
    result = await crash.kill9(options)
    assert result.passed, explain(result)
    assert result.resume_s is not None
    landed = result.counts["kills (where they landed)"]
    assert sum(landed.values()) == 3
    assert landed.get("redis-step") == 1  # seen blocked in CLIENT PAUSE with its script


async def test_sigterm_exits_quickly_with_the_applied_offsets_committed(
    options: SuiteOptions,
) -> None:
    result = await crash.sigterm(options)
    assert result.passed, explain(result)
    assert max(result.counts["exit times (s)"]) < 5.0


async def test_poison_records_each_land_once_in_the_dlq(options: SuiteOptions) -> None:
    result = await inputs.poison(options)
    assert result.passed, explain(result)
    reasons = result.counts["dead-letter reasons"]
    assert set(reasons) == {
        "invalid_json", "schema_violation", "unknown_event_type", "oversize", "empty",
        "key_mismatch", "future_event",
    }  # fmt: skip


async def test_duplicates_count_once_inside_the_window_and_again_outside(
    options: SuiteOptions,
) -> None:
    result = await inputs.duplicates(options)
    assert result.passed, explain(result)
    assert result.counts["duplicates dropped inside the window (oracle)"] > 0


async def test_late_out_of_order_future_and_skewed_events_follow_the_rule(
    options: SuiteOptions,
) -> None:
    result = await inputs.lateness(options)
    assert result.passed, explain(result)


async def test_a_lost_redis_is_detected_and_rebuilt_exactly(options: SuiteOptions) -> None:
    result = await rebuild.redis_lost(options)
    assert result.passed, explain(result)


async def test_a_killed_redis_primary_restarted_from_its_aof_converges_exactly(
    options: SuiteOptions,
) -> None:
    result = await outages.redis_primary_killed(options)
    assert result.passed, explain(result)


async def test_a_hung_redis_pauses_the_consumer_and_the_api_answers(options: SuiteOptions) -> None:
    result = await outages.redis_hang(options)
    assert result.passed, explain(result)


@pytest.mark.slow
async def test_a_stopped_redis_pauses_the_consumer_and_the_api_answers(
    options: SuiteOptions,
) -> None:
    result = await outages.redis_stop(options)
    assert result.passed, explain(result)


@pytest.mark.slow
async def test_a_broker_restart_needs_no_manual_action(options: SuiteOptions) -> None:
    result = await broker.broker_restart(options)
    assert result.passed, explain(result)


@pytest.mark.slow
async def test_hot_keys_stay_within_their_caps(options: SuiteOptions) -> None:
    result = await hotkeys.hot_keys(options)
    assert result.passed, explain(result)


@pytest.mark.slow
@pytest.mark.cluster_ci
async def test_rebalance_one_three_one_under_load(options: SuiteOptions) -> None:
    result = await rebalance.rebalance(options)
    assert result.passed, explain(result)


@pytest.mark.slow
async def test_backlog_catch_up_keeps_the_api_responsive(options: SuiteOptions) -> None:
    result = await backlog.backlog(options)
    assert result.passed, explain(result)
