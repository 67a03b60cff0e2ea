"""The oracle and the checker: they find every kind of difference, and only real ones."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from faults.checker import compare
from faults.deadletters import compare_dead_letters
from faults.oracle import Expectation, expect, replay
from faults.probes import lost_state
from faults.rig import EXACT_CORE
from faults.scenarios.common import SuiteOptions, events
from faults.snapshot import Snapshot, redis_snapshot

from recstream.apply.batch import DeadLetter, RawRecord
from recstream.contract.events import validate_event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.records import RecordLog
from recstream.platform.redis import redis_client as open_redis
from recstream.store.redis import RedisStore

CONFIG = CoreConfig(**EXACT_CORE)


@pytest.fixture(scope="module")
def records(datasets: Path) -> list[RawRecord]:
    """2,000 events of real sessions laid out on 4 partitions."""
    options = SuiteOptions(workdir=Path("."), datasets=datasets, quick=True)
    log = RecordLog("interactions", 4)
    stamp = int(time.time() * 1000)
    return [
        log.append(validate_event(e), stamp + n)
        for n, e in enumerate(events(options, 2000, 60, "o"))
    ]


@pytest.fixture(scope="module")
async def expected(records: list[RawRecord]) -> Expectation:
    return await expect(records, CONFIG, Keyspace(prefix="oracle"))


def test_the_workload_has_unique_ids_and_real_sessions(datasets: Path) -> None:
    options = SuiteOptions(workdir=Path("."), datasets=datasets, quick=True)
    built = events(options, 3000, 80, "w")
    assert len({e["event_id"] for e in built}) == len(built) == 3000
    assert len({e["user_id"] for e in built}) > 60
    products = {e.get("product_id") for e in built} - {None}
    assert len(products) > 500  # real item ids from the datasets, not a handful of synthetic ones
    assert [e["occurred_at"] for e in built] == sorted(e["occurred_at"] for e in built)


async def test_the_same_records_in_other_batches_give_the_same_state(
    records: list[RawRecord], expected: Expectation
) -> None:
    other = await expect(records, CONFIG, Keyspace(prefix="oracle"), batch_size=333)
    check = compare(expected.snapshot, other.snapshot)
    assert check.exact, check.summary()
    assert check.max_score_deviation < 1e-12  # only float summation order differs
    exact = compare(other.snapshot, other.snapshot, tolerance=0.0, exact_marks=True)
    assert exact.exact


def _copy(snapshot: Snapshot) -> Snapshot:
    return Snapshot(
        users={u: s.copy() for u, s in snapshot.users.items()},
        zsets={k: dict(v) for k, v in snapshot.zsets.items()},
        hashes={k: dict(v) for k, v in snapshot.hashes.items()},
        strings=dict(snapshot.strings),
    )


def test_a_missing_user_and_a_lower_score_are_lost(expected: Expectation) -> None:
    actual = _copy(expected.snapshot)
    del actual.users[next(iter(actual.users))]
    key = next(k for k in actual.zsets if ":tr1:" in k)
    member = next(iter(actual.zsets[key]))
    actual.zsets[key][member] *= 0.999
    check = compare(expected.snapshot, actual)
    assert (check.lost, check.double_counted, check.mismatched) == (2, 0, 0), check.summary()


def test_an_event_applied_twice_is_double_counted(expected: Expectation) -> None:
    actual = _copy(expected.snapshot)
    state = actual.users[next(iter(actual.users))]
    state.total_events += 1
    state.counts["product_view"] = state.counts.get("product_view", 0) + 1
    key = next(k for k in actual.zsets if k.endswith(":pop"))
    member = next(iter(actual.zsets[key]))
    actual.zsets[key][member] *= 1.001
    check = compare(expected.snapshot, actual)
    assert check.lost == 0
    assert check.double_counted == 2, check.summary()


def test_a_different_session_or_watermark_is_a_mismatch_or_a_loss(expected: Expectation) -> None:
    actual = _copy(expected.snapshot)
    state = next(s for s in actual.users.values() if s.session is not None)
    assert state.session is not None
    state.session.items.reverse()
    state.session.items.append("p:elsewhere")
    marks = next(k for k in actual.hashes if "{wm}:partitions:" in k)
    actual.hashes[marks]["0"] = str(int(actual.hashes[marks]["0"]) - 1)
    check = compare(expected.snapshot, actual)
    assert check.mismatched == 1
    assert check.lost == 1
    assert {d.area for d in check.differences} == {"user sessions", "partition watermark"}


def test_a_shard_watermark_must_lie_between_its_last_contribution_and_the_partition_end(
    expected: Expectation,
) -> None:
    actual = _copy(expected.snapshot)
    key = next(k for k in actual.hashes if ":wm:" in k)
    partition, floor = next(iter(actual.hashes[key].items()))
    actual.hashes[key][partition] = str(int(floor) - 1)
    assert compare(expected.snapshot, actual).lost == 1
    ceiling = expected.snapshot.hashes[next(k for k in actual.hashes if "{wm}:partitions:" in k)]
    actual.hashes[key][partition] = ceiling[partition]
    assert compare(expected.snapshot, actual).exact
    actual.hashes[key][partition] = str(int(ceiling[partition]) + 1)
    assert compare(expected.snapshot, actual).mismatched == 1


@pytest.mark.integration
async def test_a_replay_into_redis_matches_the_oracle_exactly_and_tampering_shows(
    records: list[RawRecord], redis_url: str
) -> None:
    keyspace = Keyspace(prefix=f"oracle{time.time_ns() % 10**9}")
    client = open_redis(redis_url)
    try:
        await replay(RedisStore(client, keyspace), records, CONFIG, 250)
        same_batches = await expect(records, CONFIG, keyspace, batch_size=250)
        actual = await redis_snapshot(client, keyspace)
        assert compare(same_batches.snapshot, actual, tolerance=0.0, exact_marks=True).exact
        one_by_one = await expect(records, CONFIG, keyspace)
        assert compare(one_by_one.snapshot, actual).exact
        user = next(iter(actual.users))
        await client.delete(keyspace.user_state(user))
        key = next(k for k in actual.zsets if ":tr1:" in k)
        member = next(iter(actual.zsets[key]))
        await client.zincrby(key, 1.0, member)  # log2 of the sum: the sum counted twice
        check = compare(one_by_one.snapshot, await redis_snapshot(client, keyspace))
        assert (check.lost, check.double_counted) == (1, 1), check.summary()
    finally:
        async for key in client.scan_iter(match=f"{keyspace.prefix}:*"):
            await client.delete(key)
        await client.aclose()


def test_lost_state_is_a_watermark_behind_its_committed_offset() -> None:
    assert lost_state({0: 99, 1: 50}, {0: 100, 1: 51}) == {}
    assert lost_state({1: 50}, {0: 100, 1: 51, 2: 0}) == {0: (-1, 100)}
    assert lost_state({0: 10}, {0: 100}) == {0: (10, 100)}


def test_the_dead_letter_check_wants_every_letter_once_with_its_bytes() -> None:
    bad = RawRecord("t", 0, 5, 0, b"u1", b"{broken", ())
    letter = DeadLetter(bad, "invalid_json", "x")
    headers = (
        ("dlq.reason", b"invalid_json"), ("dlq.source.topic", b"t"),
        ("dlq.source.partition", b"0"), ("dlq.source.offset", b"5"),
    )  # fmt: skip
    copy = RawRecord("t.dlq", 0, 0, 0, b"u1", b"{broken", headers)
    tags = {(0, 5): "poison:invalid_json"}
    assert compare_dead_letters([letter], [copy], tags).exact
    twice = compare_dead_letters([letter], [copy, copy], tags)
    assert twice.copies == 1
    assert not twice.exact
    altered = RawRecord("t.dlq", 0, 0, 0, b"u1", b"{other", headers)
    assert compare_dead_letters([letter], [altered], tags).problems
    assert compare_dead_letters([letter], [], tags).found == 0
