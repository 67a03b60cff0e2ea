"""Shoppers who have not signed in: anonymous tokens, and the merge of an anonymous id
into the user it signs in as.

``POST /anonymous`` needs no credentials: it mints a token for a new id ``anon-<random>``
(or, called with a valid anonymous token, a fresh token for the same id), limited per
client address. With it a page tracks events and asks for recommendations as any user
does. ``POST /identify`` moves that id's history to the known user
(:mod:`recstream.model.identify`: published again under the known user, then the
anonymous id erased), so the shopper's behaviour before signing in counts once, for them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from recstream.apply.operations import erase_if_unchanged
from recstream.contract.erasures import ErasureNotice
from recstream.contract.events import MAX_ID_LENGTH
from recstream.model.features import timestamp
from recstream.model.identify import merged_at, merged_events
from recstream.store.port import WatermarkConflictError
from recstream_api.auth import IDENTIFY, Principal, is_anonymous_id, new_anonymous_id
from recstream_api.deps import PrincipalDep, Resources, ResourcesDep, bearer_scheme
from recstream_api.exceptions import (
    ConflictError,
    ConsumerBehindError,
    InvalidRequestError,
    NotAuthenticatedError,
    PermissionDeniedError,
)
from recstream_api.identifiers import checked_id
from recstream_api.publisher import OutgoingRecord
from recstream_api.routes import PREFIX
from recstream_api.schemas import error_responses
from recstream_api.tracking import to_records

router = APIRouter(prefix=PREFIX, tags=["identity"])

MAX_ATTEMPTS = 5  # the anonymous id changed under the merge this often: 409
# how long a merge holds its anonymous id against merges into other users: longer than one
# request can take; a merge that failed keeps it that long, for its own retry
MERGE_CLAIM_SECONDS = 120.0
APPLIED_POLL_SECONDS = 0.05


class AnonymousToken(BaseModel):
    anonymous_id: str = Field(description="the shopper's id until they sign in (anon-...)")
    token: str = Field(description="bearer token for this id: read and track its own data")
    expires_at: datetime = Field(description="ask again (with this token) before then")


class LogPosition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partition: int = Field(ge=0, le=100_000)
    offset: int = Field(ge=0)


class IdentifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anonymous_token: str | None = Field(
        None,
        max_length=4096,
        description="the anonymous token the page held before signing in: the proof that "
        "the caller is that shopper (a signed-in user's token must send it)",
    )
    anonymous_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="the anonymous id, without its token: API keys with the identify "
        "scope and admins only (a shop's backend that saw the sign-in)",
    )
    user_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="the known user; default: the caller (required with an API key)",
    )
    after: LogPosition | None = Field(
        None,
        description="where the anonymous id's latest tracked event went (its `partition` "
        "and `offset` in the tracking answer): the merge waits until the consumer applied "
        "it, so nothing tracked just before signing in is left behind",
    )


class IdentifyResponse(BaseModel):
    user_id: str
    anonymous_id: str
    merged_events: int = Field(
        description="events of the anonymous id published again as the user's (0: "
        "nothing left to merge, e.g. it was merged already)"
    )
    merged_at: datetime | None = Field(
        description="the anonymous id is erased up to this time (its latest event): "
        "later events of it start a new anonymous history"
    )
    event_ids: list[str] = Field(description="the ids of the published events")


def _client(request: Request) -> Principal:
    """The rate-limit bucket of an unauthenticated caller: its address."""
    host = request.client.host if request.client else "unknown"
    return Principal(subject=f"address:{host}", user_id=host, is_admin=False, scopes=frozenset())


@router.post(
    "/anonymous",
    response_model=AnonymousToken,
    responses=error_responses(401, 404, 422),
    summary="A token for a shopper who has not signed in (no credentials needed; with a "
    "valid anonymous token: a fresh token for the same id)",
    # the bearer token is optional: OpenAPI's empty requirement says so
    openapi_extra={"security": [{}]},
)
async def anonymous(
    request: Request,
    resources: ResourcesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> AnonymousToken:
    resources.rate_limiter.check(_client(request), "query")
    authenticator = resources.authenticator
    anonymous_id = new_anonymous_id()
    if bearer is not None:
        caller = await authenticator.verify_token(bearer.credentials)
        if not caller.anonymous:
            raise InvalidRequestError(
                "the caller is signed in: anonymous tokens are for shoppers who are not"
            )
        assert caller.user_id is not None
        anonymous_id = caller.user_id
    token, expires = authenticator.anonymous_token(anonymous_id, resources.clock())
    return AnonymousToken(anonymous_id=anonymous_id, token=token, expires_at=expires)


async def _parties(resources: Resources, principal: Principal, body: IdentifyRequest) -> tuple[
    str, str
]:  # fmt: skip
    """(anonymous id, known user id), checked against who is calling: a signed-in user
    proves the anonymous id with its token and merges it into themselves; an admin, or an
    API key with the ``identify`` scope, may name both ids."""
    if principal.anonymous:
        raise PermissionDeniedError(
            "identify with the signed-in user's credential, and the anonymous token in the body"
        )
    trusted = principal.is_admin or (principal.user_id is None and IDENTIFY in principal.scopes)
    if principal.user_id is None and not trusted:
        raise PermissionDeniedError("this API key may not merge users (scope 'identify')")
    if (body.anonymous_token is None) == (body.anonymous_id is None):
        raise InvalidRequestError("give one of anonymous_token and anonymous_id")
    if body.anonymous_token is not None:
        try:
            proven = await resources.authenticator.verify_token(body.anonymous_token)
        except NotAuthenticatedError as exc:  # the caller's own credential is fine: not 401
            raise InvalidRequestError(
                f"anonymous_token: {exc.message}", details={"field": "anonymous_token"}
            ) from None
        if not proven.anonymous or proven.user_id is None:
            raise InvalidRequestError("anonymous_token is not an anonymous token")
        anonymous_id = proven.user_id
    elif not trusted:
        raise PermissionDeniedError(
            "a user proves the anonymous id with its token (anonymous_token)"
        )
    else:
        anonymous_id = checked_id(body.anonymous_id, "anonymous_id") or ""
    user_id = checked_id(body.user_id, "user_id") or principal.user_id
    if user_id is None:
        raise InvalidRequestError("user_id is required when calling with an API key")
    if principal.user_id is not None and user_id != principal.user_id and not principal.is_admin:
        raise PermissionDeniedError("a user may only merge an anonymous id into themselves")
    if not is_anonymous_id(anonymous_id):
        raise InvalidRequestError(f"{anonymous_id!r} is not an anonymous id (anon-...)")
    if is_anonymous_id(user_id):
        raise InvalidRequestError("user_id is an anonymous id: merge into a known user")
    return anonymous_id, user_id


async def _applied(resources: Resources, position: LogPosition) -> None:
    """Wait until the consumer applied the interactions topic up to ``position``."""
    topic = resources.settings.kafka.interactions_topic
    try:
        async with asyncio.timeout(resources.settings.identify_wait_seconds):
            while True:
                marks = await resources.store.partition_watermarks(topic)
                if marks.get(position.partition, -1) >= position.offset:
                    return
                await asyncio.sleep(APPLIED_POLL_SECONDS)
    except TimeoutError:
        raise ConsumerBehindError(
            f"the consumer has not applied partition {position.partition} up to offset "
            f"{position.offset} yet: retry"
        ) from None


@router.post(
    "/identify",
    response_model=IdentifyResponse,
    responses=error_responses(401, 403, 409, 422, 503),
    summary="Merge an anonymous shopper's history into the user they signed in as, once",
)
async def identify(
    resources: ResourcesDep,
    principal: PrincipalDep,
    body: Annotated[IdentifyRequest, Body()],
) -> IdentifyResponse:
    """The anonymous id's kept history is published again as the user's events (ids
    derived from the originals), then the anonymous id is erased up to its latest event,
    so its behaviour counts once, for the user. Safe to retry: a retry within the dedupe
    window (`core.dedupe_window_seconds`) publishes the same ids, which the user's fold
    drops, and once the anonymous id is erased there is nothing left to merge. 503 when
    the broker did not take the events or the erasure: retry."""
    anonymous_id, user_id = await _parties(resources, principal, body)
    if body.after is not None:
        await _applied(resources, body.after)
    holder = await resources.store.claim_merge(anonymous_id, user_id, MERGE_CLAIM_SECONDS)
    if holder != user_id:
        raise ConflictError("the anonymous id is being merged into another user")
    response = await _merge(resources, principal, anonymous_id, user_id)
    await resources.store.release_merge(anonymous_id)
    return response


async def _merge(
    resources: Resources, principal: Principal, anonymous_id: str, user_id: str
) -> IdentifyResponse:
    """Publish the copies, then erase the anonymous id, until its state held still."""
    settings = resources.settings
    merged: IdentifyResponse | None = None  # what an earlier attempt published
    for _ in range(MAX_ATTEMPTS):
        state = await resources.store.get_user(anonymous_id)
        at = merged_at(state) if state is not None else None
        if state is None or at is None:
            # nothing (left) to merge; or an earlier attempt's erasure was applied by the
            # consumer following the erasure log before this one's
            return merged or IdentifyResponse(
                user_id=user_id,
                anonymous_id=anonymous_id,
                merged_events=0,
                merged_at=None,
                event_ids=[],
            )
        events = merged_events(state, user_id)
        # the log first, in this order: the user's copies, then the erasure that takes the
        # anonymous originals back (a crash between the two is repaired by a retry)
        await resources.publisher.publish(to_records(events))
        notice = ErasureNotice(anonymous_id, at, principal.subject)
        await resources.publisher.publish(
            [OutgoingRecord(*notice.encode())], topic=settings.kafka.erasures_topic
        )
        merged = IdentifyResponse(
            user_id=user_id,
            anonymous_id=anonymous_id,
            merged_events=len(events),
            merged_at=timestamp(at),
            event_ids=[e.event_id for e in events],
        )
        try:
            await erase_if_unchanged(resources.store, state, at, settings.core, principal.subject)
        except WatermarkConflictError:
            continue  # an event of the anonymous id arrived: merge what is there now
        return merged
    raise WatermarkConflictError(anonymous_id)
