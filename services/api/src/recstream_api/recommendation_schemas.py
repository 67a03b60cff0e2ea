"""Request and response models of the recommendation endpoints, with OpenAPI examples.

Items are named by kind and id (``{"kind": "product", "id": "p-9"}``); the
core's ``p:<id>`` / ``g:<id>`` keys stay inside the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recstream.contract.events import MAX_CATEGORY_LENGTH, IdStr
from recstream_api.schemas import WatermarkPosition

_TIME = "2025-03-14T09:26:53.589793Z"
MAX_LIMIT = 100
MAX_LIST = 100

Category = Annotated[str, Field(min_length=1, max_length=MAX_CATEGORY_LENGTH)]
ItemKindName = Literal["product", "group"]
ItemKindFilter = Literal["products", "groups", "both"]
SourceName = Literal["content", "sequential", "session", "popular", "cold_start"]


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class RecommendationFilters(BaseModel):
    """Business filters, applied before the top-K cut. Out-of-stock products and group deals
    that cannot be joined (closed, full, expired) are always removed."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as documented

    exclude_purchased: bool | None = Field(
        None, description="drop products bought and groups joined (default: the setting)"
    )
    exclude_in_cart: bool | None = Field(
        None, description="drop products in the user's cart (default: the setting)"
    )
    include_categories: list[Category] | None = Field(
        None, max_length=MAX_LIST, description="only items of these categories"
    )
    exclude_categories: list[Category] = Field([], max_length=MAX_LIST)
    exclude_product_ids: list[IdStr] = Field([], max_length=MAX_LIST)
    exclude_group_ids: list[IdStr] = Field([], max_length=MAX_LIST)
    max_per_category: int | None = Field(
        None, ge=1, le=MAX_LIMIT, description="diversity: at most this many items per category"
    )


class PageContext(BaseModel):
    """Where the user is: the product or group page they look at (the sequential component
    starts from it), other items the page shows, and the page type. Items on screen are
    never recommended back."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as documented

    product_id: IdStr | None = Field(None, description="the product the page is about")
    group_id: IdStr | None = Field(None, description="the group deal the page is about")
    shown_product_ids: list[IdStr] = Field(
        [], max_length=MAX_LIST, description="other products on screen (a cart, a comparison)"
    )
    shown_group_ids: list[IdStr] = Field(
        [], max_length=MAX_LIST, description="other group deals on screen"
    )
    page: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")] | None = (
        Field(
            None,
            description="page type, e.g. home, product, cart, search (accepted; the "
            "ranking does not use it)",
        )
    )

    @model_validator(mode="after")
    def _one_item(self) -> PageContext:
        if self.product_id is not None and self.group_id is not None:
            raise ValueError("give at most one of product_id or group_id")
        return self


class WeightOverride(BaseModel):
    """Blend weights for this request (admins, or everyone when the API allows it).
    They are re-normalised over the components with signal and not shifted by intent."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as documented

    content: float = Field(0.0, ge=0, le=100)
    sequential: float = Field(0.0, ge=0, le=100)
    session: float = Field(0.0, ge=0, le=100)

    @model_validator(mode="after")
    def _some_weight(self) -> WeightOverride:
        if self.content + self.sequential + self.session <= 0:
            raise ValueError("at least one weight must be positive")
        return self


class RecommendationsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as documented

    limit: int = Field(10, ge=1, le=MAX_LIMIT)
    kind: ItemKindFilter | None = Field(None, description="default: the setting (both)")
    filters: RecommendationFilters = Field(default_factory=RecommendationFilters)
    context: PageContext | None = None
    include_seen: bool = Field(
        False,
        description='items already seen in the current session may come back ("continue '
        'browsing"), marked seen_in_session; the item on screen never does',
    )
    weights: WeightOverride | None = None
    include_reasons: bool = Field(
        False,
        description="when a learned model ranks, give each item the features that raised its "
        "score most (costs about 0.2 ms per item, so only on request)",
    )
    user_id: IdStr | None = Field(None, description="the user to recommend for (admins only)")


RECOMMEND_EXAMPLES: dict[str, Any] = {
    "simple": {"summary": "ten items for the caller", "value": {"limit": 10}},
    "product_page": {
        "summary": "on a product page, products only, one per category",
        "value": {
            "limit": 5,
            "kind": "products",
            "filters": {"max_per_category": 1, "exclude_categories": ["gift-cards"]},
            "context": {"product_id": "p-9", "page": "product"},
        },
    },
    "reasons": {
        "summary": "with the learned model's reasons for each item",
        "value": {"limit": 5, "include_reasons": True},
    },
    "continue_browsing": {
        "summary": "a shelf of items seen earlier in the session (marked seen_in_session)",
        "value": {"limit": 5, "include_seen": True, "context": {"product_id": "p-9"}},
    },
    "override": {
        "summary": "an admin tries other blend weights for a user",
        "value": {"limit": 20, "user_id": "u-123", "weights": {"content": 1, "sequential": 1}},
    },
}


class ItemReference(BaseModel):
    kind: ItemKindName
    id: str


