"""The HTTP routes under ``/api/behavioral-ml``. Each one translates: request in, core call,
response out; errors are mapped in :mod:`recstream_api.errors`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from recstream.contract.events import MAX_ID_LENGTH
from recstream_api.auth import authorize_track, resolve_user
from recstream_api.deps import PrincipalDep, Resources, ResourcesDep
from recstream_api.health import check_health
from recstream_api.schemas import (
    TRACK_EXAMPLES,
    BehavioralProfileResponse,
    HealthResponse,
    ImplicitRatingResponse,
    RejectedEvent,
    TrackAccepted,
    TrackedEvent,
    error_responses,
)
from recstream_api.tracking import check_events, refusal, split_body, to_records
from recstream_api.views import item_ref, profile_view, rating_view

PREFIX = "/api/behavioral-ml"

router = APIRouter(prefix=PREFIX)


def _id_query(description: str) -> Any:
    return Query(min_length=1, max_length=MAX_ID_LENGTH, description=description)


UserIdQuery = Annotated[
    str | None, _id_query("the user to read (admins only); default: the caller")
]
ProductIdQuery = Annotated[str | None, _id_query("the product (give this or group_id)")]
GroupIdQuery = Annotated[str | None, _id_query("the group deal (give this or product_id)")]


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Redis or the broker is down"}},
    tags=["operations"],
    summary="Redis and broker reachability, and the ranker this process serves",
)
async def health(resources: ResourcesDep) -> JSONResponse:
    return await _health_response(resources, readiness=False)


@router.get(
    "/ready",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Redis is down"}},
    tags=["operations"],
    summary="Readiness: Redis answers (the broker is reported, a broker outage only degrades)",
)
async def ready(resources: ResourcesDep) -> JSONResponse:
    """The readiness probe's endpoint: every read needs Redis; only tracking needs the
    broker, and while it is down tracking answers 503 with Retry-After, so a broker outage
    must not take the API out of its Service (``status: degraded``, 200)."""
    return await _health_response(resources, readiness=True)


async def _health_response(resources: Resources, *, readiness: bool) -> JSONResponse:
    report = await check_health(
        resources.redis,
        resources.publisher,
        resources.settings.health_timeout_seconds,
        resources.version,
        resources.rankers.status,
        readiness=readiness,
    )
    status = 503 if report.status == "unavailable" else 200
    return JSONResponse(report.model_dump(mode="json"), status_code=status)


@router.post(
    "/track-interaction",
    status_code=202,
    response_model=TrackAccepted,
    responses=error_responses(401, 403, 413, 422, 503),
    tags=["tracking"],
    summary="Publish one event or a batch to the interactions topic",
)
async def track_interaction(
    resources: ResourcesDep,
    principal: PrincipalDep,
    body: Annotated[
        dict[str, Any],
        Body(
            description="One event of the contract, or {'events': [...]} (see the event "
            "contract). A batch is accepted event by event: the valid events are "
            "published and each bad one is listed in `rejected` with its reasons; a "
            "batch of nothing but bad events is refused (422).",
            openapi_examples=TRACK_EXAMPLES,
        ),
    ],
    atomic: Annotated[
        bool,
        Query(description="All or nothing: one bad event refuses the whole batch (422)."),
    ] = False,
) -> TrackAccepted:
    settings = resources.settings
    raw_events = split_body(body, settings.max_events_per_request)
    events, rejected = check_events(raw_events, resources.clock().timestamp(), settings.core)
    if rejected and (atomic or not events or "events" not in body):
        raise refusal(rejected, len(raw_events))
    authorize_track(principal, [event.user_id for event in events])
    delivered = await resources.publisher.publish(to_records(events))
    return TrackAccepted(
        accepted=len(events),
        event_ids=[event.event_id for event in events],
        events=[
            TrackedEvent(event_id=e.event_id, partition=d.partition, offset=d.offset)
            for e, d in zip(events, delivered, strict=True)
        ],
        rejected=[RejectedEvent.model_validate(r) for r in rejected],
    )


@router.get(
    "/user-profile/behavioral",
    response_model=BehavioralProfileResponse,
    responses=error_responses(401, 403, 422, 503),
    tags=["profiles"],
    summary="The user's 22 behavioural features, now",
)
async def behavioral_profile(
    resources: ResourcesDep, principal: PrincipalDep, user_id: UserIdQuery = None
) -> BehavioralProfileResponse:
    subject = resolve_user(principal, user_id)
    state = await resources.store.get_user(subject)
    return profile_view(subject, state, resources.clock(), resources.settings.core)


@router.get(
    "/features/implicit-rating",
    response_model=ImplicitRatingResponse,
    responses=error_responses(401, 403, 422, 503),
    tags=["profiles"],
    summary="The user's implicit rating of one product or group, now, with its components",
)
async def implicit_rating(
    resources: ResourcesDep,
    principal: PrincipalDep,
    product_id: ProductIdQuery = None,
    group_id: GroupIdQuery = None,
    user_id: UserIdQuery = None,
) -> ImplicitRatingResponse:
    item = item_ref(product_id, group_id)
    subject = resolve_user(principal, user_id)
    state = await resources.store.get_user(subject)
    return rating_view(subject, state, item, resources.clock(), resources.settings.core)
