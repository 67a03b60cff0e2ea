"""The outcome report's statistics (readmodel/outcomes.py): the Wilson interval, the
difference of two rates, and revenue per list with its interval from the counters."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from recstream.model.attribution import REVENUE_SQUARE_CAP_CENTS, revenue_square
from recstream.readmodel.outcomes import (
    Z95,
    Outcomes,
    Rate,
    difference,
    revenue_difference,
    wilson,
)


def test_the_wilson_interval_matches_its_closed_form() -> None:
    low, high = wilson(8, 100)
    # the textbook values for 8 of 100 at 95%
    assert (round(low, 4), round(high, 4)) == (0.0411, 0.1500)
    assert wilson(0, 50)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson(50, 50)[1] == pytest.approx(1.0)
    assert wilson(0, 0) == (0.0, 1.0)


def test_the_difference_of_two_rates_has_a_wald_interval() -> None:
    value, (low, high) = difference(Rate(60, 500), Rate(40, 500))
    assert value == pytest.approx(0.04)
    half = Z95 * math.sqrt(0.12 * 0.88 / 500 + 0.08 * 0.92 / 500)
    assert (low, high) == pytest.approx((0.04 - half, 0.04 + half))


def counters_of(revenues: list[int]) -> Outcomes:
    """The counters the consumer keeps for lists with these revenues (cents), each list's
    purchases credited one at a time as the fold does."""
    squares = 0
    for cents in revenues:
        kept = 0
        for part in (cents // 3, cents - cents // 3):  # two purchases on the list
            squares += revenue_square(kept + part) - revenue_square(kept)
            kept += part
    capped = sum(min(r, REVENUE_SQUARE_CAP_CENTS) for r in revenues)
    n = len(revenues)
    return Outcomes(n, 10 * n, {}, {}, sum(revenues), squares, capped)


def test_revenue_per_list_has_the_interval_of_the_lists_revenues() -> None:
    rng = random.Random(7)
    revenues = [rng.choice((0, 0, 0, 0, 1999, 4500, 12000)) for _ in range(2000)]
    outcomes = counters_of(revenues)
    mean = statistics.fmean(revenues)
    error = statistics.stdev(revenues) / math.sqrt(len(revenues))
    assert outcomes.revenue_per_impression == pytest.approx(mean)
    # the squares are floored per list (in currency units): within a cent of the exact error
    assert outcomes.revenue_standard_error == pytest.approx(error, abs=0.01)
    assert outcomes.revenue_interval is not None
    low, high = outcomes.revenue_interval
    assert (low, high) == pytest.approx((mean - Z95 * error, mean + Z95 * error), abs=0.05)
    better = counters_of([r + 500 if r else 0 for r in revenues])
    value, interval = revenue_difference(better, outcomes)
    assert value == pytest.approx(500 * sum(1 for r in revenues if r) / len(revenues))
    assert interval is not None
    assert interval[0] < value < interval[1]


def test_a_huge_list_revenue_is_capped_in_the_variance_only() -> None:
    huge = counters_of([10 * REVENUE_SQUARE_CAP_CENTS, 0])
    assert huge.revenue_cents == 10 * REVENUE_SQUARE_CAP_CENTS
    assert huge.revenue_squares == (REVENUE_SQUARE_CAP_CENTS // 100) ** 2
    assert 2**63 // huge.revenue_squares > 900_000_000
    # the variance of the capped revenues (0 and the cap), not a negative one clamped to 0
    spread = REVENUE_SQUARE_CAP_CENTS / math.sqrt(2)
    assert huge.revenue_standard_error == pytest.approx(spread / math.sqrt(2))
    assert counters_of([]).revenue_interval == (0.0, 0.0)


def test_revenue_counted_before_the_variance_was_kept_has_no_interval() -> None:
    old = Outcomes(100, 1000, {}, {}, revenue_cents=50_000)
    assert old.revenue_interval is None
    value, interval = revenue_difference(old, counters_of([0, 900]))
    assert (value, interval) == (500.0 - 450.0, None)
