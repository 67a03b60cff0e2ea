"""Non-personalised lists: items similar to the one on screen, and trending items.

Both read only streaming statistics (nobody's profile), so any credential that may read
(any user's token, a key with the read scope) may ask, and the items are the same for
every caller at the same moment. A track-only key may not.

Asked with a user's (or an anonymous shopper's) token, the list also gets a
``recommendation_id`` and its impression is recorded for that user, as for the
personalised lists, so the clicks it earns are counted under its ``variant``
(``similar-items``, ``trending``; a user's state keeps at most five of these lists among
its attribution places, so item pages never push a personalised list out). Asked with an
API key there is no user to count it for: no id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from recstream.contract.events import MAX_CATEGORY_LENGTH
from recstream.model.attribution import SIMILAR_ITEMS, TRENDING
from recstream.readmodel.load import load_item_context, load_trending
from recstream.scoring.similar import ListedItem, similar_items, trending_items
from recstream_api.auth import Principal, require_read
from recstream_api.deps import PrincipalDep, Resources, ResourcesDep
from recstream_api.impressions import ListReturned
from recstream_api.recommendation_routes import KindQuery, LimitQuery
from recstream_api.recommendation_schemas import (
    VARIANT_DESCRIPTION,
    ItemKindName,
    ItemReference,
)
from recstream_api.recommendation_views import item_reference
from recstream_api.routes import PREFIX, GroupIdQuery, ProductIdQuery
from recstream_api.schemas import error_responses
from recstream_api.views import item_ref

router = APIRouter(prefix=PREFIX, tags=["items"])


class ListedItemView(BaseModel):
    rank: int = Field(ge=1)
    kind: ItemKindName
    id: str
    score: float = Field(description="in [0, 1]; the best-placed evidence scores 1")
    category: str | None
    components: dict[str, float] = Field(
        description="why it is listed: each statistic's normalised value (similar: "
        "viewed_together, same_shoppers, viewed_next; trending: popularity)"
    )


SIMILAR_VARIANT = SIMILAR_ITEMS
TRENDING_VARIANT = TRENDING
_ID_DESCRIPTION = (
    "this list's id, when a user asked (null with an API key): send it as the "
    "recommendation_id of the events that follow from the list"
)


class ListedResponse(BaseModel):
    computed_at: datetime
    items: list[ListedItemView]
    recommendation_id: str | None = Field(description=_ID_DESCRIPTION)
    variant: str = Field(description=VARIANT_DESCRIPTION)


class SimilarItemsResponse(ListedResponse):
    item: ItemReference


class TrendingResponse(ListedResponse):
    category: str | None


def _shown(
    resources: Resources,
    principal: Principal,
    variant: str,
    on_screen: str | None,
    listed: Sequence[ListedItem],
    now: datetime,
) -> str | None:
    """The list's id, its impression queued for the calling user (None: no user)."""
    if principal.user_id is None:
        return None
    scored = [(entry.item, entry.score) for entry in listed]
    returned = ListReturned(variant, principal.user_id, None, on_screen, scored, now)
    return resources.impressions.record(returned).recommendation_id


def _views(listed: list[ListedItem]) -> list[ListedItemView]:
    views = []
    for rank, entry in enumerate(listed, start=1):
        reference = item_reference(entry.item)
        views.append(
            ListedItemView(
                rank=rank,
                kind=reference.kind,
                id=reference.id,
                score=round(entry.score, 6),
                category=entry.category,
                components={k: round(v, 6) for k, v in entry.components.items()},
            )
        )
    return views


@router.get(
    "/items/similar",
    response_model=SimilarItemsResponse,
    responses=error_responses(401, 403, 422, 503),
    summary="Items similar to a product or group deal: viewed together, by the same "
    "shoppers, next (the item itself is never listed)",
)
async def similar(
    resources: ResourcesDep,
    principal: PrincipalDep,
    product_id: ProductIdQuery = None,
    group_id: GroupIdQuery = None,
    limit: LimitQuery = 10,
    kind: KindQuery = None,
) -> SimilarItemsResponse:
    require_read(principal)
    item = item_ref(product_id, group_id).key
    now = resources.clock()
    ctx = await load_item_context(
        resources.reads, item, now.timestamp(), resources.settings.core, item_cache=resources.items
    )
    listed = similar_items(ctx, item, limit, kind, resources.settings.scoring)
    return SimilarItemsResponse(
        item=item_reference(item),
        computed_at=now,
        items=_views(listed),
        recommendation_id=_shown(resources, principal, SIMILAR_VARIANT, item, listed, now),
        variant=SIMILAR_VARIANT,
    )


@router.get(
    "/items/trending",
    response_model=TrendingResponse,
    responses=error_responses(401, 403, 422, 503),
    summary="The most popular items now (decayed popularity), overall or in a category",
)
async def trending(
    resources: ResourcesDep,
    principal: PrincipalDep,
    category: Annotated[
        str | None, Query(min_length=1, max_length=MAX_CATEGORY_LENGTH, description="a category")
    ] = None,
    limit: LimitQuery = 10,
    kind: KindQuery = None,
) -> TrendingResponse:
    require_read(principal)
    now = resources.clock()
    ctx = await load_trending(
        resources.reads,
        now.timestamp(),
        resources.settings.core,
        category,
        item_cache=resources.items,
    )
    listed = trending_items(ctx, category, limit, kind, resources.settings.scoring)
    return TrendingResponse(
        category=category,
        computed_at=now,
        items=_views(listed),
        recommendation_id=_shown(resources, principal, TRENDING_VARIANT, None, listed, now),
        variant=TRENDING_VARIANT,
    )
