"""The recommendation routes: recommendations, explanations, session recommendations and
next-product predictions.

Each route resolves whose data it reads, loads the read model of that user in
a few batched Redis round trips (:func:`recstream.readmodel.load.load_context`), calls
the pure scoring core and maps the result. Recommendations and explanations rank with
the learned model this process serves (:mod:`recstream_api.rankers`), or the blend.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from recstream.contract.events import MAX_ID_LENGTH
from recstream.contract.items import item_key
from recstream.readmodel.context import RecommendationContext
from recstream.readmodel.load import load_context
from recstream.scoring import RecommendationRequest, explain, next_items, recommend
from recstream.scoring.models import ScoredItem
from recstream_api.auth import authorize_weight_override, resolve_user
from recstream_api.deps import PrincipalDep, Resources, ResourcesDep
from recstream_api.exceptions import InvalidRequestError
from recstream_api.experiments import Serving, serving
from recstream_api.identifiers import checked_id
from recstream_api.impressions import ListReturned, ShownList, ranker_variant
from recstream_api.recommendation_schemas import (
    MAX_LIMIT,
    RECOMMEND_EXAMPLES,
    ExplanationResponse,
    ItemKindFilter,
    NextProductsResponse,
    RecommendationsRequest,
    RecommendationsResponse,
    SessionRecommendationsResponse,
)
from recstream_api.recommendation_views import (
    anchor_of,
    core_request,
    explanation_view,
    item_keys,
    next_products_view,
    recommendations_view,
    session_recommendations_view,
)
from recstream_api.routes import PREFIX, GroupIdQuery, ProductIdQuery, UserIdQuery
from recstream_api.schemas import error_responses
from recstream_api.views import item_ref

router = APIRouter(prefix=PREFIX, tags=["recommendations"])

# the variants of the lists the session and next-product endpoints return
SESSION_VARIANT = "session-blend"
OVERRIDE_VARIANT = "override"  # a request that sets its own blend weights (admins)
NEXT_ITEMS_VARIANT = "next-items"


async def _serving(
    resources: Resources,
    subject: str,
    now: datetime,
    *,
    experiment: bool,
    served: str | None = None,
) -> Serving:
    """How POST /recommendations ranks for ``subject``: the running experiment's variant
    (unless the request sets its own weights), else the served model or the blend."""
    settings = resources.settings
    if not experiment:
        return Serving(None, settings.scoring, resources.rankers.current)
    return await serving(
        settings.experiments,
        subject,
        now,
        settings.scoring,
        resources.rankers.current,
        resources.arm_counters,
        resources.rng,
        served,
    )


def _shown(
    resources: Resources,
    ctx: RecommendationContext,
    variant: str,
    on_screen: str | None,
    items: Sequence[ScoredItem],
) -> ShownList:
    """The id and variant of a list about to be returned, its impression record queued
    (with the session the consumer places the user in now)."""
    session = ctx.session.session_id if ctx.session is not None else None
    scored = [(i.item, i.score) for i in items]
    at = datetime.fromtimestamp(ctx.now, UTC)  # the request's time, as the context was read
    returned = ListReturned(variant, ctx.user_id, session, on_screen, scored, at)
    return resources.impressions.record(returned)


LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="how many items")]
KindQuery = Annotated[
    ItemKindFilter | None, Query(description="products, groups or both (default: the setting)")
]


def _id_query(description: str) -> Any:
    return Query(min_length=1, max_length=MAX_ID_LENGTH, description=description)


AnchorQuery = Annotated[
    str | None,
    _id_query(
        "predict what follows this product (default: the session's items); it is never returned"
    ),
]
CurrentProductQuery = Annotated[str | None, _id_query("the product on screen: never returned")]
CurrentGroupQuery = Annotated[str | None, _id_query("the group deal on screen: never returned")]
IncludeSeenQuery = Annotated[
    bool,
    Query(
        description='items already seen in the current session may come back ("continue '
        'browsing"), marked seen_in_session'
    ),
]


@router.post(
    "/recommendations",
    response_model=RecommendationsResponse,
    responses=error_responses(401, 403, 413, 422, 503),
    summary="Ranked products and group deals for the user, now",
)
async def recommendations(
    resources: ResourcesDep,
    principal: PrincipalDep,
    body: Annotated[RecommendationsRequest, Body(openapi_examples=RECOMMEND_EXAMPLES)],
) -> RecommendationsResponse:
    """Ranked by the learned model this process serves when one is active (`ranker` names
    its version; `include_reasons` adds each item's top features), else by the blend;
    while an experiment runs, as the user's variant says (`variant` names it). The list's
    `recommendation_id` goes with the events of the items the user opens from it."""
    settings = resources.settings
    subject = resolve_user(principal, body.user_id)
    authorize_weight_override(principal, body.weights is not None, settings.allow_weight_override)
    now = resources.clock()
    ctx = await load_context(
        resources.reads,
        subject,
        now.timestamp(),
        settings.core,
        anchor=anchor_of(body.context),
        item_cache=resources.items,
    )
    how = await _serving(resources, subject, now, experiment=body.weights is None)
    result = recommend(
        ctx,
        core_request(body),
        how.scoring,
        settings.core,
        how.ranker,
        reasons=body.include_reasons,
    )
    resources.metrics.count_recommendations(result.ranker)
    variant = how.variant or (OVERRIDE_VARIANT if body.weights else ranker_variant(result.ranker))
    shown = _shown(resources, ctx, variant, anchor_of(body.context), result.items)
    return recommendations_view(ctx, result, now, shown)


@router.get(
    "/recommendations/explain",
    response_model=ExplanationResponse,
    responses=error_responses(401, 403, 422, 503),
    summary="Why an item would or would not be recommended to the user now",
)
async def explain_recommendation(
    resources: ResourcesDep,
    principal: PrincipalDep,
    product_id: ProductIdQuery = None,
    group_id: GroupIdQuery = None,
    limit: LimitQuery = 10,
    include_seen: IncludeSeenQuery = False,
    user_id: UserIdQuery = None,
    variant: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="the `variant` of the list the item is on: while an experiment "
            "runs, explain as that list was ranked (a bandit's arm); it must be the user's",
        ),
    ] = None,
) -> ExplanationResponse:
    """Ranked as `POST /recommendations` ranks it: by the learned model when one is served,
    whose features that placed the item are named in `features` and in `reason` (always:
    for one item they are cheap), else by the blend. While an experiment runs, as the
    user's variant ranks (a bandit draws an arm, unless `variant` names the list's)."""
    settings = resources.settings
    item = item_ref(product_id, group_id)
    subject = resolve_user(principal, user_id)
    now = resources.clock()
    ctx = await load_context(
        resources.reads, subject, now.timestamp(), settings.core, item_cache=resources.items
    )
    request = RecommendationRequest(limit=limit, include_seen=include_seen)
    how = await _serving(resources, subject, now, experiment=True, served=variant)
    if variant is not None and how.variant is None and ":" in variant:
        raise InvalidRequestError(
            f"variant {variant!r} is an experiment's, and no experiment runs now",
            details={"field": "variant"},
        )
    if variant is not None and how.variant is not None and how.variant != variant:
        raise InvalidRequestError(
            f"variant {variant!r} does not rank this user's lists now ({how.variant!r} does)",
            details={"field": "variant"},
        )
    explanation = explain(ctx, item.key, request, how.scoring, settings.core, how.ranker)
    return explanation_view(ctx, explanation, limit, now)


@router.get(
    "/session/recommendations",
    response_model=SessionRecommendationsResponse,
    responses=error_responses(401, 403, 422, 503),
    summary="Recommendations from the current session, with its inferred intent",
)
async def session_recommendations(
    resources: ResourcesDep,
    principal: PrincipalDep,
    limit: LimitQuery = 10,
    kind: KindQuery = None,
    product_id: CurrentProductQuery = None,
    group_id: CurrentGroupQuery = None,
    include_seen: IncludeSeenQuery = False,
    user_id: UserIdQuery = None,
) -> SessionRecommendationsResponse:
    """Ranked by the hand-tuned blend of the session-driven components (sequential from
    the session's last items, session-kNN), never by the learned model, which is trained
    on the full blend's features: `ranker` is always `blend`."""
    settings = resources.settings
    product_id = checked_id(product_id, "product_id")
    group_id = checked_id(group_id, "group_id")
    subject = resolve_user(principal, user_id)
    now = resources.clock()
    ctx = await load_context(
        resources.reads, subject, now.timestamp(), settings.core, item_cache=resources.items
    )
    current = item_keys([product_id] if product_id else [], [group_id] if group_id else [])
    request = RecommendationRequest(
        limit=limit, kind=kind, current_items=current, include_seen=include_seen
    )
    result = recommend(ctx, request, resources.session_scoring, settings.core)
    shown = _shown(resources, ctx, SESSION_VARIANT, item_key(product_id, group_id), result.items)
    return session_recommendations_view(ctx, result, now, shown)


@router.get(
    "/sequential/next-products",
    response_model=NextProductsResponse,
    responses=error_responses(401, 403, 422, 503),
    summary="The products most likely to come next after a product or the session's items",
)
async def next_products(
    resources: ResourcesDep,
    principal: PrincipalDep,
    product_id: AnchorQuery = None,
    limit: LimitQuery = 10,
    include_seen: IncludeSeenQuery = False,
    user_id: UserIdQuery = None,
) -> NextProductsResponse:
    settings = resources.settings
    product_id = checked_id(product_id, "product_id")
    subject = resolve_user(principal, user_id)
    now = resources.clock()
    anchor = item_key(product_id, None)
    ctx = await load_context(
        resources.reads,
        subject,
        now.timestamp(),
        settings.core,
        anchor=anchor,
        item_cache=resources.items,
    )
    exclude = frozenset({anchor}) if anchor is not None else frozenset()
    items = next_items(ctx, limit, settings.scoring, exclude=exclude, include_seen=include_seen)
    shown = _shown(resources, ctx, NEXT_ITEMS_VARIANT, anchor, items)
    return next_products_view(ctx, product_id, items, now, shown)
