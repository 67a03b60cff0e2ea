"""The API's own errors: one base class; :mod:`recstream_api.errors` maps them to HTTP."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Base of the errors the API raises on purpose. ``code`` is the machine-readable name."""

    code = "api_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotAuthenticatedError(ApiError):
    """No credentials, or credentials that do not verify (HTTP 401)."""

    code = "not_authenticated"


class PermissionDeniedError(ApiError):
    """Valid credentials that do not allow this request (HTTP 403)."""

    code = "forbidden"


class InvalidRequestError(ApiError):
    """A request that is well-formed HTTP but says something invalid (HTTP 422)."""

    code = "invalid_request"


class InvalidEventsError(InvalidRequestError):
    """One or more events of a track request break the contract; ``details`` lists each."""

    code = "invalid_events"


class NotFoundError(ApiError):
    """The request names something that does not exist, e.g. an unpublished model (HTTP 404)."""

    code = "not_found"


class ConflictError(ApiError):
    """The request collides with another one in progress (HTTP 409)."""

    code = "conflict"


class BrokerUnavailableError(ApiError):
    """The Kafka broker cannot be reached or did not acknowledge in time (HTTP 503)."""

    code = "broker_unavailable"


class ConsumerBehindError(ApiError):
    """The consumer has not applied what the request waits for yet (HTTP 503)."""

    code = "consumer_behind"


class KeysUnavailableError(ApiError):
    """The identity provider's token signing keys cannot be fetched now (HTTP 503)."""

    code = "keys_unavailable"


class RateLimitedError(ApiError):
    """The caller used up its request budget; ``retry_after`` seconds until it may retry (429)."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after
