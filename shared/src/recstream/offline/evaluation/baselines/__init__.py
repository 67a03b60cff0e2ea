"""Reference baselines of the offline evaluation, each written from its paper (pure).

- :mod:`.base`: the :class:`Baseline` protocol and the shared deterministic top-k;
- :mod:`.popular`: most popular (``pop-baseline``);
- :mod:`.knn`: session kNN (``sknn``) and vector session kNN (``vsknn``);
- :mod:`.stan`: sequence and time aware kNN (``stan``, ``vstan``);
- :mod:`.rules`: sequential rules (``sr``);
- :mod:`.matrix`: EASE (``ease``) and implicit ALS (``als``);
- :mod:`.registry`: :func:`build_baseline` by name, with a parameter set.
"""

from recstream.offline.evaluation.baselines.base import (
    LEVELS,
    Baseline,
    Level,
    ScoringBaseline,
    top_items,
)
from recstream.offline.evaluation.baselines.knn import SKNN, VSKNN
from recstream.offline.evaluation.baselines.matrix import ALS, EASE
from recstream.offline.evaluation.baselines.popular import MostPopular
from recstream.offline.evaluation.baselines.registry import (
    BASELINE_NAMES,
    PARAMS,
    USER_LEVEL_NAMES,
    UnknownBaselineError,
    build_baseline,
)
from recstream.offline.evaluation.baselines.rules import SequentialRules
from recstream.offline.evaluation.baselines.stan import STAN, VSTAN

__all__ = [
    "ALS",
    "BASELINE_NAMES",
    "EASE",
    "LEVELS",
    "PARAMS",
    "SKNN",
    "STAN",
    "USER_LEVEL_NAMES",
    "VSKNN",
    "VSTAN",
    "Baseline",
    "Level",
    "MostPopular",
    "ScoringBaseline",
    "SequentialRules",
    "UnknownBaselineError",
    "build_baseline",
    "top_items",
]
