"""Per-caller rate limits (OWASP API4): a token bucket for each caller and kind of route.

A caller is the authenticated principal (``user:<id>`` or ``api-key:<name>``), so
one user's traffic cannot use up another's budget, and a limit cannot be dodged
by changing the client address. Two kinds of route have buckets of their own:

- ``track``: the tracking route (the route tagged ``tracking``);
- ``query``: every other authenticated route (profiles, ratings,
  recommendations, explanations, sessions, next products, administration).

A bucket holds up to ``burst`` requests and refills at ``per_second``; a request
takes one token. Without a token the answer is 429 with ``Retry-After`` (whole
seconds until a token is back). Unauthenticated requests never reach a bucket:
they are refused with 401 first (limit them per address at the ingress).

The buckets live in the API process (per replica: N replicas admit up to N
times the rate) and in a bounded map: beyond ``max_clients`` callers the least
recently seen bucket is dropped (its caller starts again with a full bucket).
:func:`take` is the pure step, with an explicit clock.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from recstream_api.auth import Principal
from recstream_api.exceptions import RateLimitedError
from recstream_api.settings import RateLimitSettings

RouteKind = Literal["track", "query"]
TRACKING_TAG = "tracking"


@dataclass(frozen=True, slots=True)
class Rule:
    per_second: float
    burst: float


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    at: float


def take(bucket: Bucket | None, rule: Rule, now: float, cost: float = 1.0) -> tuple[Bucket, float]:
    """Refill ``bucket`` up to ``now`` and take ``cost`` tokens when it holds them.

    Returns the new bucket and the seconds to wait: 0 when the request may go
    (the tokens are taken), else the time until ``cost`` tokens are back (nothing
    is taken). A new caller starts with a full bucket; a clock that goes back
    refills nothing.
    """
    if bucket is None:
        tokens = rule.burst
    else:
        elapsed = max(0.0, now - bucket.at)
        tokens = min(rule.burst, bucket.tokens + elapsed * rule.per_second)
    if tokens >= cost:
        return Bucket(tokens - cost, now), 0.0
    return Bucket(tokens, now), (cost - tokens) / rule.per_second


def route_kind(route: object) -> RouteKind:
    """``track`` for the tracking route, ``query`` for every other route."""
    tags = getattr(route, "tags", None) or ()
    return "track" if TRACKING_TAG in tags else "query"


def retry_after_seconds(wait: float) -> int:
    """``Retry-After`` is whole seconds: round up, at least 1."""
    return max(1, math.ceil(wait))


class RateLimiter:
    """The buckets of one API process."""

    def __init__(
        self, settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._enabled = settings.enabled
        self._clock = clock
        self._max_clients = settings.max_clients
        factor = settings.api_key_factor
        track = Rule(settings.track_per_second, settings.track_burst)
        query = Rule(settings.query_per_second, settings.query_burst)
        self._rules: dict[tuple[RouteKind, bool], Rule] = {
            ("track", False): track,
            ("query", False): query,
            ("track", True): Rule(track.per_second * factor, track.burst * factor),
            ("query", True): Rule(query.per_second * factor, query.burst * factor),
        }
        self._buckets: OrderedDict[tuple[RouteKind, str], Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def rule(self, kind: RouteKind, principal: Principal) -> Rule:
        return self._rules[(kind, principal.user_id is None)]

    def check(self, principal: Principal, kind: RouteKind) -> None:
        """Take a token from the caller's bucket, or raise :class:`RateLimitedError`."""
        if not self._enabled:
            return
        key = (kind, principal.subject)
        bucket, wait = take(self._buckets.get(key), self.rule(kind, principal), self._clock())
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        if wait > 0:
            seconds = retry_after_seconds(wait)
            raise RateLimitedError(
                f"too many {kind} requests from this caller; retry in {seconds} s",
                retry_after=seconds,
                details={"limit": kind, "retry_after_seconds": seconds},
            )

    def __len__(self) -> int:
        return len(self._buckets)
