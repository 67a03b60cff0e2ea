"""The catalog contract: products and group deals, upserted or deleted on the ``catalog`` topic.

Records are keyed by item (``p:<product_id>`` or ``g:<group_id>``). Recommendations
work without a catalog (items known only from events) and use it when present
for categories, prices, stock and group state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from recstream.contract.events import MAX_CATEGORY_LENGTH, MAX_EVENT_BYTES, EventError, IdStr
from recstream.contract.items import group_key, product_key

GroupStatus = Literal["open", "full", "closed", "cancelled"]
Attribute = str | int | float | bool


class _CatalogBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    op: Literal["upsert", "delete"] = "upsert"
    updated_at: AwareDatetime | None = None


class ProductRecord(_CatalogBase):
    kind: Literal["product"]
    product_id: IdStr
    category: Annotated[str, Field(min_length=1, max_length=MAX_CATEGORY_LENGTH)] | None = None
    price: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None
    attributes: dict[Annotated[str, Field(max_length=64)], Attribute] = Field(
        default_factory=dict, max_length=32
    )
    in_stock: bool = True
    created_at: AwareDatetime | None = None

    @property
    def item(self) -> str:
        return product_key(self.product_id)


class GroupRecord(_CatalogBase):
    kind: Literal["group"]
    group_id: IdStr
    product_id: IdStr | None = None
    group_price: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = None
    target_size: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    current_size: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    closes_at: AwareDatetime | None = None
    status: GroupStatus = "open"
    created_at: AwareDatetime | None = None

    @property
    def item(self) -> str:
        return group_key(self.group_id)


CatalogRecord = Annotated[ProductRecord | GroupRecord, Field(discriminator="kind")]
CATALOG_ADAPTER: TypeAdapter[CatalogRecord] = TypeAdapter(CatalogRecord)


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """What recommendation scoring knows of one item from the catalog."""

    item: str
    kind: Literal["product", "group"]
    category: str | None = None
    price: float | None = None
    in_stock: bool = True
    created_at: float | None = None
    name: str | None = None
    # group deals only
    product_id: str | None = None
    target_size: int | None = None
    current_size: int = 0
    closes_at: float | None = None
    status: GroupStatus = "open"

    def group_open(self, now: float) -> bool:
        """A group can still be joined: open, not full, not past its closing time."""
        if self.kind != "group":
            return True
        if self.status != "open":
            return False
        if self.target_size is not None and self.current_size >= self.target_size:
            return False
        return self.closes_at is None or self.closes_at > now


def decode_catalog_record(raw: bytes) -> CatalogRecord:
    if len(raw) > MAX_EVENT_BYTES:
        raise EventError("oversize", f"{len(raw)} bytes > {MAX_EVENT_BYTES}")
    try:
        return CATALOG_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        location = ".".join(str(p) for p in first["loc"]) or "record"
        raise EventError("schema_violation", f"{location}: {first['msg']}") from exc


def to_catalog_item(record: ProductRecord | GroupRecord) -> CatalogItem:
    if isinstance(record, ProductRecord):
        return CatalogItem(
            item=record.item,
            kind="product",
            category=record.category,
            price=record.price,
            in_stock=record.in_stock,
            created_at=record.created_at.timestamp() if record.created_at else None,
            name=record.name,
        )
    return CatalogItem(
        item=record.item,
        kind="group",
        price=record.group_price,
        created_at=record.created_at.timestamp() if record.created_at else None,
        product_id=record.product_id,
        target_size=record.target_size,
        current_size=record.current_size,
        closes_at=record.closes_at.timestamp() if record.closes_at else None,
        status=record.status,
    )


def catalog_item_to_dict(item: CatalogItem) -> dict[str, Any]:
    return {k: getattr(item, k) for k in CatalogItem.__slots__}


def catalog_item_from_dict(data: dict[str, Any]) -> CatalogItem:
    return CatalogItem(**data)
