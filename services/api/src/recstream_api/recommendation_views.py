"""From API requests to the core's scoring requests, and from its results to API responses.

Pure functions: a loaded :class:`~recstream.readmodel.context.RecommendationContext`
and a core result in, a response model out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from recstream.contract.items import group_key, item_key, product_key, split_key
from recstream.model.features import timestamp
from recstream.model.state import SessionState
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import BlendWeights, ScoringConfig
from recstream.scoring.filters import session_items
from recstream.scoring.items import category_of
from recstream.scoring.models import (
    Explanation,
    Intent,
    RecommendationRequest,
    Recommendations,
    ScoredItem,
)
from recstream_api.impressions import ShownList
from recstream_api.recommendation_schemas import (
    BlendWeightsUsed,
    ComponentScores,
    ExplanationResponse,
    FeatureContribution,
    IntentView,
    ItemReference,
    NextProduct,
    NextProductsResponse,
    PageContext,
    RecommendationsRequest,
    RecommendationsResponse,
    RecommendedItem,
    SessionRecommendationsResponse,
    SessionView,
    TriggerEventView,
)
from recstream_api.views import watermark_position


def item_reference(key: str) -> ItemReference:
    kind, item_id = split_key(key)
    return ItemReference(kind=kind, id=item_id)


def anchor_of(context: PageContext | None) -> str | None:
    """The item the sequential component starts from: the page's product or group."""
    if context is None:
        return None
    return item_key(context.product_id, context.group_id)


def item_keys(product_ids: Iterable[str], group_ids: Iterable[str]) -> frozenset[str]:
    return frozenset({*map(product_key, product_ids), *map(group_key, group_ids)})


def on_screen(context: PageContext | None) -> frozenset[str]:
    """The items on screen: the page's own product or group and the others it shows."""
    if context is None:
        return frozenset()
    shown = item_keys(context.shown_product_ids, context.shown_group_ids)
    anchor = anchor_of(context)
    return shown | {anchor} if anchor is not None else shown


def core_request(body: RecommendationsRequest) -> RecommendationRequest:
    """The scoring request of a body; the items on screen are never recommended back."""
    filters = body.filters
    include = filters.include_categories
    return RecommendationRequest(
        limit=body.limit,
        kind=body.kind,
        include_categories=frozenset(include) if include is not None else None,
        exclude_categories=frozenset(filters.exclude_categories),
        exclude_items=item_keys(filters.exclude_product_ids, filters.exclude_group_ids),
        current_items=on_screen(body.context),
        include_seen=body.include_seen,
        exclude_purchased=filters.exclude_purchased,
        exclude_in_cart=filters.exclude_in_cart,
        max_per_category=filters.max_per_category,
        weights=body.weights.model_dump() if body.weights is not None else None,
    )


def session_scoring(config: ScoringConfig) -> ScoringConfig:
    """The blend of session recommendations: the session-driven components only (sequential
    from the session's last items, session-kNN), still shifted by the session's intent."""
    weights = config.weights
    session_only = BlendWeights(content=0.0, sequential=weights.sequential, session=weights.session)
    return config.model_copy(update={"weights": session_only})


def intent_view(intent: Intent) -> IntentView:
    return IntentView(
        kind=intent.kind,
        confidence=intent.confidence,
        scores=dict(intent.scores),
        signals=dict(intent.signals),
    )


def weights_used(weights: Mapping[str, float]) -> BlendWeightsUsed:
    return BlendWeightsUsed(
        content=weights.get("content", 0.0),
        sequential=weights.get("sequential", 0.0),
        session=weights.get("session", 0.0),
    )


def component_scores(components: Mapping[str, float]) -> ComponentScores:
    return ComponentScores(
        content=components.get("content", 0.0),
        sequential=components.get("sequential", 0.0),
        session=components.get("session", 0.0),
        popular=components.get("popular", 0.0),
    )


def feature_contributions(pairs: Sequence[tuple[str, float]]) -> list[FeatureContribution]:
    return [FeatureContribution(feature=name, contribution=value) for name, value in pairs]


