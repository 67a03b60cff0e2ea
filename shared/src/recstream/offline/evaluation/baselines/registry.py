"""Every reference baseline by name, with its parameter set (pure).

``params`` names a parameter set: ``"default"`` (each class's documented defaults) or a
dataset that session-rec tuned the method on (``"rsc15"`` = YooChoose,
``"diginetica"``, ``"retailrocket"``; the values and the file each comes from are in
:data:`~recstream.offline.evaluation.baselines.knn.SKNN_PRESETS`,
:data:`~recstream.offline.evaluation.baselines.stan.STAN_PRESETS`,
:data:`~recstream.offline.evaluation.baselines.stan.VSTAN_PRESETS` and
:data:`~recstream.offline.evaluation.baselines.rules.SR_PRESETS`). A method without tuned values
for that dataset (``pop-baseline``, ``vsknn``, ``ease``, ``als``) keeps its defaults.

``level`` is the history the caller will give (see
:class:`~recstream.offline.evaluation.baselines.base.Baseline`): ``ease`` and ``als`` also take
it as their training rows (default ``"user"``); the session methods only work on
``"session"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from recstream.offline.evaluation.baselines.base import LEVELS, Baseline, Level
from recstream.offline.evaluation.baselines.knn import SKNN, SKNN_PRESETS, VSKNN, SKNNOptions
from recstream.offline.evaluation.baselines.matrix import ALS, EASE
from recstream.offline.evaluation.baselines.popular import MostPopular
from recstream.offline.evaluation.baselines.rules import SR_PRESETS, SequentialRules, SROptions
from recstream.offline.evaluation.baselines.stan import (
    STAN,
    STAN_PRESETS,
    VSTAN,
    VSTAN_PRESETS,
    STANOptions,
    VSTANOptions,
)
from recstream.offline.evaluation.protocol import EventSession

BASELINE_NAMES: tuple[str, ...] = (
    "pop-baseline",
    "sknn",
    "vsknn",
    "stan",
    "vstan",
    "sr",
    "ease",
    "als",
)
PARAMS: tuple[str, ...] = ("default", "rsc15", "diginetica", "retailrocket")
# the methods that can also learn from and rank for a user's whole history
USER_LEVEL_NAMES = frozenset({"ease", "als"})


class UnknownBaselineError(ValueError):
    """A baseline name, parameter set or level the registry does not know."""


_Builder = Callable[[Iterable[EventSession], Level | None, str], Baseline]


def _session_only(name: str, level: Level | None) -> None:
    if level not in (None, "session"):
        raise UnknownBaselineError(f"{name} ranks from the current session: level='session'")


def _pop(sessions: Iterable[EventSession], level: Level | None, params: str) -> Baseline:
    _session_only("pop-baseline", level)
    return MostPopular(sessions)


def _sknn(sessions: Iterable[EventSession], level: Level | None, params: str) -> Baseline:
    _session_only("sknn", level)
    return SKNN(sessions, **SKNN_PRESETS.get(params, SKNNOptions()))


def _vsknn(sessions: Iterable[EventSession], level: Level | None, params: str) -> Baseline:
    _session_only("vsknn", level)
    return VSKNN(sessions)


def _stan(sessions: Iterable[EventSession], level: Level | None, params: str) -> Baseline:
    _session_only("stan", level)
    return STAN(sessions, **STAN_PRESETS.get(params, STANOptions()))


def _vstan(sessions: Iterable[EventSession], level: Level | None, params: str) -> Baseline:
    _session_only("vstan", level)
    return VSTAN(sessions, **VSTAN_PRESETS.get(params, VSTANOptions()))


def _sr(sessions: Iterable[EventSession], level: Level | None, params: str) -> Baseline:
    _session_only("sr", level)
    return SequentialRules(sessions, **SR_PRESETS.get(params, SROptions()))


def _ease(sessions: Iterable[EventSession], level: Level | None, params: str) -> Baseline:
    return EASE(sessions, level=level or EASE.level)


def _als(sessions: Iterable[EventSession], level: Level | None, params: str) -> Baseline:
    return ALS(sessions, level=level or ALS.level)


_BUILDERS: dict[str, _Builder] = {
    "pop-baseline": _pop,
    "sknn": _sknn,
    "vsknn": _vsknn,
    "stan": _stan,
    "vstan": _vstan,
    "sr": _sr,
    "ease": _ease,
    "als": _als,
}


def build_baseline(
    name: str,
    sessions: Iterable[EventSession],
    *,
    level: Level | None = None,
    params: str = "default",
) -> Baseline:
    """Train the baseline ``name`` (one of :data:`BASELINE_NAMES`) on ``sessions``."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise UnknownBaselineError(
            f"unknown baseline {name!r}; choose from {', '.join(BASELINE_NAMES)}"
        )
    if params not in PARAMS:
        raise UnknownBaselineError(
            f"unknown parameter set {params!r}; choose from {', '.join(PARAMS)}"
        )
    if level is not None and level not in LEVELS:
        raise UnknownBaselineError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
    return builder(sessions, level, params)
