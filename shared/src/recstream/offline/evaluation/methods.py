"""The evaluated methods: the recommender's entry points, and the reference baselines.

The recommender is asked exactly as the API asks it, from a loaded
:class:`~recstream.readmodel.context.RecommendationContext`:

- ``blend``: ``recommend`` with the configured weights (business filters, popular
  back-fill);
- ``ranker``: ``recommend`` with a learned ranker (:mod:`recstream.scoring.learned`),
  trained by :mod:`recstream.offline.ranking` on the training events only; without a
  model (too little training data) the blend, as the API falls back;
- ``content`` / ``sequential`` / ``session``: ``recommend`` with a weight override
  that keeps only that component (the rest of the list is the popular back-fill);
- ``popular``: ``recommend`` with all component weights 0 (the back-fill alone);
- ``next-items``: ``next_items``, the next-product endpoint (sequential and
  session blended, products only).

Each is asked for two lists: the **full** list of the published protocols
(``include_seen``, and the cart filter off: items of the session and of the cart may
come back, so a repeated click or an order of a carted item can be a hit), and the
**widget** list, as the API serves it by default (the item on
screen and every item seen in the session left out, back-filled from the rest).

The baselines are :mod:`recstream.offline.evaluation.baselines`, trained on the training
sessions only; their widget list leaves out every item of the session so far.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from recstream.model.config import CoreConfig
from recstream.offline.evaluation.baselines import (
    BASELINE_NAMES,
    USER_LEVEL_NAMES,
    Baseline,
    Level,
    build_baseline,
)
from recstream.offline.evaluation.protocol import EventSession
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ScoringConfig
from recstream.scoring.learned import LearnedRanker
from recstream.scoring.models import RecommendationRequest
from recstream.scoring.recommender import next_items, recommend

SYSTEM_METHODS = ("ranker", "blend", "content", "sequential", "session", "popular", "next-items")
BASELINE_METHODS: tuple[str, ...] = tuple(BASELINE_NAMES)
ALL_METHODS = (*SYSTEM_METHODS, *BASELINE_METHODS)
DEFAULT_METHODS = ALL_METHODS

_ALONE: Mapping[str, Mapping[str, float]] = {
    "content": {"content": 1.0, "sequential": 0.0, "session": 0.0},
    "sequential": {"content": 0.0, "sequential": 1.0, "session": 0.0},
    "session": {"content": 0.0, "sequential": 0.0, "session": 1.0},
    "popular": {"content": 0.0, "sequential": 0.0, "session": 0.0},
}


class UnknownMethodError(ValueError):
    """A method name the evaluation does not know."""


def parse_methods(text: str) -> tuple[str, ...]:
    """``"blend,vsknn"`` -> ``("blend", "vsknn")``, in the canonical order, checked."""
    wanted = [m.strip() for m in text.split(",") if m.strip()]
    unknown = sorted(set(wanted) - set(ALL_METHODS))
    if unknown:
        raise UnknownMethodError(
            f"unknown methods {', '.join(unknown)}; choose from {', '.join(ALL_METHODS)}"
        )
    if not wanted:
        raise UnknownMethodError("no method given")
    return tuple(m for m in ALL_METHODS if m in wanted)


def system_ranking(
    method: str,
    ctx: RecommendationContext,
    k: int,
    scoring: ScoringConfig,
    core: CoreConfig,
    *,
    current: frozenset[str] = frozenset(),
    include_seen: bool = True,
    ranker: LearnedRanker | None = None,
) -> list[str]:
    """The top ``k`` items of one of :data:`SYSTEM_METHODS` for this context: the full list
    by default, the widget list with ``current`` (the item on screen) and not
    ``include_seen``."""
    if method == "next-items":
        items = next_items(ctx, k, scoring, exclude=current, include_seen=include_seen)
        return [scored.item for scored in items]
    if method not in ("blend", "ranker") and method not in _ALONE:
        raise UnknownMethodError(method)
    weights = None if method in ("blend", "ranker") else dict(_ALONE[method])
    request = RecommendationRequest(
        limit=k,
        weights=weights,
        current_items=current,
        include_seen=include_seen,
        # the full list may bring back what the session holds, the cart's products too
        exclude_in_cart=not include_seen,
    )
    model = ranker if method == "ranker" else None
    return [scored.item for scored in recommend(ctx, request, scoring, core, model).items]


@dataclass(frozen=True, slots=True)
class FittedBaseline:
    model: Baseline
    fit_seconds: float


def fit_baselines(
    names: Collection[str],
    sessions: Sequence[EventSession],
    *,
    level: Level = "session",
    params: str = "default",
) -> dict[str, FittedBaseline]:
    """Every named baseline trained on ``sessions``, with its training time. ``level`` is the
    history the protocol gives the methods that can take a user's whole history (EASE and
    ALS learn from rows of that level too); ``params`` a published parameter set (see
    :mod:`recstream.offline.evaluation.baselines.registry`)."""
    fitted = {}
    for name in names:
        started = time.perf_counter()
        chosen: Level = level if name in USER_LEVEL_NAMES else "session"
        model = build_baseline(name, sessions, level=chosen, params=params)
        fitted[name] = FittedBaseline(model, time.perf_counter() - started)
    return fitted


def split_methods(methods: Sequence[str]) -> tuple[list[str], list[str]]:
    """(system methods, baselines) among ``methods``."""
    system = [m for m in methods if m in SYSTEM_METHODS]
    return system, [m for m in methods if m in BASELINE_METHODS]
