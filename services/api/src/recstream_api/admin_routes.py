"""Administrative routes: recompute features from stored histories, erase a user, list,
activate and deactivate the learned ranker models (published by ``recstream model
publish`` / ``recstream train --publish``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from recstream.apply.operations import erase_user, recompute_users
from recstream.contract.erasures import ErasureNotice
from recstream.contract.events import MAX_ID_LENGTH
from recstream_api.admin_schemas import (
    ACTIVATION_EXAMPLES,
    EXTRACT_EXAMPLES,
    ErasureResponse,
    ExtractBatchRequest,
    ExtractBatchResponse,
    RankerActivation,
    RankersResponse,
)
from recstream_api.admin_views import erasure_view, extract_view, rankers_view
from recstream_api.auth import authorize_erasure, require_admin
from recstream_api.deps import PrincipalDep, Resources, ResourcesDep
from recstream_api.exceptions import InvalidRequestError
from recstream_api.publisher import OutgoingRecord
from recstream_api.rankers import choose_ranker, ranker_listing
from recstream_api.routes import PREFIX
from recstream_api.schemas import error_responses
from recstream_api.userscan import scan_users

router = APIRouter(prefix=PREFIX, tags=["operations"])


async def _selected_users(
    resources: Resources, body: ExtractBatchRequest
) -> tuple[list[str], int | None]:
    """The users of this request, and the next SCAN cursor when walking all users."""
    cap = resources.settings.extract_max_users
    if body.user_ids is not None:
        if len(body.user_ids) > cap:
            raise InvalidRequestError(
                f"at most {cap} user_ids per request, not {len(body.user_ids)}",
                details={"max_users": cap},
            )
        return list(dict.fromkeys(body.user_ids)), None
    page_size = min(body.page_size or cap, cap)
    return await scan_users(
        resources.redis,
        resources.store.keyspace,
        int(body.cursor or 0),
        page_size,
        resources.settings.extract_scan_calls,
    )


@router.post(
    "/features/extract-batch",
    response_model=ExtractBatchResponse,
    responses=error_responses(401, 403, 413, 422, 503),
    summary="Recompute users' features from their stored history and report the differences",
)
async def extract_batch(
    resources: ResourcesDep,
    principal: PrincipalDep,
    body: Annotated[ExtractBatchRequest, Body(openapi_examples=EXTRACT_EXAMPLES)],
) -> ExtractBatchResponse:
    require_admin(principal, "recompute features")
    users, next_cursor = await _selected_users(resources, body)
    settings = resources.settings
    now = resources.clock()
    results = await recompute_users(
        resources.store,
        users,
        now.timestamp(),
        settings.core,
        write=body.write,
        topic=settings.kafka.interactions_topic,
    )
    return extract_view(results, body.write, next_cursor, now)


@router.delete(
    "/users/{user_id}",
    response_model=ErasureResponse,
    responses=error_responses(401, 403, 409, 422, 503),
    summary="Erase a user: history, features, ratings, sessions and their statistics",
)
async def erase(
    resources: ResourcesDep,
    principal: PrincipalDep,
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
) -> ErasureResponse:
    subject = authorize_erasure(principal, user_id)
    now = resources.clock()
    # the log first: it is the record a rebuild of Redis restores erasures from, so an
    # erasure the broker did not acknowledge is not done (503) and Redis is not touched
    notice = ErasureNotice(subject, now.timestamp(), principal.subject)
    await resources.publisher.publish(
        [OutgoingRecord(*notice.encode())], topic=resources.settings.kafka.erasures_topic
    )
    receipt = await erase_user(
        resources.store, subject, now.timestamp(), resources.settings.core, principal.subject
    )
    return erasure_view(receipt, principal.subject)


RANKERS = "/rankers"


@router.get(
    RANKERS,
    response_model=RankersResponse,
    responses=error_responses(401, 403, 503),
    summary="The published learned ranker models, the active one and what this process serves",
)
async def rankers(resources: ResourcesDep, principal: PrincipalDep) -> RankersResponse:
    require_admin(principal, "list the ranker models")
    return rankers_view(await ranker_listing(resources.registry, resources.rankers))


@router.put(
    f"{RANKERS}/active",
    response_model=RankersResponse,
    responses=error_responses(401, 403, 404, 413, 422, 503),
    summary="Serve a published model, or the blend (version null): every replica within a poll",
)
async def set_active_ranker(
    resources: ResourcesDep,
    principal: PrincipalDep,
    body: Annotated[RankerActivation, Body(openapi_examples=ACTIVATION_EXAMPLES)],
) -> RankersResponse:
    """A version is checked to load before it is activated (422 when it cannot serve, 404
    when it is not published); this process follows at once, the others within one poll
    interval. ``{"version": null}`` deactivates the model: the hand-tuned blend serves."""
    require_admin(principal, "choose the ranker model")
    listing = await choose_ranker(resources.registry, resources.rankers, body.version)
    return rankers_view(listing)
