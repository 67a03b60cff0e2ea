"""The reference baselines on tiny hand-computed data, and on yoochoose-100k against the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from recstream.datasets import session_tsv_events
from recstream.evaluation.baselines import VSKNN, MostPopular, top_items
from recstream.evaluation.metrics import NextItemMetrics
from recstream.evaluation.protocol import EventSession, group_sessions, session_cases
from recstream.events import EventType, validate_event

from .eventgen import make_event


def session(name: str, items: list[str], end_minute: float) -> EventSession:
    start = end_minute - len(items) + 1
    events = tuple(
        validate_event(
            make_event(
                f"{name}-{i}", EventType.PRODUCT_VIEW, name, minutes=start + i, product_id=item
            )
        )
        for i, item in enumerate(items)
    )
    return EventSession(name, name, events)


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


@pytest.mark.slow
def test_baselines_reproduce_the_readme_rows_on_yoochoose(datasets: Path) -> None:
    folder = datasets / "yoochoose-100k"
    with (folder / "yoochoose-clicks-100k_train_full.txt").open() as handle:
        train = group_sessions(session_tsv_events(handle), 1800)
    with (folder / "yoochoose-clicks-100k_test.txt").open() as handle:
        test = group_sessions(session_tsv_events(handle), 1800)
    readme = {"pop-baseline": (8.94, 2.64), "vsknn": (68.21, 36.04)}
    for model in (MostPopular(train), VSKNN(train)):
        metrics = NextItemMetrics(k=20)
        for case in (c for s in test for c in session_cases(s)):
            history = [e.item_key or "" for e in case.history]
            metrics.add(model.recommend(history, 20), case.target_item)
        assert metrics.cases == 10_152
        hr, mrr = readme[model.name]
        assert 100 * metrics.hit_rate(20) == pytest.approx(hr, abs=1.0), model.name
        assert 100 * metrics.mrr(20) == pytest.approx(mrr, abs=1.0), model.name


SCORES_SCRIPT = """
import sys
from recstream.datasets import session_tsv_events
from recstream.evaluation.baselines import VSKNN
from recstream.evaluation.protocol import group_sessions, session_cases
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


def test_vsknn_scores_are_bit_identical_whatever_the_hash_seed(datasets: Path) -> None:
    import os
    import subprocess
    import sys

    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        folder = str(datasets / "yoochoose-100k")
        run = subprocess.run(
            [sys.executable, "-c", SCORES_SCRIPT, folder], env=env, capture_output=True, check=True
        )
        outputs.append(run.stdout)
    assert outputs[0].count(b"\n") > 1000
    assert outputs[0] == outputs[1]
