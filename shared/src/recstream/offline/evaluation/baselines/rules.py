"""Sequential rules: what follows an item within a few steps (pure)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Literal, TypedDict

from recstream.offline.evaluation.baselines.base import Level, top_items
from recstream.offline.evaluation.protocol import EventSession

Weighting = Literal["div", "quadratic", "same", "log", "linear"]

# weight of a rule a -> b seen with b ``gap`` positions after a (session-rec's names)
WEIGHTINGS: Mapping[Weighting, Callable[[int], float]] = {
    "div": lambda gap: 1.0 / gap,
    "quadratic": lambda gap: 1.0 / (gap * gap),
    "same": lambda gap: 1.0,
    "log": lambda gap: 1.0 / math.log10(gap + 1.7),
    "linear": lambda gap: 1.0 - 0.1 * gap if gap <= 100 else 0.0,
}


class SROptions(TypedDict, total=False):
    steps: int
    weighting: Weighting
    pruning: int


class SequentialRules:
    """Sequential rules (Kamehkhosh, Jannach & Ludewig, TempRec 2017, "A Comparison of
    Frequent Pattern Techniques and a Deep Learning Method for Session-Based
    Recommendation"), as session-rec's ``SequentialRules`` (rn5l/session-rec
    ``algorithms/baselines/sr.py``).

    Training: in every training session, each item ``b`` that comes ``gap`` positions
    after an item ``a`` (``1 <= gap <= steps``, repeats counted) adds ``weight(gap)`` to
    the rule ``a -> b`` (``div``: ``1 / gap``). Pruning then keeps each antecedent's
    ``pruning`` heaviest rules (ties by item id; 0 keeps all). Scoring: the rules of the
    session's last item, whatever came before it.

    Defaults: ``sr.py``'s (``steps=10``, ``weighting="div"``, ``pruning=20``), the setting
    of the ../shared/datasets README row. Tuned values per dataset: :data:`SR_PRESETS`.
    """

    name = "sr"
    level: Level = "session"

    def __init__(
        self,
        sessions: Iterable[EventSession],
        *,
        steps: int = 10,
        weighting: Weighting = "div",
        pruning: int = 20,
    ) -> None:
        if steps < 1 or pruning < 0:
            raise ValueError("steps must be at least 1 and pruning at least 0")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}")
        weight = WEIGHTINGS[weighting]
        self.steps = steps
        self.weighting: Weighting = weighting
        self.pruning = pruning
        rules: dict[str, dict[str, float]] = {}
        for session in sessions:  # sums in the sessions' order: the same in every process
            items = session.items
            for position, item in enumerate(items):
                for gap in range(1, min(steps, position) + 1):
                    rule = rules.setdefault(items[position - gap], {})
                    rule[item] = rule.get(item, 0.0) + weight(gap)
        if pruning:
            rules = {
                antecedent: dict(sorted(following.items(), key=lambda r: (-r[1], r[0]))[:pruning])
                for antecedent, following in rules.items()
            }
        self.rules = rules

    def scores(self, items: Sequence[str]) -> dict[str, float]:
        """Item -> weight of the rule from the last of ``items``."""
        return dict(self.rules.get(items[-1], {})) if items else {}

    def recommend(
        self, items: Sequence[str], k: int, *, exclude: Collection[str] = ()
    ) -> list[str]:
        return top_items(self.rules.get(items[-1], {}) if items else {}, k, exclude)


SR_PRESETS: dict[str, SROptions] = {
    # rn5l/session-rec conf/save/rsc15/window/window_rsc15_baselines.yml
    "rsc15": {"steps": 8, "weighting": "div"},
    # conf/save/diginetica/window/window_digi_baselines.yml
    "diginetica": {"steps": 20, "weighting": "quadratic"},
    # conf/save/retailrocket/session_based/window/window_retailr_baselines.yml
    "retailrocket": {"steps": 7, "weighting": "div"},
}