class ComponentScores(BaseModel):
    """Blend: each component's weighted contribution (they add up to the score). Learned
    ranker: each source's normalised score, the evidence behind the item (not shares of
    its score). ``popular`` is the back-fill score of items no component scored."""

    content: float = 0.0
    sequential: float = 0.0
    session: float = 0.0
    popular: float = 0.0


class FeatureContribution(BaseModel):
    """A feature of the learned ranker and how much it raised the item's score (its SHAP
    value, LightGBM's ``pred_contrib``)."""

    feature: str
    contribution: float


class BlendWeightsUsed(BaseModel):
    """The effective weights: re-normalised over the components with signal, intent-shifted."""

    content: float
    sequential: float
    session: float


class IntentView(BaseModel):
    kind: Literal[
        "transactional", "research", "browsing", "deal_seeking", "group_seeking", "unknown"
    ]
    confidence: float = Field(ge=0, le=1)
    scores: dict[str, float] = Field(description="each intent's share of the evidence")
    signals: dict[str, float] = Field(description="the session figures the intent is read from")


class RecommendedItem(BaseModel):
    rank: int = Field(ge=1)
    kind: ItemKindName
    id: str
    score: float
    source: SourceName
    components: ComponentScores
    category: str | None
    seen_in_session: bool = Field(
        description="already seen in the current session (only with include_seen)"
    )
    reasons: list[FeatureContribution] = Field(
        [],
        description="the features that raised the item's score most, largest first (only "
        "with include_reasons, when a learned model ranked)",
    )


RANKER_DESCRIPTION = (
    "what ranked the items: the learned model's version, or 'blend' (the hand-tuned blend: "
    "no model is active, it did not load, the user is a cold start or the request overrides "
    "the weights)"
)
VARIANT_DESCRIPTION = (
    "what ranked the list, as its outcomes are counted: 'blend' or 'ranker-<version>' "
    "(POST /recommendations; 'override' with the request's own weights; "
    "'<experiment>:<variant>' while an experiment runs), 'session-blend', 'next-items', "
    "'similar-items', 'trending'"
)
_INTENT_EXAMPLE: dict[str, Any] = {
    "kind": "transactional",
    "confidence": 0.61,
    "scores": {"transactional": 0.72, "research": 0.28},
    "signals": {"events": 5.0, "cart_adds": 1.0},
}
_ITEM_EXAMPLE: dict[str, Any] = {
    "rank": 1,
    "kind": "product",
    "id": "p-10",
    "score": 0.82,
    "source": "sequential",
    "components": {"content": 0.21, "sequential": 0.45, "session": 0.16, "popular": 0.0},
    "category": "kitchen",
    "seen_in_session": False,
    "reasons": [],
}


class RecommendationsResponse(BaseModel):
    model_config = _examples(
        {
            "user_id": "u-123",
            "source": "sequential",
            "cold_start": False,
            "ranker": "blend",
            "intent": _INTENT_EXAMPLE,
            "weights": {"content": 0.45, "sequential": 0.35, "session": 0.2},
            "items": [_ITEM_EXAMPLE],
            "computed_at": _TIME,
            "watermark": {"partition": 7, "offset": 1042},
            "recommendation_id": "8d1f3b0e6c2a4f57a0e9c3b5d7f1e2a4",
            "variant": "blend",
        },
        {
            "user_id": "u-123",
            "source": "sequential",
            "cold_start": False,
            "ranker": "2026-03-01-a",
            "intent": _INTENT_EXAMPLE,
            "weights": {"content": 0.0, "sequential": 0.0, "session": 0.0},
            "items": [
                {
                    **_ITEM_EXAMPLE,
                    "score": 0.71,
                    "components": {"content": 0.58, "sequential": 1.0, "session": 0.67},
                    "reasons": [
                        {"feature": "sequential_score", "contribution": 0.42},
                        {"feature": "covisitation_score", "contribution": 0.17},
                    ],
                }
            ],
            "computed_at": _TIME,
            "watermark": {"partition": 7, "offset": 1042},
            "recommendation_id": "8d1f3b0e6c2a4f57a0e9c3b5d7f1e2a4",
            "variant": "ranker-2026-03-01-a",
        },
    )

    user_id: str
    source: SourceName = Field(
        description="the dominant source; 'popular': only popularity back-fill; 'cold_start': "
        "the user has no events yet"
    )
    cold_start: bool
    ranker: str = Field(description=RANKER_DESCRIPTION)
    intent: IntentView
    weights: BlendWeightsUsed = Field(
        description="the blend's effective weights (all 0 when a learned model ranked)"
    )
    items: list[RecommendedItem]
    computed_at: datetime
    watermark: WatermarkPosition | None = Field(description="the last event the state reflects")
    recommendation_id: str = Field(
        description="this list's id: send it as the recommendation_id of the events that "
        "follow a click on one of its items (docs/events.md, attribution)"
    )
    variant: str = Field(description=VARIANT_DESCRIPTION)


class TriggerEventView(BaseModel):
    event_id: str
    event_type: str
    occurred_at: datetime
    item: ItemReference | None
    component: str = Field(description="the component the event fed")


