"""The one place errors become HTTP answers.

Every error answer has the body ``{"error": {"code", "message", "details"}}``:

| error | status |
|---|---|
| :class:`NotAuthenticatedError` | 401, ``WWW-Authenticate: Bearer`` |
| :class:`PermissionDeniedError` | 403 |
| body above the cap (:mod:`recstream_api.limits`) | 413 |
| :class:`RateLimitedError` (:mod:`recstream_api.ratelimit`) | 429, ``Retry-After`` |
| :class:`InvalidRequestError`, ``EventError``, ``ScoringError``, ``RequestValidationError`` | 422 |
| ``WatermarkConflictError`` (a concurrent writer kept winning) | 409 |
| :class:`BrokerUnavailableError`, ``StoreUnavailableError`` | 503, ``Retry-After`` |
| :class:`KeysUnavailableError` (the JWKS endpoint cannot be read) | 503, ``Retry-After`` |
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

from recstream.events import EventError
from recstream.ports import StoreUnavailableError, WatermarkConflictError
from recstream.scoring.blend import ScoringError
from recstream_api.exceptions import (
    ApiError,
    BrokerUnavailableError,
    InvalidRequestError,
    KeysUnavailableError,
    NotAuthenticatedError,
    PermissionDeniedError,
    RateLimitedError,
)

log = logging.getLogger(__name__)

_STATUS: dict[type[ApiError], int] = {
    NotAuthenticatedError: 401,
    PermissionDeniedError: 403,
    InvalidRequestError: 422,
    BrokerUnavailableError: 503,
    KeysUnavailableError: 503,
    RateLimitedError: 429,
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


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
    return error_response(status, exc.code, exc.message, exc.details, headers)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("store unavailable: %s", exc)
    return error_response(
        503, "store_unavailable", "the state store is unavailable", headers=_retry_after(request)
    )


async def _event_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EventError)
    return error_response(422, "invalid_event", exc.detail, {"reason": exc.reason})


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        409, "conflict", "the user's state kept changing during the request; try again"
    )


async def _scoring_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "invalid_request", str(exc))


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
    return error_response(422, "invalid_request", message, details)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # FastAPI could not parse the body: invalid like any bad JSON
        return error_response(422, "invalid_request", f"the body cannot be parsed: {exc.detail}")
    try:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    except ValueError:
        code = "http_error"
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable)
    app.add_exception_handler(EventError, _event_error)
    app.add_exception_handler(ScoringError, _scoring_error)
    app.add_exception_handler(WatermarkConflictError, _conflict)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
