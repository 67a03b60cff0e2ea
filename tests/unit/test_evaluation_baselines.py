"""The reference baselines on tiny hand-computed data, and on yoochoose-100k against the README.

Hand-computed cases of each method are in ``test_evaluation_baselines_*.py``; this
module has the shared toy data, most popular and V-SKNN, and the runs on
yoochoose-100k (which fail, not skip, without ../shared/datasets).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recstream.contract.events import EventType, validate_event
from recstream.offline.datasets import session_tsv_events
from recstream.offline.evaluation.baselines import VSKNN, MostPopular, build_baseline, top_items
from recstream.offline.evaluation.metrics import NextItemMetrics
from recstream.offline.evaluation.protocol import EventSession, group_sessions, session_cases

from .eventgen import make_event


def session(
    name: str, items: list[str], end_minute: float, user: str | None = None
) -> EventSession:
    """A session of product views, one a minute, the last at ``end_minute``."""
    start = end_minute - len(items) + 1
    owner = user or name
    events = tuple(
        validate_event(
            make_event(
                f"{name}-{i}", EventType.PRODUCT_VIEW, owner, minutes=start + i, product_id=item
            )
        )
        for i, item in enumerate(items)
    )
    return EventSession(owner, name, events)


TRAIN = [
    session("s1", ["A", "B"], 100),
    session("s2", ["B", "C"], 200),
    session("s3", ["A", "C", "D"], 300),
    session("s4", ["E"], 400),
]


def keys(*items: str) -> list[str]:
    return [f"p:{i}" for i in items]


def test_most_popular_counts_events_and_breaks_ties_by_item() -> None:
    model = MostPopular([*TRAIN, session("s5", ["C", "C"], 500)])
    assert model.recommend(keys("A"), 3) == keys("C", "A", "B")  # C 4; A, B 2 each
    assert model.recommend([], 10) == keys("C", "A", "B", "D", "E")


def test_vsknn_scores_by_position_weighted_overlap_and_recency_of_the_match() -> None:
    model = VSKNN(TRAIN)
    # weights A: 1/2, B: 1; similarities s1 (1/2 + 1) / 2, s2 1/2, s3 (1/2) / 2;
    # s3 matches only A, one step back: its vote is halved
    assert model.scores(keys("A", "B")) == pytest.approx(
        {"p:A": 0.75 + 0.125, "p:B": 0.75 + 0.5, "p:C": 0.5 + 0.125, "p:D": 0.125}
    )
    assert model.recommend(keys("A", "B"), 3) == keys("B", "A", "C")


def test_vsknn_keeps_the_k_most_similar_of_the_most_recent_sample() -> None:
    nearest = VSKNN(TRAIN, k=2)  # s1 and s2
    assert nearest.scores(keys("A", "B")) == pytest.approx({"p:A": 0.75, "p:B": 1.25, "p:C": 0.5})
    recent = VSKNN(TRAIN, sample_size=2)  # s3 and s2, the most recent with A or B
    assert recent.scores(keys("A", "B")) == pytest.approx(
        {"p:A": 0.125, "p:B": 0.5, "p:C": 0.625, "p:D": 0.125}
    )
    assert recent.recommend(keys("A", "B"), 4) == keys("C", "B", "A", "D")  # A = D: by id


def test_vsknn_a_repeat_takes_the_weight_of_its_last_position() -> None:
    model = VSKNN(TRAIN)
    scores = model.scores(keys("A", "B", "A"))
    # A at position 3 of 3 weighs 1, B 2/3: s1 shares both, s2 B, s3 A
    s1, s2, s3 = (1 + 2 / 3) / 2, (2 / 3) / 2, 1 / 2
    assert scores["p:B"] == pytest.approx(s1 + s2 / 2)  # s2 matches B two steps back
    assert scores["p:D"] == pytest.approx(s3)
    assert model.scores([]) == {}
    assert model.scores(keys("Z")) == {}


def test_top_items_drops_non_positive_scores() -> None:
    assert top_items({"a": 0.0, "b": 2.0, "c": 2.0, "d": -1.0, "e": 1.0}, 5) == ["b", "c", "e"]


def test_top_items_back_fills_the_excluded_from_further_down() -> None:
    scores = {"a": 3.0, "b": 2.0, "c": 2.0, "e": 1.0, "f": 0.0}
    assert top_items(scores, 2, exclude={"a"}) == ["b", "c"]
    assert top_items(scores, 3, exclude={"b", "x"}) == ["a", "c", "e"]
    assert top_items(scores, 5, exclude={"a"}) == ["b", "c", "e"]  # only three scored left


def test_most_popular_and_vsknn_exclude_and_back_fill() -> None:
    popular = MostPopular([*TRAIN, session("s5", ["C", "C"], 500)])
    assert popular.recommend([], 2, exclude=set(keys("C"))) == keys("A", "B")
    assert popular.recommend([], 10, exclude=keys("A", "E")) == keys("C", "B", "D")
    model = VSKNN(TRAIN)
    assert model.recommend(keys("A", "B"), 2, exclude=keys("B")) == keys("A", "C")
    assert model.recommend(keys("A", "B"), 9, exclude=keys("A")) == keys("B", "C", "D")


# ../shared/datasets/README.md, "Reference numbers on yoochoose-100k" (HR@20, MRR@20 in %)
README_ROWS = {
    "pop-baseline": (8.94, 2.64),
    "sr": (62.26, 34.66),
    "sknn": (64.62, 32.09),
    "vsknn": (68.21, 36.04),
}


@pytest.mark.slow
def test_baselines_reproduce_the_readme_rows_on_yoochoose(datasets: Path) -> None:
    folder = datasets / "yoochoose-100k"
    with (folder / "yoochoose-clicks-100k_train_full.txt").open() as handle:
        train = group_sessions(session_tsv_events(handle), 1800)
    with (folder / "yoochoose-clicks-100k_test.txt").open() as handle:
        test = group_sessions(session_tsv_events(handle), 1800)
    cases = [
        ([e.item_key or "" for e in c.history], c.target_item)
        for s in test
        for c in session_cases(s)
    ]
    assert len(cases) == 10_152
    measured = {}
    for name in README_ROWS:
        model = build_baseline(name, train)
        metrics = NextItemMetrics(k=20)
        for history, target in cases:
            metrics.add(model.recommend(history, 20), target)
        hr, mrr = 100 * metrics.hit_rate(20), 100 * metrics.mrr(20)
        measured[name] = (round(hr, 2), round(mrr, 2))
        readme_hr, readme_mrr = README_ROWS[name]
        assert hr == pytest.approx(readme_hr, abs=1.0), name
        assert mrr == pytest.approx(readme_mrr, abs=1.0), name
    # V-SKNN is the exact reference of the recommender's comparisons: its figures stay put
    assert measured["vsknn"] == (68.10, 36.16)


SCORES_SCRIPT = """
import sys
from recstream.offline.datasets import session_tsv_events
from recstream.offline.evaluation.baselines import VSKNN
from recstream.offline.evaluation.protocol import group_sessions, session_cases
folder = sys.argv[1]
with open(folder + "/yoochoose-clicks-100k_train_full.txt") as handle:
    train = group_sessions(list(session_tsv_events(handle))[-15000:], 1800)
