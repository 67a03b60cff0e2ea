"""The recommendation outcomes report: per variant, how often the lists it ranked were
clicked, added to carts, joined and bought, with 95% intervals, from the counters the
consumer keeps exactly once (docs/events.md, attribution)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from recstream.readmodel.outcomes import load_outcomes
from recstream.scoring.experiments import served_variants
from recstream_api.auth import require_admin
from recstream_api.deps import PrincipalDep, ResourcesDep
from recstream_api.exceptions import NotFoundError
from recstream_api.outcome_schemas import OutcomesResponse
from recstream_api.outcome_views import last_days, outcomes_view
from recstream_api.routes import PREFIX
from recstream_api.schemas import error_responses

router = APIRouter(prefix=PREFIX, tags=["operations"])

MAX_DAYS = 90


@router.get(
    "/recommendation-outcomes",
    response_model=OutcomesResponse,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Per variant: impressions, click-through, carts, joins, conversion and revenue",
)
async def recommendation_outcomes(
    resources: ResourcesDep,
    principal: PrincipalDep,
    days: Annotated[
        int, Query(ge=0, le=MAX_DAYS, description="also each of the last N UTC days")
    ] = 7,
    experiment: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=24,
            description="only this configured experiment's variants, each against the first",
        ),
    ] = None,
) -> OutcomesResponse:
    """Every variant counted so far (`blend`, `ranker-<version>`, `session-blend`,
    `next-items`): lists shown, and for each outcome the lists with at least one
    attributed event, their rate per list shown with its 95% Wilson interval, and by
    position; overall and per day of the lists."""
    require_admin(principal, "read the recommendation outcomes")
    now = resources.clock()
    chosen = None
    if experiment is not None:
        known = {e.id: e for e in resources.settings.experiments}
        chosen = known.get(experiment)
        if chosen is None:
            raise NotFoundError(
                f"no experiment {experiment!r} is configured", details={"known": sorted(known)}
            )
    names = served_variants(chosen) if chosen is not None else None
    found = await load_outcomes(resources.store, last_days(now.date(), days), names)
    return outcomes_view(found, now, chosen)
