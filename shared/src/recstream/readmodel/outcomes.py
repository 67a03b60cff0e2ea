"""What users did with the recommendations each variant ranked: the outcome counters the
consumer keeps (:mod:`recstream.model.attribution`), read and turned into rates with
confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from recstream.contract.keyspace import Stat
from recstream.model.attribution import (
    IMPRESSIONS,
    ITEMS_SHOWN,
    OUTCOME_NAMES,
    REVENUE,
    REVENUE_CAPPED,
    REVENUE_SQUARES,
    VARIANTS_SUBJECT,
    daily,
)
from recstream.store.reads import FieldsRead, HashRead, StatsReader

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` of ``total`` with its Wilson score interval at 95%."""

    count: int
    total: int

    @property
    def value(self) -> float:
        return self.count / self.total if self.total else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.count, self.total)


@dataclass(frozen=True, slots=True)
class Outcomes:
    """One variant's counters (overall, or of one day)."""

    impressions: int
    items: int
    counts: Mapping[str, int]  # outcome -> lists with at least one such event
    by_position: Mapping[str, Mapping[int, int]]  # outcome -> position -> lists
    revenue_cents: int
    revenue_squares: int = 0  # sum over lists of (capped list revenue, currency units)^2
    revenue_capped_cents: int = 0  # sum over lists of the capped list revenue

    def rate(self, outcome: str) -> Rate:
        return Rate(self.counts.get(outcome, 0), self.impressions)

    @property
    def revenue_per_impression(self) -> float:
        """Cents per list shown."""
        return self.revenue_cents / self.impressions if self.impressions else 0.0

    @property
    def revenue_standard_error(self) -> float | None:
        """The standard error of revenue per list shown, in cents, from the variance of the
        lists' (capped) revenue; None where the counters cannot give it: revenue counted
        before the squares were kept (an upgraded deployment's old lists)."""
        n = self.impressions
        if self.revenue_cents and not self.revenue_capped_cents:
            return None
        if n <= 1:
            return 0.0
        mean = self.revenue_capped_cents / 100 / n  # currency units
        variance = max(0.0, (self.revenue_squares / n - mean * mean) * n / (n - 1))
        return 100 * math.sqrt(variance / n)

    @property
    def revenue_interval(self) -> tuple[float, float] | None:
        """Revenue per list shown (cents), 95% interval (normal approximation)."""
        error = self.revenue_standard_error
        if error is None:
            return None
        value = self.revenue_per_impression
        return max(0.0, value - Z95 * error), value + Z95 * error


@dataclass(frozen=True, slots=True)
class VariantOutcomes:
    variant: str
    total: Outcomes
    days: Mapping[str, Outcomes]  # UTC day of the impressions -> its counters


def wilson(count: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (good at small counts and rates
    near 0, where the normal approximation is not); (0, 1) without trials."""
    if total <= 0:
        return 0.0, 1.0
    p = count / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference(rate: Rate, control: Rate, z: float = Z95) -> tuple[float, tuple[float, float]]:
    """``rate - control`` and its 95% interval (Wald, for two independent proportions);
    (0, (-1, 1)) when either has no trials."""
    if rate.total <= 0 or control.total <= 0:
        return 0.0, (-1.0, 1.0)
    p, q = rate.value, control.value
    half = z * math.sqrt(p * (1 - p) / rate.total + q * (1 - q) / control.total)
    return p - q, (max(-1.0, p - q - half), min(1.0, p - q + half))


def revenue_difference(outcomes: Outcomes, control: Outcomes, z: float = Z95) -> tuple[
    float, tuple[float, float] | None
]:  # fmt: skip
    """Revenue per list shown minus the control's (cents), with its 95% interval (Welch;
    None when either side has none)."""
    value = outcomes.revenue_per_impression - control.revenue_per_impression
    mine, theirs = outcomes.revenue_standard_error, control.revenue_standard_error
    if mine is None or theirs is None:
        return value, None
    half = z * math.hypot(mine, theirs)
    return value, (value - half, value + half)


def outcomes_of(fields: Mapping[str, str]) -> Outcomes:
    """The counters of one hash (``click``, ``click@3``, ``impressions``, ...)."""
    counts: dict[str, int] = {}
    by_position: dict[str, dict[int, int]] = {}
    for name, raw in fields.items():
        outcome, _, position = name.partition("@")
        if outcome not in OUTCOME_NAMES:
            continue
        if position:
            by_position.setdefault(outcome, {})[int(position)] = int(raw)
        else:
            counts[outcome] = int(raw)
    return Outcomes(
        impressions=int(fields.get(IMPRESSIONS, 0)),
        items=int(fields.get(ITEMS_SHOWN, 0)),
        counts=counts,
        by_position={o: dict(sorted(p.items())) for o, p in by_position.items()},
        revenue_cents=int(fields.get(REVENUE, 0)),
        revenue_squares=int(fields.get(REVENUE_SQUARES, 0)),
        revenue_capped_cents=int(fields.get(REVENUE_CAPPED, 0)),
    )


async def load_outcomes(
    reader: StatsReader, days: Sequence[str] = (), variants: Sequence[str] | None = None
) -> list[VariantOutcomes]:
    """The counters of ``variants`` (default: every variant counted so far), overall and on
    each of ``days`` (``YYYY-MM-DD``), in two round trips."""
    keys = reader.keyspace
    if variants is None:
        (index,) = await reader.read([HashRead(keys.stat(Stat.OUTCOME_VARIANTS, VARIANTS_SUBJECT))])
        variants = sorted(index)
    if not variants:
        return []
    subjects = [(v, d) for v in variants for d in ("", *days)]
    answers = await reader.read(
        [HashRead(keys.stat(Stat.OUTCOMES, daily(v, d) if d else v)) for v, d in subjects]
    )
    found: dict[str, dict[str, Outcomes]] = {}
    for (variant, day), fields in zip(subjects, answers, strict=True):
        found.setdefault(variant, {})[day] = outcomes_of(fields)
    return [VariantOutcomes(v, found[v][""], {d: found[v][d] for d in days}) for v in variants]


@dataclass(frozen=True, slots=True)
class ArmRecord:
    """What the counters say about one bandit arm: lists shown and lists clicked."""

    impressions: int
    clicks: int


async def load_arm_records(reader: StatsReader, names: Sequence[str]) -> dict[str, ArmRecord]:
    """The lists shown and clicked of each served variant in ``names``, in one round trip."""
    keys = reader.keyspace
    rows = await reader.read(
        [FieldsRead(keys.stat(Stat.OUTCOMES, n), (IMPRESSIONS, "click")) for n in names]
    )
    return {n: ArmRecord(int(a or 0), int(b or 0)) for n, (a, b) in zip(names, rows, strict=True)}
