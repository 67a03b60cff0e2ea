"""Experiments over what ranks ``POST /recommendations``: A/B tests, and a bandit over the
blend weights (pure).

An :class:`Experiment` splits users between variants by a hash of (experiment id, user
id): the same user always gets the same variant, on every API replica and after restarts,
and changing one experiment's shares moves no user of another. A variant says what
ranks its lists: the learned ranker (when one is active) or the blend with its own
weights, or, for a bandit variant, one of several blend weight vectors (``arms``) chosen
per request by Thompson sampling on each arm's attributed clicks per list shown; and,
whatever ranks it, the list's filters and intent shift (``filters``).

Outcomes are counted per served variant name (``<experiment>:<variant>``, and
``<experiment>:<variant>.<arm>`` for a bandit's arms) by the consumer's attribution, exactly
once; the bandit reads those counters back: its state is the counters in Redis.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from recstream.readmodel.outcomes import ArmRecord
from recstream.scoring.config import BlendWeights, ItemKind, ScoringConfig

# a name within an experiment: the served variant is "<experiment>:<variant>[.<arm>]"
NamePart = Field(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9_-]+$")


class VariantFilters(BaseModel):
    """A variant's own business filters and intent shift; what is unset keeps the setting
    (``RECSTREAM_SCORING__*``). A request's own ``filters`` still win."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exclude_purchased: bool | None = None
    exclude_in_cart: bool | None = None
    default_kind: ItemKind | None = None
    max_per_category: int | None = Field(None, ge=1)
    intent_shift: bool | None = None

    def applied_to(self, scoring: ScoringConfig) -> ScoringConfig:
        return scoring.model_copy(update=self.model_dump(exclude_none=True))


class Variant(BaseModel):
    """One arm of an experiment: what ranks its users' lists."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = NamePart
    share: float = Field(gt=0, le=1, description="the share of the experiment's users")
    ranker: bool = Field(
        False, description="rank with the learned model when one is active (else the blend)"
    )
    weights: BlendWeights | None = Field(
        None, description="the blend's weights for this variant (default: the setting)"
    )
    arms: tuple[BlendWeights, ...] = Field(
        (),
        max_length=16,
        description="a bandit: blend weight vectors, one chosen per request by Thompson "
        "sampling on clicks per list shown",
    )
    filters: VariantFilters | None = Field(
        None, description="the variant's filters and intent shift (default: the settings)"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Variant:
        if self.arms and (self.ranker or self.weights is not None):
            raise ValueError(f"variant {self.name}: a bandit's arms exclude ranker and weights")
        if len(self.arms) == 1:
            raise ValueError(f"variant {self.name}: a bandit needs at least two arms")
        return self


class Experiment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = NamePart
    variants: tuple[Variant, ...] = Field(min_length=2, max_length=8)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    exploration: float = Field(
        0.05,
        ge=0,
        le=1,
        description="a bandit variant's share of requests given to an arm chosen uniformly",
    )

    @model_validator(mode="after")
    def _well_formed(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.id}: variant names repeat")
        if abs(sum(v.share for v in self.variants) - 1.0) > 1e-9:
            raise ValueError(f"experiment {self.id}: the variants' shares add up to 1")
        if self.variants[0].arms:
            raise ValueError(
                f"experiment {self.id}: the first variant is the control the others are "
                "compared with; a bandit cannot be it"
            )
        if self.start and self.end and self.end <= self.start:
            raise ValueError(f"experiment {self.id}: end is not after start")
        return self

    def running(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)

    def served_name(self, variant: Variant, arm: int | None = None) -> str:
        name = f"{self.id}:{variant.name}"
        return name if arm is None else f"{name}.{arm}"

    def arm_names(self, variant: Variant) -> list[str]:
        return [self.served_name(variant, k) for k in range(len(variant.arms))]


def check_experiments(experiments: Sequence[Experiment]) -> None:
    """At most one experiment at a time: ids unique and running windows disjoint."""
    ids = [e.id for e in experiments]
    if len(set(ids)) != len(ids):
        raise ValueError("experiment ids repeat")
    spans = sorted(
        (
            e.start.timestamp() if e.start else float("-inf"),
            e.end.timestamp() if e.end else float("inf"),
            e.id,
        )
        for e in experiments
    )
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(f"experiments {first} and {second} run at the same time")


def bucket(experiment_id: str, user_id: str) -> float:
    """The user's place in [0, 1) for this experiment (SHA-256 of both ids)."""
    digest = hashlib.sha256(f"{experiment_id}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: Experiment, user_id: str) -> Variant:
    """The variant of ``user_id``: the one whose share covers the user's bucket."""
    place = bucket(experiment.id, user_id)
    covered = 0.0
    for variant in experiment.variants:
        covered += variant.share
        if place < covered:
            return variant
    return experiment.variants[-1]  # shares add up to 1 up to rounding


def thompson_arm(records: Sequence[ArmRecord], exploration: float, rng: random.Random) -> int:
    """The arm to serve: with probability ``exploration`` a uniform one, else the arm whose
    draw from Beta(1 + clicks, 1 + impressions - clicks) is highest (Thompson sampling
    with a uniform prior; the reward is a click on the list)."""
    if rng.random() < exploration:
        return rng.randrange(len(records))
    draws = [rng.betavariate(1 + r.clicks, 1 + max(0, r.impressions - r.clicks)) for r in records]
    return max(range(len(draws)), key=draws.__getitem__)


@dataclass(frozen=True, slots=True)
class Choice:
    """What serves one request: the served variant's name, and how it ranks."""

    name: str
    ranker: bool
    weights: BlendWeights | None
    filters: VariantFilters | None = None

    def scoring(self, base: ScoringConfig) -> ScoringConfig:
        """The blend's settings of this choice: ``base`` with its weights and filters."""
        scoring = (
            base if self.weights is None else base.model_copy(update={"weights": self.weights})
        )
        return scoring if self.filters is None else self.filters.applied_to(scoring)


def choose(
    experiment: Experiment,
    user_id: str,
    arm_records: Mapping[str, ArmRecord],
    rng: random.Random,
    served: str | None = None,
) -> Choice:
    """The user's variant and, for a bandit, the arm of this request (``arm_records``: each
    arm's counters by served name; an arm without any is unknown, as a uniform prior).
    ``served`` names an arm of the user's bandit that ranked an earlier list (to explain
    it): that arm, without a draw."""
    variant = assign(experiment, user_id)
    if not variant.arms:
        return Choice(
            experiment.served_name(variant), variant.ranker, variant.weights, variant.filters
        )
    names = experiment.arm_names(variant)
    if served in names:
        arm = names.index(served)
    else:
        records = [arm_records.get(n, ArmRecord(0, 0)) for n in names]
        arm = thompson_arm(records, experiment.exploration, rng)
    return Choice(names[arm], False, variant.arms[arm], variant.filters)


def served_variants(experiment: Experiment) -> list[str]:
    """Every served name of the experiment, its bandits' arms one by one."""
    names: list[str] = []
    for variant in experiment.variants:
        names += experiment.arm_names(variant) or [experiment.served_name(variant)]
    return names
