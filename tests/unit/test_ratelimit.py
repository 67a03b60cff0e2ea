"""The token bucket and the per-caller rate limiter, with an explicit clock."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recstream_api.auth import Principal
from recstream_api.exceptions import RateLimitedError
from recstream_api.ratelimit import (
    Bucket,
    RateLimiter,
    Rule,
    retry_after_seconds,
    route_kind,
    take,
)
from recstream_api.settings import RateLimitSettings

RULE = Rule(per_second=2.0, burst=5.0)
ANA = Principal("user:ana", "ana", False, frozenset({"read", "track"}))
BEN = Principal("user:ben", "ben", False, frozenset({"read", "track"}))
SHOP = Principal("api-key:shop", None, False, frozenset({"track"}))


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **settings: float | int | bool) -> RateLimiter:
    defaults: dict[str, float | int | bool] = {
        "track_per_second": 2.0,
        "track_burst": 5,
        "query_per_second": 1.0,
        "query_burst": 3,
        "api_key_factor": 10.0,
    }
    return RateLimiter(RateLimitSettings.model_validate({**defaults, **settings}), clock=clock)


# --- the bucket -------------------------------------------------------------------------


def test_a_new_caller_has_a_full_bucket_then_waits_for_a_refill() -> None:
    bucket = None
    for _ in range(5):
        bucket, wait = take(bucket, RULE, now=0.0)
        assert wait == 0.0
    bucket, wait = take(bucket, RULE, now=0.0)
    assert wait == pytest.approx(0.5)  # one token at 2/s
    assert bucket.tokens == 0.0
    bucket, wait = take(bucket, RULE, now=0.25)
    assert wait == pytest.approx(0.25)  # half a token is back, nothing was taken
    bucket, wait = take(bucket, RULE, now=0.5)
    assert wait == 0.0
    assert bucket == Bucket(tokens=0.0, at=0.5)


def test_the_bucket_never_holds_more_than_the_burst() -> None:
    bucket, _ = take(None, RULE, now=0.0)
    bucket, _ = take(bucket, RULE, now=3600.0)
    assert bucket.tokens == RULE.burst - 1


def test_a_clock_going_back_refills_nothing() -> None:
    bucket = Bucket(tokens=0.0, at=100.0)
    bucket, wait = take(bucket, RULE, now=50.0)
    assert wait == pytest.approx(0.5)
    assert bucket.tokens == 0.0


@given(
    st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=1, max_size=200),
    st.floats(min_value=0.1, max_value=100.0),
    st.integers(min_value=1, max_value=50),
)
def test_admitted_requests_never_exceed_burst_plus_refill(
    gaps: list[float], per_second: float, burst: int
) -> None:
    rule = Rule(per_second, float(burst))
    bucket, now, admitted = None, 0.0, 0
    for gap in gaps:
        now += gap
        bucket, wait = take(bucket, rule, now)
        admitted += wait == 0.0
        assert 0.0 <= bucket.tokens <= rule.burst
        assert admitted <= burst + now * per_second + 1e-9


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert retry_after_seconds(0.01) == 1
    assert retry_after_seconds(1.0) == 1
    assert retry_after_seconds(1.2) == 2


# --- the limiter ------------------------------------------------------------------------


def test_a_caller_is_refused_with_retry_after_when_the_bucket_is_empty() -> None:
    clock = Clock()
    limits = limiter(clock)
    for _ in range(3):
        limits.check(ANA, "query")
    with pytest.raises(RateLimitedError) as refused:
        limits.check(ANA, "query")
    assert refused.value.retry_after == 1
    assert refused.value.details == {"limit": "query", "retry_after_seconds": 1}
    clock.now += 1.0
    limits.check(ANA, "query")


def test_callers_and_route_kinds_have_buckets_of_their_own() -> None:
    limits = limiter(Clock())
    for _ in range(3):
        limits.check(ANA, "query")
    with pytest.raises(RateLimitedError):
        limits.check(ANA, "query")
    limits.check(BEN, "query")  # another user
    for _ in range(5):
        limits.check(ANA, "track")  # another kind of route
    with pytest.raises(RateLimitedError, match="track"):
        limits.check(ANA, "track")


def test_an_api_key_has_larger_buckets() -> None:
    clock = Clock()
    limits = limiter(clock)
    for _ in range(50):  # 5 x 10
        limits.check(SHOP, "track")
    with pytest.raises(RateLimitedError):
        limits.check(SHOP, "track")
    clock.now += 0.0625  # 20 tokens/s: 1.25 are back
    limits.check(SHOP, "track")
    assert limits.rule("track", SHOP) == Rule(20.0, 50.0)


def test_limits_can_be_switched_off() -> None:
    limits = limiter(Clock(), enabled=False)
    for _ in range(1000):
        limits.check(ANA, "query")
    assert len(limits) == 0


def test_the_bucket_map_is_bounded_and_drops_the_least_recent() -> None:
    clock = Clock()
    limits = limiter(clock, max_clients=2)
    for _ in range(3):
        limits.check(ANA, "query")
    limits.check(BEN, "query")
    limits.check(SHOP, "query")  # ana's bucket is the least recent: dropped
    assert len(limits) == 2
    limits.check(ANA, "query")  # so ana starts again with a full bucket


def test_the_tracking_route_has_the_track_kind() -> None:
    assert route_kind(SimpleNamespace(tags=["tracking"])) == "track"
    assert route_kind(SimpleNamespace(tags=["recommendations"])) == "query"
    assert route_kind(None) == "query"


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        RateLimitSettings(track_per_second=0)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        RateLimitSettings(query_burst=0)