class ExplanationResponse(BaseModel):
    model_config = _examples(
        {
            "user_id": "u-123",
            "item": {"kind": "product", "id": "p-10"},
            "recommended": True,
            "rank": 1,
            "limit": 10,
            "score": 0.82,
            "source": "sequential",
            "components": _ITEM_EXAMPLE["components"],
            "ranker": "2026-03-01-a",
            "features": [
                {"feature": "sequential_score", "contribution": 0.42},
                {"feature": "covisitation_score", "contribution": 0.17},
            ],
            "intent": _INTENT_EXAMPLE,
            "filtered_by": None,
            "triggers": [
                {
                    "event_id": "e-41",
                    "event_type": "product_view",
                    "occurred_at": _TIME,
                    "item": {"kind": "product", "id": "p-9"},
                    "component": "sequential",
                }
            ],
            "reason": "Often comes next after p-9; model 2026-03-01-a ranks it for "
            "sequential_score (+0.42), covisitation_score (+0.17) (rank 1).",
            "computed_at": _TIME,
            "watermark": {"partition": 7, "offset": 1042},
        }
    )

    user_id: str
    item: ItemReference
    recommended: bool = Field(description="in the top `limit` recommendations now")
    rank: int | None = Field(description="1-based rank after the filters, if it is ranked at all")
    limit: int
    score: float
    source: SourceName | None
    components: ComponentScores
    ranker: str = Field(description=RANKER_DESCRIPTION)
    features: list[FeatureContribution] = Field(
        description="learned model: the features that raised the item's score most, "
        "largest first (empty for the blend, or an item the model did not score)"
    )
    intent: IntentView
    filtered_by: str | None = Field(description="the business filter that removes the item")
    triggers: list[TriggerEventView] = Field(description="the user's own events behind it")
    reason: str
    computed_at: datetime
    watermark: WatermarkPosition | None


class SessionView(BaseModel):
    session_id: str
    started_at: datetime
    last_event_at: datetime
    events: int
    items: list[ItemReference] = Field(description="in event order, oldest first")
    counts: dict[str, int] = Field(description="events by type")
    categories: dict[str, int]


class SessionRecommendationsResponse(BaseModel):
    model_config = _examples(
        {
            "user_id": "u-123",
            "session": {
                "session_id": "s-77",
                "started_at": _TIME,
                "last_event_at": _TIME,
                "events": 5,
                "items": [{"kind": "product", "id": "p-9"}],
                "counts": {"product_view": 4, "add_to_cart": 1},
                "categories": {"kitchen": 5},
            },
            "intent": _INTENT_EXAMPLE,
            "source": "sequential",
            "ranker": "blend",
            "weights": {"content": 0.0, "sequential": 0.6, "session": 0.4},
            "items": [_ITEM_EXAMPLE],
            "computed_at": _TIME,
            "watermark": {"partition": 7, "offset": 1042},
            "recommendation_id": "8d1f3b0e6c2a4f57a0e9c3b5d7f1e2a4",
            "variant": "session-blend",
        }
    )

    user_id: str
    session: SessionView | None = Field(description="null: no session within the session gap")
    intent: IntentView
    source: SourceName
    ranker: str = Field(description="always 'blend': session recommendations use the blend")
    weights: BlendWeightsUsed
    items: list[RecommendedItem]
    computed_at: datetime
    watermark: WatermarkPosition | None
    recommendation_id: str = Field(
        description="this list's id: send it as the recommendation_id of the events that "
        "follow a click on one of its items (docs/events.md, attribution)"
    )
    variant: str = Field(description=VARIANT_DESCRIPTION)


class NextProduct(BaseModel):
    rank: int = Field(ge=1)
    product_id: str
    score: float
    source: SourceName
    components: ComponentScores
    seen_in_session: bool = Field(
        description="already seen in the current session (only with include_seen)"
    )


class NextProductsResponse(BaseModel):
    model_config = _examples(
        {
            "user_id": "u-123",
            "product_id": "p-9",
            "anchors": [{"kind": "product", "id": "p-9"}],
            "items": [
                {
                    "rank": 1,
                    "product_id": "p-10",
                    "score": 0.9,
                    "source": "sequential",
                    "components": {"sequential": 0.6, "session": 0.3},
                    "seen_in_session": False,
                }
            ],
            "computed_at": _TIME,
            "watermark": {"partition": 7, "offset": 1042},
            "recommendation_id": "8d1f3b0e6c2a4f57a0e9c3b5d7f1e2a4",
            "variant": "next-items",
        }
    )

    user_id: str
    product_id: str | None = Field(description="the product asked about; null: the session's")
    anchors: list[ItemReference] = Field(description="the items the predictions start from")
    items: list[NextProduct]
    computed_at: datetime
    watermark: WatermarkPosition | None
    recommendation_id: str = Field(
        description="this list's id: send it as the recommendation_id of the events that "
        "follow a click on one of its items (docs/events.md, attribution)"
    )
    variant: str = Field(description=VARIANT_DESCRIPTION)
