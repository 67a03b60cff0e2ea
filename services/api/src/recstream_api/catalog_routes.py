"""The catalog over HTTP: products and group deals upserted or deleted by an admin.

``POST /catalog`` takes one record of the catalog contract
(:mod:`recstream.contract.catalog`) or ``{"records": [...]}`` and publishes each valid
record to the ``catalog`` topic, keyed by item, as a catalog feed would; the consumer
applies them. Like a tracking batch, a batch is accepted record by record (the bad ones
come back in ``rejected``; ``?atomic=true``: all or nothing). ``DELETE
/catalog/products/{id}`` and ``/catalog/groups/{id}`` publish a delete. Admin
credentials only (an admin token or an ``admin`` API key).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field, ValidationError

from recstream.contract.catalog import CATALOG_ADAPTER, GroupRecord, ProductRecord
from recstream.contract.events import MAX_EVENT_BYTES, MAX_ID_LENGTH
from recstream_api.auth import Principal, require_admin
from recstream_api.deps import PrincipalDep, Resources, ResourcesDep
from recstream_api.exceptions import InvalidEventsError, InvalidRequestError
from recstream_api.publisher import OutgoingRecord
from recstream_api.routes import PREFIX
from recstream_api.schemas import EventProblem, RejectedEvent, error_responses
from recstream_api.tracking import validation_problems

router = APIRouter(prefix=PREFIX, tags=["catalog"])

Record = ProductRecord | GroupRecord


class PublishedItem(BaseModel):
    kind: Literal["product", "group"]
    id: str
    op: Literal["upsert", "delete"]
    partition: int
    offset: int


class CatalogAccepted(BaseModel):
    """Catalog records acknowledged by the broker; the consumer applies them shortly after."""

    accepted: int
    items: list[PublishedItem]
    rejected: list[RejectedEvent] = Field(default_factory=list)


def _split(body: dict[str, Any], max_records: int) -> list[Any]:
    if "records" not in body:
        return [body]
    records = body["records"]
    if len(body) != 1 or not isinstance(records, list):
        raise InvalidRequestError("a batch body is exactly {'records': [record, ...]}")
    if not 1 <= len(records) <= max_records:
        raise InvalidRequestError(f"a batch holds 1 to {max_records} records, not {len(records)}")
    return records


def _check(raw: Any) -> Record:
    if not isinstance(raw, dict):
        raise InvalidRequestError("a catalog record is a JSON object")
    text = json.dumps(raw)
    if len(text) > MAX_EVENT_BYTES:
        raise InvalidRequestError(f"{len(text)} bytes > {MAX_EVENT_BYTES}")
    return CATALOG_ADAPTER.validate_json(text, strict=True)


def _checked(raws: list[Any]) -> tuple[list[Record], list[RejectedEvent]]:
    records: list[Record] = []
    rejected: list[RejectedEvent] = []
    for index, raw in enumerate(raws):
        try:
            records.append(_check(raw))
        except ValidationError as exc:
            problems = [EventProblem.model_validate(p) for p in validation_problems(exc)]
            rejected.append(RejectedEvent(index=index, errors=problems))
        except InvalidRequestError as exc:
            problem = EventProblem(loc="record", msg=exc.message, type="invalid_record")
            rejected.append(RejectedEvent(index=index, errors=[problem]))
    return records, rejected


async def _publish(resources: Resources, records: list[Record]) -> list[PublishedItem]:
    outgoing = [
        OutgoingRecord(r.item.encode(), r.model_dump_json(exclude_none=True).encode())
        for r in records
    ]
    delivered = await resources.publisher.publish(
        outgoing, topic=resources.settings.kafka.catalog_topic
    )
    return [
        PublishedItem(
            kind=r.kind,
            id=r.product_id if isinstance(r, ProductRecord) else r.group_id,
            op=r.op,
            partition=d.partition,
            offset=d.offset,
        )
        for r, d in zip(records, delivered, strict=True)
    ]


@router.post(
    "/catalog",
    status_code=202,
    response_model=CatalogAccepted,
    responses=error_responses(401, 403, 413, 422, 503),
    summary="Upsert or delete products and group deals (published to the catalog topic)",
)
async def upsert_catalog(
    resources: ResourcesDep,
    principal: PrincipalDep,
    body: Annotated[
        dict[str, Any],
        Body(
            description="One catalog record ({'kind': 'product', 'product_id': ..., ...} or "
            "{'kind': 'group', 'group_id': ..., ...}; 'op': 'delete' deletes), or "
            "{'records': [...]}. A batch is accepted record by record."
        ),
    ],
    atomic: Annotated[
        bool,
        Query(description="All or nothing: one bad record refuses the whole batch (422)."),
    ] = False,
) -> CatalogAccepted:
    require_admin(principal, "change the catalog")
    raws = _split(body, resources.settings.max_events_per_request)
    records, rejected = _checked(raws)
    if rejected and (atomic or not records or "records" not in body):
        raise InvalidEventsError(
            f"{len(rejected)} of {len(raws)} records are invalid; nothing was published",
            details=[r.model_dump() for r in rejected],
        )
    items = await _publish(resources, records)
    return CatalogAccepted(accepted=len(items), items=items, rejected=rejected)


ItemId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]


@router.delete(
    "/catalog/products/{product_id}",
    status_code=202,
    response_model=CatalogAccepted,
    responses=error_responses(401, 403, 422, 503),
    summary="Delete a product from the catalog",
)
async def delete_product(
    resources: ResourcesDep, principal: PrincipalDep, product_id: ItemId
) -> CatalogAccepted:
    return await _delete(resources, principal, {"kind": "product", "product_id": product_id})


@router.delete(
    "/catalog/groups/{group_id}",
    status_code=202,
    response_model=CatalogAccepted,
    responses=error_responses(401, 403, 422, 503),
    summary="Delete a group deal from the catalog",
)
async def delete_group(
    resources: ResourcesDep, principal: PrincipalDep, group_id: ItemId
) -> CatalogAccepted:
    return await _delete(resources, principal, {"kind": "group", "group_id": group_id})


async def _delete(
    resources: Resources, principal: Principal, item: dict[str, str]
) -> CatalogAccepted:
    require_admin(principal, "change the catalog")
    records, rejected = _checked([{**item, "op": "delete"}])
    if rejected:
        raise InvalidEventsError(
            "the id is not a valid item id", details=[r.model_dump() for r in rejected]
        )
    items = await _publish(resources, records)
    return CatalogAccepted(accepted=len(items), items=items)
