"""Request ids and the access log of the query API.

:class:`RequestLog` (pure ASGI middleware, the outermost one) gives every HTTP
request an id: the caller's ``X-Request-ID`` when it is a sane token (1 to 128
characters of ``A-Z a-z 0-9 . _ : -``), else a new one (uuid4 hex). The id is
returned in the ``X-Request-ID`` response header, kept in the request's scope
state (for the error answers, :mod:`recstream_api.errors`) and, while the request
is served, in a context variable that :class:`RequestIdFilter` copies into every
log record as ``request_id``.

When the answer is sent the middleware writes one access line (logger
``recstream_api.access``, level INFO)::

    msg="POST /api/behavioral-ml/recommendations 200" request_id=... method=POST
    route=/api/behavioral-ml/recommendations path=... status=200 duration_ms=4.12
    subject=user:u-123 client=10.0.0.7

``route`` is the route template (``<unmatched>`` when no route serves the path),
``path`` the raw path without the query string, ``subject`` the authenticated
caller (``user:<id>`` or ``api-key:<name>``, set by :mod:`recstream_api.deps`) when
there is one. Headers are never logged, so neither is a bearer token or an API key.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recstream_api.metrics import UNMATCHED, route_of

REQUEST_ID_HEADER = "X-Request-ID"
ACCESS_LOGGER = "recstream_api.access"
MAX_PATH_CHARS = 256
_HEADER_NAME = REQUEST_ID_HEADER.lower().encode("latin-1")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_STATE_KEY = "request_context"

access_log = logging.getLogger(ACCESS_LOGGER)


@dataclass(slots=True)
class RequestContext:
    """What the log lines of one request carry; ``subject`` once the caller is known."""

    request_id: str
    subject: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("recstream_request", default=None)


def accepted_request_id(raw: bytes | None) -> str:
    """The caller's request id when it is a sane token, else a new uuid4 hex."""
    if raw is not None:
        text = raw.decode("latin-1")
        if _SANE_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def request_context(scope: Scope) -> RequestContext | None:
    """The context :class:`RequestLog` put into this request's scope state, if any."""
    state = scope.get("state")
    context = state.get(_STATE_KEY) if isinstance(state, dict) else None
    return context if isinstance(context, RequestContext) else None


def request_id_of(scope: Scope) -> str | None:
    context = request_context(scope)
    return context.request_id if context is not None else None


def note_subject(scope: Scope, subject: str) -> None:
    """Name the authenticated caller in the request's access line."""
    context = request_context(scope)
    if context is not None:
        context.subject = subject


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record logged while a request is served (a handler
    filter, so records of every logger get it); a record that has one keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is not None and not hasattr(record, "request_id"):
            record.request_id = context.request_id
        return True


class RequestLog:
    """Pure ASGI middleware: the request id (header, scope state, log records) and one
    access line per HTTP request."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(accepted_request_id(_header(scope["headers"], _HEADER_NAME)))
        scope.setdefault("state", {})[_STATE_KEY] = context
        id_header = (_HEADER_NAME, context.request_id.encode("latin-1"))
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        request_path = scope["path"]
        token = _current.set(context)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            try:
                elapsed = time.perf_counter() - started
                # an exception before the answer started: the error middleware answers 500
                self._log(scope, request_path, context, 500 if status is None else status, elapsed)
            finally:
                _current.reset(token)

    def _log(
        self, scope: Scope, path: str, context: RequestContext, status: int, seconds: float
    ) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        method = scope["method"]
        route = route_of(scope, path, self.routes)
        fields: dict[str, object] = {
            "request_id": context.request_id,
            "method": method,
            "route": route,
            "path": path[:MAX_PATH_CHARS],
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        if context.subject is not None:
            fields["subject"] = context.subject
        client = scope.get("client")
        if client:
            fields["client"] = client[0]
        shown = path[:MAX_PATH_CHARS] if route == UNMATCHED else route
        access_log.info("%s %s %d", method, shown, status, extra=fields)
