"""Sequential rules, EASE and implicit ALS on toy data, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from recstream.offline.evaluation.baselines import ALS, EASE, SequentialRules
from recstream.offline.evaluation.baselines.matrix import training_rows

from .test_evaluation_baselines import keys, session

RULES_TRAIN = [
    session("r1", ["A", "B", "C"], 10),
    session("r2", ["A", "C"], 20),
    session("r3", ["B", "A"], 30),
]


def test_sequential_rules_weigh_what_follows_by_one_over_the_distance() -> None:
    model = SequentialRules(RULES_TRAIN, steps=2)
    # A -> B: 1 (r1); A -> C: 1/2 (r1, two steps) + 1 (r2); B -> C: 1; B -> A: 1
    assert model.rules == {"p:A": {"p:B": 1.0, "p:C": 1.5}, "p:B": {"p:C": 1.0, "p:A": 1.0}}
    assert model.recommend(keys("Z", "A"), 5) == keys("C", "B")  # the last item only
    assert model.recommend(keys("A", "B"), 5) == keys("A", "C")  # a tie: by item id
    assert model.recommend(keys("A"), 1, exclude=keys("C")) == keys("B")
    assert model.scores(keys("B")) == {"p:C": 1.0, "p:A": 1.0}
    assert model.scores([]) == {}
    assert model.recommend(keys("C"), 5) == []  # nothing ever followed C


def test_sequential_rules_steps_weighting_pruning_and_repeats() -> None:
    assert SequentialRules(RULES_TRAIN, steps=1).rules["p:A"] == {"p:B": 1.0, "p:C": 1.0}
    quadratic = SequentialRules(RULES_TRAIN, steps=2, weighting="quadratic")
    assert quadratic.rules["p:A"]["p:C"] == pytest.approx(1 / 4 + 1)
    pruned = SequentialRules(RULES_TRAIN, steps=2, pruning=1)  # the heaviest, ties by id
    assert pruned.rules == {"p:A": {"p:C": 1.5}, "p:B": {"p:A": 1.0}}
    repeats = SequentialRules([session("r4", ["A", "A", "B"], 10)], steps=2)
    assert repeats.rules == {"p:A": {"p:A": 1.0, "p:B": 1.5}}
    with pytest.raises(ValueError, match="weighting"):
        SequentialRules(RULES_TRAIN, weighting="cubic")  # type: ignore[arg-type]  # at run time


# three users; u1 has two sessions: the user rows are {A, B}, {B, C}, {A, B, C}
EASE_TRAIN = [
    session("e1", ["A"], 10, user="u1"),
    session("e2", ["B", "C"], 20, user="u2"),
    session("e3", ["A", "B", "C"], 30, user="u3"),
    session("e4", ["B"], 40, user="u1"),
]


def test_ease_closed_form_on_three_items() -> None:
    model = EASE(EASE_TRAIN, regularization=1.0)  # user rows by default
    # X^T X + I = [[3, 2, 1], [2, 4, 2], [1, 2, 3]], its inverse P =
    # [[.5, -.25, 0], [-.25, .5, -.25], [0, -.25, .5]]; B_ij = -P_ij / P_jj, zero diagonal
    assert model.catalogue.items == keys("A", "B", "C")
    assert model.weights == pytest.approx(np.array([[0, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0]]))
    assert model.scores(keys("A")) == pytest.approx({"p:A": 0.0, "p:B": 0.5, "p:C": 0.0})
    assert model.recommend(keys("A"), 3) == keys("B", "A", "C")  # A = C = 0: by item id
    top = model.recommend(keys("B", "B", "Z"), 3)  # a set of known items: B alone
    assert set(top[:2]) == set(keys("A", "C"))
    assert top[2] == "p:B"
    assert model.recommend(keys("A", "C"), 2, exclude=keys("B")) == keys("A", "C")
    assert model.recommend(keys("Z"), 3) == []
    assert model.scores([]) == {}


def test_ease_session_rows_and_the_formula() -> None:
    model = EASE(EASE_TRAIN, level="session", regularization=1.0)
    assert model.level == "session"
    x = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 1], [0, 1, 0]], dtype=float)
    p = np.linalg.inv(x.T @ x + np.eye(3))
    assert model.weights == pytest.approx(np.eye(3) - p @ np.diag(1 / np.diag(p)))


def test_training_rows_per_session_or_per_user() -> None:
    rows = [keys("A", "B"), keys("B", "C"), keys("A", "B", "C")]
    assert training_rows(EASE_TRAIN, "user") == rows
    assert training_rows(EASE_TRAIN, "session")[0] == keys("A")
    with pytest.raises(ValueError, match="level"):
        training_rows(EASE_TRAIN, "day")  # type: ignore[arg-type]  # refused at run time


ALS_TRAIN = [
    *(session(f"a{n}", ["A", "B", "A"], 10 + n) for n in range(6)),
    *(session(f"c{n}", ["C", "D"], 30 + n) for n in range(6)),
    session("x", ["B", "E"], 50),
]


def test_als_is_deterministic_given_its_seed() -> None:
    first = ALS(ALS_TRAIN, factors=4, seed=7).scores(keys("A"))
    again = ALS(ALS_TRAIN, factors=4, seed=7).scores(keys("A"))
    other = ALS(ALS_TRAIN, factors=4, seed=8).scores(keys("A"))
    assert first == again  # bit for bit
    assert first != other


def test_als_recomputes_the_history_factor_by_least_squares() -> None:
    model = ALS(ALS_TRAIN, factors=4, alpha=40.0, regularization=0.01)
    assert model.recommend(keys("A"), 2) == keys("A", "B")
    top = model.recommend(keys("C"), 5)
    assert set(top[:2]) == set(keys("C", "D"))
    assert len(top) == 5
    assert model.recommend(keys("C"), 2, exclude=top[:1]) == top[1:3]
    # implicit: c = alpha * r for the history's items, 1 elsewhere, p = [r > 0]:
    # (Y^T Y + reg I + sum (c_i - 1) y_i y_i^T) u = sum c_i y_i, for the history A A B
    y = model.model.item_factors.astype(np.float64)
    a, b = model.catalogue.index["p:A"], model.catalogue.index["p:B"]
    lhs = y.T @ y + 0.01 * np.eye(4)
    lhs += (40 * 2 - 1) * np.outer(y[a], y[a]) + (40 - 1) * np.outer(y[b], y[b])
    factor = np.linalg.solve(lhs, 40 * 2 * y[a] + 40 * y[b])
    scores = model.scores(keys("A", "B", "A"))
    assert [scores[item] for item in model.catalogue.items] == pytest.approx(
        (y @ factor).tolist(), rel=1e-3, abs=1e-4
    )
    assert model.recommend([], 3) == []
    assert model.scores(keys("Z")) == {}