with open(folder + "/yoochoose-clicks-100k_test.txt") as handle:
    test = group_sessions(list(session_tsv_events(handle))[:1500], 1800)
model = VSKNN(train)
for case in (c for s in test for c in session_cases(s)):
    scores = model.scores([e.item_key or "" for e in case.history])
    print(sorted((item, score.hex()) for item, score in scores.items()))
"""


def run_in_two_hash_seeds(script: str, folder: Path) -> list[bytes]:
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", script, str(folder)], env=env, capture_output=True, check=True
        )
        outputs.append(run.stdout)
    return outputs


def test_vsknn_scores_are_bit_identical_whatever_the_hash_seed(datasets: Path) -> None:
    outputs = run_in_two_hash_seeds(SCORES_SCRIPT, datasets / "yoochoose-100k")
    assert outputs[0].count(b"\n") > 1000
    assert outputs[0] == outputs[1]


RANKINGS_SCRIPT = """
import sys
from recstream.offline.datasets import session_tsv_events
from recstream.offline.evaluation.baselines import BASELINE_NAMES, build_baseline
from recstream.offline.evaluation.protocol import group_sessions, session_cases
folder = sys.argv[1]
with open(folder + "/yoochoose-clicks-100k_train_full.txt") as handle:
    train = group_sessions(list(session_tsv_events(handle))[-8000:], 1800)
with open(folder + "/yoochoose-clicks-100k_test.txt") as handle:
    test = group_sessions(list(session_tsv_events(handle))[:600], 1800)
histories = [[e.item_key or "" for e in c.history] for s in test for c in session_cases(s)]
for name in BASELINE_NAMES:
    model = build_baseline(name, train)
    for history in histories:
        top = model.recommend(history, 20)
        scores = model.scores(history) if hasattr(model, "scores") else {}
        print(name, [(item, scores[item].hex()) if scores else item for item in top])
"""


def test_every_baseline_ranks_bit_identically_whatever_the_hash_seed(datasets: Path) -> None:
    outputs = run_in_two_hash_seeds(RANKINGS_SCRIPT, datasets / "yoochoose-100k")
    assert outputs[0].count(b"\n") > 8 * 300
    assert outputs[0] == outputs[1]
