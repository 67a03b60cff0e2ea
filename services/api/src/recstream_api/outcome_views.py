"""From the outcome counters to the report's response (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from recstream.readmodel.outcomes import (
    Outcomes,
    VariantOutcomes,
    difference,
    revenue_difference,
)
from recstream.scoring.experiments import Experiment, served_variants
from recstream_api.outcome_schemas import (
    DayOutcomes,
    ExperimentView,
    Lift,
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
        "revenue_per_impression_ci95": outcomes.revenue_interval,
    }


def _lifts(outcomes: Outcomes, control: Outcomes) -> dict[str, Lift]:
    lifts = {}
    for outcome in ("click", "purchase"):
        value, interval = difference(outcomes.rate(outcome), control.rate(outcome))
        lifts[outcome] = Lift(difference=value, ci95=interval)
    revenue, revenue_interval = revenue_difference(outcomes, control)
    lifts["revenue_per_impression"] = Lift(difference=revenue, ci95=revenue_interval)
    return lifts


def experiment_view(experiment: Experiment, now: datetime) -> ExperimentView:
    return ExperimentView(
        id=experiment.id,
        running=experiment.running(now),
        start=experiment.start,
        end=experiment.end,
        shares={experiment.served_name(v): v.share for v in experiment.variants},
        control=served_variants(experiment)[0],
    )


def outcomes_view(
    found: Sequence[VariantOutcomes], now: datetime, experiment: Experiment | None = None
) -> OutcomesResponse:
    """Each variant's counters; with ``experiment``, each compared with its first variant."""
    control = found[0].total if experiment is not None and found else None
    return OutcomesResponse(
        experiment=experiment_view(experiment, now) if experiment is not None else None,
        variants=[
            VariantOutcomesView(
                variant=v.variant,
                total=OutcomeCounters.model_validate(_counters(v.total)),
                days=[
                    DayOutcomes.model_validate({"day": day, **_counters(outcomes)})
                    for day, outcomes in v.days.items()
                ],
                vs_control=_lifts(v.total, control) if control is not None and i else None,
            )
            for i, v in enumerate(found)
        ],
        computed_at=now,
    )
