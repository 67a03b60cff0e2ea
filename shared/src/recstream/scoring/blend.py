"""Blending: normalised component scores, weighted, with weights that mean what they say.

1. Each component's scores are divided by that component's best score over
   the candidates, so every component ranges over [0, 1] and its best item
   gets exactly its weight.
2. Weights come from the configuration or the request (an override replaces
   them; it is used as given, not shifted by intent).
3. Optionally the session's intent shifts them: each component the intent
   favours is multiplied by ``1 + intent_shift_strength * confidence``.
4. They are re-normalised over the components that have any signal for this
   user, so a component without signal (no session, no catalog, ...) adds
   neither noise nor a dead share of the score, and the blended score of an
   item is in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping

from recstream.scoring.config import ScoringConfig
from recstream.scoring.items import normalise
from recstream.scoring.models import COMPONENTS, Component, Intent, IntentKind

INTENT_FAVOURS: Mapping[IntentKind, tuple[Component, ...]] = {
    "transactional": ("sequential", "session"),
    "research": ("content",),
    "deal_seeking": ("content",),
    "browsing": ("session",),
    "group_seeking": (),
    "unknown": (),
}


class ScoringError(ValueError):
    """A scoring request that cannot be honoured (e.g. unknown weight names)."""


def base_weights(override: Mapping[str, float] | None, config: ScoringConfig) -> dict[str, float]:
    if override is None:
        return config.weights.as_dict()
    unknown = sorted(set(override) - set(COMPONENTS))
    if unknown:
        raise ScoringError(f"unknown components in weights: {', '.join(unknown)}")
    if any(w < 0 for w in override.values()):
        raise ScoringError("weights must not be negative")
    return {c: float(override.get(c, 0.0)) for c in COMPONENTS}


def shift_weights(
    weights: Mapping[str, float], intent: Intent, strength: float
) -> dict[str, float]:
    favoured = INTENT_FAVOURS.get(intent.kind, ())
    factor = 1.0 + strength * intent.confidence
    return {c: w * factor if c in favoured else w for c, w in weights.items()}


def effective_weights(weights: Mapping[str, float], with_signal: set[str]) -> dict[str, float]:
    """Weights re-normalised to sum 1 over the components with signal (others 0)."""
    total = sum(w for c, w in weights.items() if c in with_signal and w > 0)
    if total <= 0:
        return {c: 0.0 for c in COMPONENTS}
    return {c: (weights.get(c, 0.0) / total if c in with_signal else 0.0) for c in COMPONENTS}


def blend_weights(
    override: Mapping[str, float] | None,
    intent: Intent,
    with_signal: set[str],
    config: ScoringConfig,
) -> dict[str, float]:
    weights = base_weights(override, config)
    if override is None and config.intent_shift:
        weights = shift_weights(weights, intent, config.intent_shift_strength)
    return effective_weights(weights, with_signal)


def normalise_components(raw: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Each component divided by its best score; components without signal come out empty."""
    return {c: normalise(raw.get(c, {})) for c in COMPONENTS}


def blend(
    components: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Item -> component -> weighted contribution, for items with a positive blended score."""
    out: dict[str, dict[str, float]] = {}
    for component in COMPONENTS:
        weight = weights.get(component, 0.0)
        if weight <= 0:
            continue
        for item, score in components.get(component, {}).items():
            if score > 0:
                out.setdefault(item, {})[component] = weight * score
    return out