def recommended_items(
    ctx: RecommendationContext, items: Iterable[ScoredItem], seen: frozenset[str]
) -> list[RecommendedItem]:
    out = []
    for rank, scored in enumerate(items, start=1):
        ref = item_reference(scored.item)
        out.append(
            RecommendedItem(
                rank=rank,
                kind=ref.kind,
                id=ref.id,
                score=scored.score,
                source=scored.source,
                components=component_scores(scored.components),
                category=category_of(ctx, scored.item),
                seen_in_session=scored.item in seen,
                reasons=feature_contributions(scored.reasons),
            )
        )
    return out


def recommendations_view(
    ctx: RecommendationContext, result: Recommendations, now: datetime, shown: ShownList
) -> RecommendationsResponse:
    return RecommendationsResponse(
        user_id=result.user_id,
        source=result.source,
        cold_start=result.cold_start,
        ranker=result.ranker,
        intent=intent_view(result.intent),
        weights=weights_used(result.weights),
        items=recommended_items(ctx, result.items, result.session_items),
        computed_at=now,
        watermark=watermark_position(ctx.state.watermark),
        recommendation_id=shown.recommendation_id,
        variant=shown.variant,
    )


def session_view(session: SessionState | None) -> SessionView | None:
    if session is None:
        return None
    return SessionView(
        session_id=session.session_id,
        started_at=timestamp(session.started_at),
        last_event_at=timestamp(session.last_at),
        events=session.events,
        items=[item_reference(item) for item in session.items],
        counts=dict(session.counts),
        categories=dict(session.categories),
    )


def session_recommendations_view(
    ctx: RecommendationContext, result: Recommendations, now: datetime, shown: ShownList
) -> SessionRecommendationsResponse:
    return SessionRecommendationsResponse(
        user_id=result.user_id,
        session=session_view(ctx.session),
        intent=intent_view(result.intent),
        source=result.source,
        ranker=result.ranker,
        weights=weights_used(result.weights),
        items=recommended_items(ctx, result.items, result.session_items),
        computed_at=now,
        watermark=watermark_position(ctx.state.watermark),
        recommendation_id=shown.recommendation_id,
        variant=shown.variant,
    )


def next_products_view(
    ctx: RecommendationContext,
    product_id: str | None,
    items: Iterable[ScoredItem],
    now: datetime,
    shown: ShownList,
) -> NextProductsResponse:
    seen = session_items(ctx)
    return NextProductsResponse(
        user_id=ctx.user_id,
        product_id=product_id,
        anchors=[item_reference(a) for a in ctx.anchors],
        items=[
            NextProduct(
                rank=rank,
                product_id=item_reference(s.item).id,
                score=s.score,
                source=s.source,
                components=component_scores(s.components),
                seen_in_session=s.item in seen,
            )
            for rank, s in enumerate(items, start=1)
        ],
        computed_at=now,
        watermark=watermark_position(ctx.state.watermark),
        recommendation_id=shown.recommendation_id,
        variant=shown.variant,
    )


def explanation_view(
    ctx: RecommendationContext, explanation: Explanation, limit: int, now: datetime
) -> ExplanationResponse:
    return ExplanationResponse(
        user_id=ctx.user_id,
        item=item_reference(explanation.item),
        recommended=explanation.recommended,
        rank=explanation.rank,
        limit=limit,
        score=explanation.score,
        source=explanation.source,
        components=component_scores(explanation.components),
        ranker=explanation.ranker,
        features=feature_contributions(explanation.features),
        intent=intent_view(explanation.intent),
        filtered_by=explanation.filtered_by,
        triggers=[
            TriggerEventView(
                event_id=t.event_id,
                event_type=t.event_type,
                occurred_at=timestamp(t.at),
                item=item_reference(t.item) if t.item is not None else None,
                component=t.component,
            )
            for t in explanation.triggers
        ],
        reason=explanation.reason,
        computed_at=now,
        watermark=watermark_position(ctx.state.watermark),
    )
