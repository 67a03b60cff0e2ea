"""Limits every request meets before a route sees it (pure ASGI middlewares).

- :class:`BodySizeLimit` refuses request bodies above a byte cap with 413. A
  declared ``Content-Length`` above the cap is refused at once; otherwise the
  body is read (at most cap + one chunk) and handed to the app from a buffer,
  so a body without a length cannot exceed the cap either.
- :func:`single_query_values` (an app-wide dependency) refuses a query string
  that repeats a parameter the route declares (``?user_id=a&user_id=b``) with
  422: every query parameter of the API takes one value, and a repeated one
  would be read differently by different layers (a proxy may check the first,
  the framework uses the last).

The other limits live with what they limit: result sizes (``limit``) and list
lengths in the request models, events per track request and users per
extract-batch request in the settings, request rates in :mod:`recstream_api.ratelimit`.
"""

from __future__ import annotations

from collections import Counter

from fastapi import Request
from fastapi.dependencies.models import Dependant
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recstream_api.errors import error_response
from recstream_api.exceptions import InvalidRequestError
from recstream_api.requestlog import request_id_of


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"request body larger than {self.max_bytes} bytes",
            {"max_bytes": self.max_bytes},
            headers={"Connection": "close"},
            request_id=request_id_of(scope),
        )
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def single_query_values(request: Request) -> None:
    """An app-wide dependency (async: no thread hop): 422 when a query parameter the route
    declares is repeated."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or not request.query_params:
        return
    declared = _query_names(dependant)
    counts = Counter(name for name, _ in request.query_params.multi_items() if name in declared)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise InvalidRequestError(
            f"query parameters given more than once: {', '.join(repeated)}",
            details={"repeated": repeated},
        )
