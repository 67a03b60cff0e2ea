"""The one place errors become HTTP answers.

Every error answer has the body ``{"error": {"code", "message", "details", "request_id"}}``
(``request_id`` is the request's ``X-Request-ID``, :mod:`recstream_api.requestlog`):

| error | status |
|---|---|
| :class:`NotAuthenticatedError` | 401, ``WWW-Authenticate: Bearer`` |
| :class:`PermissionDeniedError` | 403 |
| :class:`NotFoundError` | 404 |
| body above the cap (:mod:`recstream_api.limits`) | 413 |
| :class:`RateLimitedError` (:mod:`recstream_api.ratelimit`) | 429, ``Retry-After`` |
| :class:`InvalidRequestError`, ``EventError``, ``ScoringError``, ``RequestValidationError`` | 422 |
| ``WatermarkConflictError`` (a concurrent writer kept winning), :class:`ConflictError` | 409 |
| :class:`BrokerUnavailableError`, ``StoreUnavailableError`` | 503, ``Retry-After`` |
| :class:`KeysUnavailableError` (the JWKS endpoint cannot be read) | 503, ``Retry-After`` |
| :class:`ConsumerBehindError` (an event identify waits for is not applied) | 503, ``Retry-After`` |
| a body that cannot be parsed (not UTF-8, FastAPI's 400) | 422 |
| Starlette ``HTTPException`` (404, 405, ...) | its own status |
| anything else | 500, no detail |
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from recstream.contract.events import EventError
from recstream.scoring.blend import ScoringError
from recstream.store.port import StoreUnavailableError, WatermarkConflictError
from recstream_api.exceptions import (
    ApiError,
    BrokerUnavailableError,
    ConflictError,
    ConsumerBehindError,
    InvalidRequestError,
    KeysUnavailableError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from recstream_api.requestlog import REQUEST_ID_HEADER, request_id_of

log = logging.getLogger(__name__)

_STATUS: dict[type[ApiError], int] = {
    NotAuthenticatedError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    InvalidRequestError: 422,
    ConflictError: 409,
    BrokerUnavailableError: 503,
    ConsumerBehindError: 503,
    KeysUnavailableError: 503,
    RateLimitedError: 429,
}


def error_body(
    code: str, message: str, details: Any = None, request_id: str | None = None
) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": details, "request_id": request_id}
    }


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    request_id: str | None = None,
) -> JSONResponse:
    body = error_body(code, message, details, request_id)
    return JSONResponse(body, status_code=status, headers=headers)


def _answer(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error answer to ``request``, with its request id."""
    request_id = request_id_of(request.scope)
    return error_response(status, code, message, details, headers, request_id=request_id)


def _status_of(exc: ApiError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def _retry_after(request: Request) -> dict[str, str]:
    seconds = getattr(request.app.state, "retry_after_seconds", 1)
    return {"Retry-After": str(seconds)}


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    status = _status_of(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    elif status == 503:
        headers = _retry_after(request)
    elif isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    return _answer(request, status, exc.code, exc.message, exc.details, headers)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("store unavailable: %s", exc)
    return _answer(
        request,
        503,
        "store_unavailable",
        "the state store is unavailable",
        headers=_retry_after(request),
    )


async def _event_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EventError)
    return _answer(request, 422, "invalid_event", exc.detail, {"reason": exc.reason})


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return _answer(
        request, 409, "conflict", "the user's state kept changing during the request; try again"
    )


async def _scoring_error(request: Request, exc: Exception) -> JSONResponse:
    return _answer(request, 422, "invalid_request", str(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "loc": ".".join(str(p) for p in err.get("loc", ())),
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    message = "; ".join(f"{d['loc']}: {d['msg']}" for d in details[:3]) or "invalid request"
    return _answer(request, 422, "invalid_request", message, details)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # FastAPI could not parse the body: invalid like any bad JSON
        return _answer(request, 422, "invalid_request", f"the body cannot be parsed: {exc.detail}")
    try:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    except ValueError:
        code = "http_error"
    return _answer(request, exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Answers outside the request-id middleware (Starlette's outermost error middleware
    calls it), so the request id comes from the scope, and the header is set here."""
    request_id = request_id_of(request.scope)
    log.exception(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"request_id": request_id} if request_id else None,
    )
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    return _answer(request, 500, "internal_error", "internal server error", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable)
    app.add_exception_handler(EventError, _event_error)
    app.add_exception_handler(ScoringError, _scoring_error)
    app.add_exception_handler(WatermarkConflictError, _conflict)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
