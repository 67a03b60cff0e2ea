"""Response models of the recommendation outcomes report (``GET /recommendation-outcomes``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class OutcomeRate(BaseModel):
    count: int = Field(description="lists shown with at least one such attributed event")
    rate: float = Field(description="count / impressions")
    ci95: tuple[float, float] = Field(description="the rate's 95% Wilson score interval")
    by_position: dict[int, int] = Field(
        description="count by the position of the item the first such event was on"
    )


class OutcomeCounters(BaseModel):
    impressions: int = Field(description="lists of recommendations shown")
    items: int = Field(description="items in those lists")
    click: OutcomeRate = Field(description="a view of a listed item: the click-through rate")
    cart: OutcomeRate
    join: OutcomeRate
    purchase: OutcomeRate = Field(description="the conversion rate")
    revenue_cents: int = Field(description="price x quantity of every attributed purchase")
    revenue_per_impression: float = Field(description="revenue_cents / impressions")
    revenue_per_impression_ci95: tuple[float, float] | None = Field(
        description="its 95% interval (normal approximation, from the lists' revenue "
        "variance; each list's revenue counts up to 100,000 in the variance); null for "
        "revenue counted before the variance was kept"
    )


class DayOutcomes(OutcomeCounters):
    day: str = Field(description="the UTC day the lists were shown on")


class Lift(BaseModel):
    difference: float = Field(
        description="this variant's rate (revenue: cents per list shown) minus the control's"
    )
    ci95: tuple[float, float] | None = Field(
        description="95% interval of the difference (Wald; revenue: Welch, null where "
        "either variant's revenue has no interval)"
    )


class VariantOutcomesView(BaseModel):
    variant: str
    total: OutcomeCounters = Field(description="since the variant was first counted")
    days: list[DayOutcomes] = Field(description="the days asked for, newest first")
    vs_control: dict[str, Lift] | None = Field(
        None,
        description="with ?experiment=: click and purchase rates and revenue per list "
        "against the experiment's first variant (null for the control itself)",
    )


class ExperimentView(BaseModel):
    id: str
    running: bool
    start: datetime | None
    end: datetime | None
    shares: dict[str, float] = Field(description="variant -> share of the experiment's users")
    control: str = Field(description="the served name the others are compared with")


class OutcomesResponse(BaseModel):
    experiment: ExperimentView | None = Field(None, description="with ?experiment=")
    variants: list[VariantOutcomesView]
    computed_at: datetime
