"""The evaluated methods: the recommender's entry points, and the reference baselines.

The recommender is asked exactly as the API asks it, from a loaded
:class:`~recstream.context.RecommendationContext`:

- ``blend``: ``recommend`` with the configured weights (business filters, popular
  back-fill);
- ``content`` / ``sequential`` / ``session``: ``recommend`` with a weight override
  that keeps only that component (the rest of the list is the popular back-fill);
- ``popular``: ``recommend`` with all component weights 0 (the back-fill alone);
- ``next-items``: ``next_items``, the next-product endpoint (sequential and
  session blended, products only).

``pop-baseline`` and ``vsknn`` are :mod:`recstream.evaluation.baselines`, trained
on the training sessions only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recstream.config import CoreConfig
from recstream.context import RecommendationContext
from recstream.scoring.config import ScoringConfig
from recstream.scoring.models import RecommendationRequest
from recstream.scoring.recommender import next_items, recommend

SYSTEM_METHODS = ("blend", "content", "sequential", "session", "popular", "next-items")
BASELINE_METHODS = ("pop-baseline", "vsknn")
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
) -> list[str]:
    """The top ``k`` items of one of :data:`SYSTEM_METHODS` for this context."""
    if method == "next-items":
        return [scored.item for scored in next_items(ctx, k, scoring)]
    if method != "blend" and method not in _ALONE:
        raise UnknownMethodError(method)
    weights = None if method == "blend" else dict(_ALONE[method])
    request = RecommendationRequest(limit=k, weights=weights)
    return [scored.item for scored in recommend(ctx, request, scoring, core).items]


def split_methods(methods: Sequence[str]) -> tuple[list[str], list[str]]:
    """(system methods, baselines) among ``methods``."""
    system = [m for m in methods if m in SYSTEM_METHODS]
    return system, [m for m in methods if m in BASELINE_METHODS]
