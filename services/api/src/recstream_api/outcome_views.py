"""From the outcome counters to the report's response (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from recstream.readmodel.outcomes import Outcomes, VariantOutcomes
from recstream_api.outcome_schemas import (
    DayOutcomes,
    OutcomeCounters,
    OutcomeRate,
    OutcomesResponse,
    VariantOutcomesView,
)


def last_days(today: date, n: int) -> list[str]:
    """``n`` UTC days up to ``today``, newest first, as ``YYYY-MM-DD``."""
    return [(today - timedelta(days=i)).isoformat() for i in range(n)]


def _rate(outcomes: Outcomes, outcome: str) -> OutcomeRate:
    rate = outcomes.rate(outcome)
    return OutcomeRate(
        count=rate.count,
        rate=rate.value,
        ci95=rate.interval,
        by_position=dict(outcomes.by_position.get(outcome, {})),
    )


def _counters(outcomes: Outcomes) -> dict[str, object]:
    return {
        "impressions": outcomes.impressions,
        "items": outcomes.items,
        "click": _rate(outcomes, "click"),
        "cart": _rate(outcomes, "cart"),
        "join": _rate(outcomes, "join"),
        "purchase": _rate(outcomes, "purchase"),
        "revenue_cents": outcomes.revenue_cents,
        "revenue_per_impression": outcomes.revenue_per_impression,
    }


def outcomes_view(found: Sequence[VariantOutcomes], now: datetime) -> OutcomesResponse:
    return OutcomesResponse(
        variants=[
            VariantOutcomesView(
                variant=v.variant,
                total=OutcomeCounters.model_validate(_counters(v.total)),
                days=[
                    DayOutcomes.model_validate({"day": day, **_counters(outcomes)})
                    for day, outcomes in v.days.items()
                ],
            )
            for v in found
        ],
        computed_at=now,
    )
