"""Ranking metrics on hand-made rankings."""

from __future__ import annotations

import math

import pytest

from recstream.offline.evaluation.metrics import NextItemMetrics, TopNMetrics, percentile, rank_of


def test_rank_of_is_one_based_and_bounded_by_k() -> None:
    ranking = ["a", "b", "c", "d"]
    assert rank_of("a", ranking, 3) == 1
    assert rank_of("c", ranking, 3) == 3
    assert rank_of("d", ranking, 3) is None
    assert rank_of("z", ranking, 10) is None


def test_next_item_metrics_at_every_cut_off() -> None:
    metrics = NextItemMetrics(k=3)
    assert metrics.add(["t", "x", "y"], "t") == 1
    assert metrics.add(["x", "y", "t"], "t") == 3
    assert metrics.add(["x", "y", "z", "t"], "t") is None  # rank 4 is beyond k
    assert metrics.add([], "t") is None  # an empty list is a miss, still a case
    assert metrics.cases == 4
    assert metrics.hit_rate(1) == pytest.approx(1 / 4)
    assert metrics.hit_rate(3) == pytest.approx(2 / 4)
    assert metrics.mrr(1) == pytest.approx(1 / 4)
    assert metrics.mrr(3) == pytest.approx((1 + 1 / 3) / 4)
    assert metrics.ndcg(3) == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert metrics.ndcg(2) == pytest.approx(1 / 4)


def test_coverage_counts_items_recommended_in_the_top_k_only() -> None:
    metrics = NextItemMetrics(k=2)
    metrics.add(["a", "b", "c"], "a")
    metrics.add(["b", "d"], "a")
    assert metrics.recommended == {"a", "b", "d"}
    assert metrics.coverage(10) == pytest.approx(0.3)
    assert metrics.coverage(0) == 0.0


def test_no_cases_gives_zeros() -> None:
    metrics = NextItemMetrics(k=5)
    assert (metrics.hit_rate(5), metrics.mrr(5), metrics.ndcg(5)) == (0.0, 0.0, 0.0)


def test_percentile_interpolates() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 100) == 4.0
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile([], 50) == 0.0


def test_top_n_metrics() -> None:
    metrics = TopNMetrics(k=4)
    # two of three relevant items, at ranks 1 and 3
    assert metrics.add(["a", "x", "b", "y", "c"], {"a", "b", "c"}) == 2
    # nothing relevant in the list
    assert metrics.add(["x", "y"], {"z"}) == 0
    assert metrics.users == 2
    assert metrics.mean(metrics.precision_sum) == pytest.approx((2 / 4 + 0) / 2)
    assert metrics.mean(metrics.recall_sum) == pytest.approx((2 / 3 + 0) / 2)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.mean(metrics.ndcg_sum) == pytest.approx((1 + 1 / math.log2(4)) / ideal / 2)
    assert metrics.hits == 1
    assert metrics.coverage(8) == pytest.approx(4 / 8)  # a, x, b, y


def test_top_n_counts_a_repeated_item_once() -> None:
    metrics = TopNMetrics(k=2)
    assert metrics.add(["a", "a", "b"], {"a", "b"}) == 2
    assert metrics.mean(metrics.ndcg_sum) == pytest.approx(1.0)


def test_top_n_needs_relevant_items() -> None:
    with pytest.raises(ValueError, match="relevant"):
        TopNMetrics(k=3).add(["a"], set())


def test_hit_rates_split_by_revisits() -> None:
    metrics = NextItemMetrics(k=2)
    metrics.add(["a", "b"], "a", revisit=True)  # hit
    metrics.add(["x", "y"], "a", revisit=True)  # miss
    metrics.add(["c", "d"], "d")  # hit
    assert (metrics.revisit_cases, metrics.revisit_hits) == (2, 1)
    assert metrics.split_hit_rates() == (0.5, 1.0)
    assert NextItemMetrics(k=1).split_hit_rates() == (0.0, 0.0)
