"""Non-personalised lists: items similar to the one on screen, and trending items.

Both read only streaming statistics (nobody's profile), so any credential that may read
(any user's token, a key with the read scope) may ask, and the answer is the same for
every caller at the same moment: a page can cache it. A track-only key may not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from recstream.contract.events import MAX_CATEGORY_LENGTH
from recstream.readmodel.load import load_item_context, load_trending
from recstream.scoring.similar import ListedItem, similar_items, trending_items
from recstream_api.auth import require_read
from recstream_api.deps import PrincipalDep, ResourcesDep
from recstream_api.recommendation_routes import KindQuery, LimitQuery
from recstream_api.recommendation_schemas import (
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


class SimilarItemsResponse(BaseModel):
    item: ItemReference
    computed_at: datetime
    items: list[ListedItemView]


class TrendingResponse(BaseModel):
    category: str | None
    computed_at: datetime
    items: list[ListedItemView]


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
    ctx = await load_item_context(resources.reads, item, now.timestamp(), resources.settings.core)
    listed = similar_items(ctx, item, limit, kind, resources.settings.scoring)
    return SimilarItemsResponse(item=item_reference(item), computed_at=now, items=_views(listed))


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
    ctx = await load_trending(resources.reads, now.timestamp(), resources.settings.core, category)
    listed = trending_items(ctx, category, limit, kind, resources.settings.scoring)
    return TrendingResponse(category=category, computed_at=now, items=_views(listed))
