"""The orderings every ranking rests on: best score first, ties by item id.

``top``, ``ranked`` and the candidate bound order by (-score, item) without building a
key per item; these tests compare them with that definition written out plainly, on
scores with many ties, zeros and negatives, on both of ``top``'s paths (a cut first when
the mapping holds more than four times ``n`` items). A NaN score is never ranked, as
``s > 0`` is false for it.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from recstream.scoring.candidates import bound
from recstream.scoring.groups import open_groups
from recstream.scoring.items import normalise, ranked, top

from .test_scoring_support import context, group, product, user

# few distinct values, so that equal scores are common; NaN is never ranked
SCORE = st.sampled_from([-1.0, 0.0, 0.25, 0.5, 1.0, 1.0 / 3.0, 2.0, 7.5, math.nan])
SCORES = st.dictionaries(st.from_regex(r"p:[a-z0-9]{1,4}", fullmatch=True), SCORE, max_size=60)


def reference(scores: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(((i, s) for i, s in scores.items() if s > 0), key=lambda kv: (-kv[1], kv[0]))


@given(SCORES)
def test_ranked_is_every_positive_score_best_first_ties_by_id(scores: dict[str, float]) -> None:
    assert ranked(scores) == reference(scores)


@given(SCORES, st.integers(min_value=1, max_value=30))
def test_top_is_the_first_n_of_that_order(scores: dict[str, float], n: int) -> None:
    assert list(top(scores, n).items()) == reference(scores)[:n]


def test_the_bound_ranks_normalised_ties_by_id() -> None:
    # two raw scores that differ but normalise to the same value: the item ids decide
    best, lower = 3.0, 1.521
    higher = math.nextafter(lower, best)
    assert higher > lower
    assert higher / best == lower / best
    raw = {"p:z": higher, "p:a": lower, "p:top": best}
    candidates = bound(context(user()), {"popular": raw}, per_source=3, sources=["popular"])
    assert candidates.ranks["popular"] == {"p:top": 1, "p:a": 2, "p:z": 3}
    assert candidates.scores["popular"] == normalise(raw)
    assert candidates.items == ("p:top", "p:a", "p:z")


@given(SCORES, st.integers(min_value=1, max_value=20))
def test_the_bound_ranks_each_source_as_its_normalised_scores_order(
    scores: dict[str, float], per_source: int
) -> None:
    candidates = bound(context(user()), {"popular": scores}, per_source, sources=["popular"])
    kept = normalise(top(scores, per_source))
    assert list(candidates.ranks["popular"]) == [item for item, _ in reference(kept)]
    assert candidates.scores["popular"] == kept


def test_open_groups_come_by_id_whatever_the_catalog_order() -> None:
    catalog = [
        group("g:b", "1"),
        product("p:1"),
        group("g:a", "1"),
        group("g:full", "1", target_size=2, current_size=2),
        group("g:c", "1", status="closed"),
    ]
    ctx = context(user(), catalog=catalog)
    assert list(open_groups(ctx)) == ["g:a", "g:b"]
    assert {product for product, _ in open_groups(ctx).values()} == {"p:1"}
