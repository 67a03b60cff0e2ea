"""The interaction event contract (schema version 1, revision 1.1).

Every event is a pydantic model in one discriminated union on ``event_type``.
The type decides which fields are required: a ``product_view`` without a
``product_id`` is invalid, a ``rating_submitted`` needs a ``rating``.

Revision 1.1 adds, compatibly (so the schema version stays 1, see ``docs/events.md``):
``recommendation_id`` on any event (the user acted on that recommendation), and the type
``recommendation_shown``, the impression record the API writes for each list of
recommendations it returns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from recstream.contract.items import group_key, product_key

if TYPE_CHECKING:
    from pydantic_core import InitErrorDetails

SCHEMA_VERSION = 1
MAX_EVENT_BYTES = 16 * 1024
MAX_ID_LENGTH = 128
# user ids of shoppers who have not signed in (the API's anonymous tokens): an identity
# provider's users never carry it, and POST /identify merges such an id into a known user
ANONYMOUS_PREFIX = "anon-"
MAX_QUERY_LENGTH = 512
MAX_CATEGORY_LENGTH = 128
MAX_PROPERTIES = 16
MAX_PROPERTY_KEY_LENGTH = 64
MAX_PROPERTY_VALUE_LENGTH = 256

IdStr = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^\s{}|]+$")]
PropertyValue = str | int | float | bool | None
MAX_SHOWN_ITEMS = 100
# experiment and variant names: they become parts of Redis keys and metric labels
VariantStr = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class EventType(StrEnum):
    PURCHASE_COMPLETED = "purchase_completed"
    GROUP_JOIN_COMPLETE = "group_join_complete"
    PAYMENT_SUCCESS = "payment_success"
    CART_CHECKOUT = "cart_checkout"
    ADD_TO_CART = "add_to_cart"
    GROUP_JOIN_CLICK = "group_join_click"
    RATING_SUBMITTED = "rating_submitted"
    WISHLIST_ADD = "wishlist_add"
    PRODUCT_VIEW = "product_view"
    GROUP_VIEW = "group_view"
    PRODUCT_SEARCH = "product_search"
    PAGE_VIEW = "page_view"
    GROUP_LEAVE = "group_leave"
    CART_REMOVE = "cart_remove"
    WISHLIST_REMOVE = "wishlist_remove"
    RECOMMENDATION_SHOWN = "recommendation_shown"


DEFAULT_WEIGHTS: dict[EventType, float] = {
    EventType.PURCHASE_COMPLETED: 10.0,
    EventType.GROUP_JOIN_COMPLETE: 9.0,
    EventType.PAYMENT_SUCCESS: 8.0,
    EventType.CART_CHECKOUT: 7.0,
    EventType.ADD_TO_CART: 6.0,
    EventType.GROUP_JOIN_CLICK: 5.0,
    EventType.RATING_SUBMITTED: 4.0,
    EventType.WISHLIST_ADD: 3.0,
    EventType.PRODUCT_VIEW: 2.0,
    EventType.GROUP_VIEW: 2.0,
    EventType.PRODUCT_SEARCH: 1.5,
    EventType.PAGE_VIEW: 1.0,
    EventType.GROUP_LEAVE: -3.0,
    EventType.CART_REMOVE: -2.0,
    EventType.WISHLIST_REMOVE: -1.0,
    EventType.RECOMMENDATION_SHOWN: 0.0,  # not behaviour: never folded into the features
}

# Types the API writes itself (the impression record); the tracking endpoint refuses them.
WRITTEN_BY_API = frozenset({EventType.RECOMMENDATION_SHOWN})

# Which item an event type must name. Types not listed need no item.
_PRODUCT_REQUIRED = {
    EventType.PURCHASE_COMPLETED,
    EventType.ADD_TO_CART,
    EventType.RATING_SUBMITTED,
    EventType.WISHLIST_ADD,
    EventType.PRODUCT_VIEW,
    EventType.CART_REMOVE,
    EventType.WISHLIST_REMOVE,
}
_GROUP_REQUIRED = {
    EventType.GROUP_JOIN_COMPLETE,
    EventType.GROUP_JOIN_CLICK,
    EventType.GROUP_VIEW,
    EventType.GROUP_LEAVE,
}


class EventError(ValueError):
    """An event that cannot be decoded or does not satisfy the contract."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    schema_version: Literal[1] = 1
    event_id: IdStr
    user_id: IdStr
    session_id: IdStr | None = None
    occurred_at: AwareDatetime
    product_id: IdStr | None = None
    group_id: IdStr | None = None
    category: Annotated[str, Field(min_length=1, max_length=MAX_CATEGORY_LENGTH)] | None = None
    price: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = None
    quantity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    rating: Annotated[int, Field(ge=1, le=5)] | None = None
    query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_LENGTH)] | None = None
    properties: dict[
        Annotated[str, Field(min_length=1, max_length=MAX_PROPERTY_KEY_LENGTH)], PropertyValue
    ] = Field(default_factory=dict)
    recommendation_id: IdStr | None = None  # 1.1: the recommendation the user acted on

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise ValueError("occurred_at is outside the years 1..9999 in UTC") from exc

    @field_validator("properties")
    @classmethod
    def _bounded_properties(cls, value: dict[str, PropertyValue]) -> dict[str, PropertyValue]:
        if len(value) > MAX_PROPERTIES:
            raise ValueError(f"at most {MAX_PROPERTIES} properties")
        for key, item in value.items():
            if isinstance(item, str) and len(item) > MAX_PROPERTY_VALUE_LENGTH:
                raise ValueError(f"property {key!r} longer than {MAX_PROPERTY_VALUE_LENGTH}")
        return value

    @model_validator(mode="after")
    def _required_fields(self) -> _EventBase:
        event_type = EventType(getattr(self, "event_type"))  # noqa: B009 - set by subclasses
        if event_type in _PRODUCT_REQUIRED and self.product_id is None:
            raise ValueError(f"{event_type} requires product_id")
        if event_type in _GROUP_REQUIRED and self.group_id is None:
            raise ValueError(f"{event_type} requires group_id")
        if event_type is EventType.RATING_SUBMITTED and self.rating is None:
            raise ValueError("rating_submitted requires rating (1..5)")
        if event_type is EventType.PRODUCT_SEARCH and self.query is None:
            raise ValueError("product_search requires query")
        return self

    @property
    def item_key(self) -> str | None:
        """The item this event is about: ``g:<group>`` for group events, else ``p:<product>``."""
        event_type = EventType(getattr(self, "event_type"))  # noqa: B009 - set by subclasses
        if self.group_id is not None and (event_type in _GROUP_REQUIRED or self.product_id is None):
            return group_key(self.group_id)
        if self.product_id is not None:
            return product_key(self.product_id)
        return None


