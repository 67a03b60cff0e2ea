"""Tunable parameters of recommendation scoring.

A frozen pydantic model, embedded in a service's settings and passed down
explicitly like :class:`recstream.model.config.CoreConfig`. The blend weights are
the architecture's (content 0.5, sequential 0.3, session 0.2); the session-kNN
defaults are V-SKNN's (k=100, sample=500, ``div`` weighting); the sequential
defaults (anchor decay, reminder) were chosen on the next-item evaluation of
``yoochoose-100k`` (``recstream eval``), where the results are flat around them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ItemKind = Literal["products", "groups", "both"]
PositionWeighting = Literal["div", "same", "linear", "log", "quadratic"]


class BlendWeights(BaseModel):
    """Relative weight of each scoring component in the blend (re-normalised per user)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    content: float = Field(0.5, ge=0)
    sequential: float = Field(0.3, ge=0)
    session: float = Field(0.2, ge=0)

    def as_dict(self) -> dict[str, float]:
        return {"content": self.content, "sequential": self.sequential, "session": self.session}


class ContentFactors(BaseModel):
    """Relative weight of the four content factors (re-normalised over the available ones)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: float = Field(0.4, ge=0)
    price: float = Field(0.2, ge=0)
    engagement: float = Field(0.25, ge=0)
    recency: float = Field(0.15, ge=0)


class ScoringConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # blend
    weights: BlendWeights = Field(default_factory=BlendWeights)
    intent_shift: bool = Field(
        True, description="let the session's inferred intent shift the blend weights"
    )
    intent_shift_strength: float = Field(
        0.5, ge=0, le=4, description="at confidence 1 a favoured component's weight is x(1+this)"
    )
    group_intent_boost: float = Field(
        1.0, ge=0, le=4, description="group-seeking sessions: group scores x(1+this*confidence)"
    )
    # business filters (request defaults)
    exclude_purchased: bool = Field(
        True, description="drop products already bought and groups already joined"
    )
    exclude_in_cart: bool = Field(True, description="drop products in the user's cart")
    default_kind: ItemKind = "both"
    max_per_category: int | None = Field(
        None, ge=1, description="diversity: at most this many items of one category"
    )
    max_limit: int = Field(200, ge=1, le=10_000)
    # candidate pools (per source, before blending)
    sequential_pool: int = Field(300, ge=1, le=100_000)
    session_pool: int = Field(300, ge=1, le=100_000)
    content_pool: int = Field(500, ge=1, le=100_000)
    popular_pool: int = Field(200, ge=1, le=100_000)
    # sequential: first- and second-order transitions from the anchors
    sequential_anchors: int = Field(5, ge=1, le=50, description="last anchors used, newest first")
    anchor_decay: float = Field(
        0.5, gt=0, le=1, description="weight of the anchor k steps before the last: decay**k"
    )
    second_order_weight: float = Field(
        1.0, ge=0, description="weight of the (A, B) -> C distribution next to the last anchor's"
    )
    reminder_weight: float = Field(
        0.7,
        ge=0,
        description="score of each anchor item itself (a revisit), x anchor_decay**k; "
        "revisits are ~1/3 of next clicks in session logs, whether or not the learned "
        "transitions record item -> same item",
    )
    # session: vector session-kNN over neighbour sessions (V-SKNN)
    knn_k: int = Field(100, ge=1, le=10_000, description="neighbours kept, most similar first")
    knn_sample: int = Field(
        500, ge=1, le=100_000, description="most recent candidate neighbours compared"
    )
    knn_last_items: int | None = Field(
        None, ge=1, description="use only this many last items of the current session"
    )
    knn_position_weighting: PositionWeighting = Field(
        "div", description="weight of a current-session item by its position (last weighs most)"
    )
    knn_score_weighting: PositionWeighting = Field(
        "div", description="discount of a neighbour by how far back its newest shared item is"
    )
    knn_neighbour_half_life_days: float | None = Field(
        None, gt=0, description="older neighbour sessions count less (None: no time decay)"
    )
    knn_follow_boost: float = Field(
        0.0,
        ge=0,
        description="extra weight of a neighbour's items that follow its match with the "
        "current session's newest item, decaying 1/distance",
    )
    # stan: the neighbours of the session source, weighted as STAN / V-STAN weigh them;
    # the lambdas are session-rec's V-STAN tuning for Diginetica, chosen over its defaults
    # and its yoochoose tuning on the trainer's validation sessions (docs/ranker.md)
    stan_position_lambda: float = Field(
        4.9, gt=0, description="current-session item at p of n weighs exp((p - n) / lambda)"
    )
    stan_recency_lambda_days: float = Field(
        40.0, gt=0, description="a neighbour last seen d days ago counts exp(-d / lambda)"
    )
    stan_neighbour_lambda: float = Field(
        4.9,
        gt=0,
        description="a neighbour's item k positions from its last shared item counts "
        "exp(-k / lambda)",
    )
    stan_match_lambda: float = Field(
        1.225,
        gt=0,
        description="a neighbour whose newest shared item is at p of n counts "
        "exp((p - n) / lambda)",
    )
    # content
    content_factors: ContentFactors = Field(default_factory=ContentFactors)
    item_recency_half_life_days: float = Field(30.0, gt=0)
    price_min_std: float = Field(
        0.25, gt=0, description="floor of the user's log-price spread (0.25 ~ +-28%)"
    )
    # group deals
    group_closing_horizon_hours: float = Field(
        48.0, gt=0, description="groups closing within this horizon get an urgency bonus"
    )
    group_deal_floor: float = Field(
        0.6, ge=0, le=1, description="deal factor of an empty group with no deadline"
    )
    # intent
    intent_evidence_events: float = Field(
        4.0, gt=0, description="events for ~63% of full confidence in an intent"
    )
    long_dwell_seconds: float = Field(60.0, gt=0, description="mean seconds per event of research")
    # popularity back-fill
    backfill_scale: float = Field(
        0.01, ge=0, le=1, description="score of back-filled items: this x normalised popularity"
    )