class PurchaseCompleted(_EventBase):
    event_type: Literal[EventType.PURCHASE_COMPLETED]


class GroupJoinComplete(_EventBase):
    event_type: Literal[EventType.GROUP_JOIN_COMPLETE]


class PaymentSuccess(_EventBase):
    event_type: Literal[EventType.PAYMENT_SUCCESS]


class CartCheckout(_EventBase):
    event_type: Literal[EventType.CART_CHECKOUT]


class AddToCart(_EventBase):
    event_type: Literal[EventType.ADD_TO_CART]


class GroupJoinClick(_EventBase):
    event_type: Literal[EventType.GROUP_JOIN_CLICK]


class RatingSubmitted(_EventBase):
    event_type: Literal[EventType.RATING_SUBMITTED]


class WishlistAdd(_EventBase):
    event_type: Literal[EventType.WISHLIST_ADD]


class ProductView(_EventBase):
    event_type: Literal[EventType.PRODUCT_VIEW]


class GroupView(_EventBase):
    event_type: Literal[EventType.GROUP_VIEW]


class ProductSearch(_EventBase):
    event_type: Literal[EventType.PRODUCT_SEARCH]


class PageView(_EventBase):
    event_type: Literal[EventType.PAGE_VIEW]


class GroupLeave(_EventBase):
    event_type: Literal[EventType.GROUP_LEAVE]


class CartRemove(_EventBase):
    event_type: Literal[EventType.CART_REMOVE]


class WishlistRemove(_EventBase):
    event_type: Literal[EventType.WISHLIST_REMOVE]


class ShownItem(BaseModel):
    """One item of a list of recommendations, where it was shown (1 = first)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["product", "group"]
    id: IdStr
    position: Annotated[int, Field(ge=1, le=MAX_SHOWN_ITEMS)]
    score: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @property
    def item_key(self) -> str:
        return product_key(self.id) if self.kind == "product" else group_key(self.id)


class RecommendationShown(_EventBase):
    """The impression record: the API returned ``items`` as recommendation
    ``recommendation_id``, ranked by ``variant``. ``product_id`` / ``group_id``, when
    given, are the item on screen. Written by the API; not behaviour: it changes no
    feature, rating or statistic, only what later events are attributed to."""

    event_type: Literal[EventType.RECOMMENDATION_SHOWN]
    variant: VariantStr
    items: Annotated[list[ShownItem], Field(max_length=MAX_SHOWN_ITEMS)]

    @model_validator(mode="after")
    def _identified(self) -> RecommendationShown:
        if self.recommendation_id is None:
            raise ValueError("recommendation_shown requires recommendation_id")
        if sorted(i.position for i in self.items) != list(range(1, len(self.items) + 1)):
            raise ValueError("items' positions must be 1..n, each once")
        return self

    @property
    def item_key(self) -> str | None:
        return None  # about a list of items, not one


Event = Annotated[
    PurchaseCompleted
    | GroupJoinComplete
    | PaymentSuccess
    | CartCheckout
    | AddToCart
    | GroupJoinClick
    | RatingSubmitted
    | WishlistAdd
    | ProductView
    | GroupView
    | ProductSearch
    | PageView
    | GroupLeave
    | CartRemove
    | WishlistRemove
    | RecommendationShown,
    Field(discriminator="event_type"),
]

EVENT_TYPE_NAMES = ", ".join(t.value for t in EventType)


def _with_plain_type_names(exc: ValidationError) -> ValidationError | None:
    """An unknown ``event_type``'s error listing the valid types as plain names, where
    pydantic lists the enum members' reprs (``<EventType.PRODUCT_VIEW: 'product_view'>``);
    None for any other error."""
    errors = exc.errors(include_url=False)
    if len(errors) != 1 or errors[0]["type"] != "union_tag_invalid":
        return None
    error = errors[0]
    details: InitErrorDetails = {
        "type": "union_tag_invalid",
        "loc": error["loc"],
        "input": error["input"],
        "ctx": {**error.get("ctx", {}), "expected_tags": EVENT_TYPE_NAMES},
    }
    return ValidationError.from_exception_data(exc.title, [details])


class EventAdapter:
    """``TypeAdapter(Event)``, whose error for an unknown ``event_type`` names the valid
    types plainly: ``... does not match any of the expected tags: purchase_completed, ...``."""

    def __init__(self) -> None:
        self.adapter: TypeAdapter[Event] = TypeAdapter(Event)

    def validate_json(self, data: str | bytes, /, *, strict: bool | None = None) -> Event:
        try:
            return self.adapter.validate_json(data, strict=strict)
        except ValidationError as exc:
            plain = _with_plain_type_names(exc)
            if plain is None:
                raise
            raise plain from None

    def validate_python(self, data: Any, /, *, strict: bool | None = None) -> Event:
        try:
            return self.adapter.validate_python(data, strict=strict)
        except ValidationError as exc:
            plain = _with_plain_type_names(exc)
            if plain is None:
                raise
            raise plain from None


EVENT_ADAPTER = EventAdapter()


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for err in errors[:3]:
        location = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{location}: {err['msg']}")
    return "; ".join(parts)


def check_event_size(raw: bytes) -> None:
    """Refuse a serialized event above :data:`MAX_EVENT_BYTES`, before any parsing."""
    if len(raw) > MAX_EVENT_BYTES:
        raise EventError("oversize", f"{len(raw)} bytes > {MAX_EVENT_BYTES}")


def decode_event(raw: bytes) -> Event:
    """Decode one serialized event, or raise :class:`EventError` with a reason."""
    check_event_size(raw)
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        kinds = {err["type"] for err in exc.errors(include_url=False)}
        if "json_invalid" in kinds or "json_type" in kinds:
            raise EventError("invalid_json", _first_error(exc)) from exc
        if "union_tag_invalid" in kinds or "union_tag_not_found" in kinds:
            raise EventError("unknown_event_type", _first_error(exc)) from exc
        raise EventError("schema_violation", _first_error(exc)) from exc


def validate_event(data: dict[str, Any]) -> Event:
    """Validate an already-parsed event (the API path)."""
    return EVENT_ADAPTER.validate_python(data)


def encode_event(event: Event) -> bytes:
    """Serialize an event as the canonical JSON carried on the topic."""
    return event.model_dump_json(exclude_none=True, exclude_defaults=False).encode()
