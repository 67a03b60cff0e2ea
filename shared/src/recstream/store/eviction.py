"""Redis must not evict: an evicted key is state lost without a trace (a user's profile, a
statistic, a watermark that lets a batch apply twice). Consumer and API check the server's
``maxmemory-policy`` when they start and refuse any other than ``noeviction``, unless the
operator says ``allow_eviction`` (then they warn on every start).

The policy is read from ``INFO memory``, which managed Redis services answer even where
they disable ``CONFIG GET``.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from recstream.store.redis import UNAVAILABLE

log = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"


class EvictionPolicyError(RuntimeError):
    """Redis may evict keys and the operator did not allow it."""


async def eviction_policy(redis: Redis) -> str | None:
    """The server's ``maxmemory_policy``; None when Redis does not answer (or says nothing)."""
    try:
        info = await redis.info("memory")
    except UNAVAILABLE:
        return None
    policy = info.get("maxmemory_policy")
    return str(policy) if policy is not None else None


async def check_eviction(redis: Redis, *, allow_eviction: bool) -> str | None:
    """Raise :class:`EvictionPolicyError` when Redis may evict keys, unless ``allow_eviction``
    (then warn); the policy found, or None when it could not be read (an unreachable Redis
    is the outage handling's business, not a reason to refuse to start)."""
    policy = await eviction_policy(redis)
    if policy is None:
        log.warning("could not read Redis's maxmemory-policy: not checked")
        return None
    if policy == SAFE_POLICY:
        return policy
    message = (
        f"Redis runs with maxmemory-policy {policy}: an evicted key is state lost without a "
        f"trace; set it to {SAFE_POLICY}"
    )
    if not allow_eviction:
        raise EvictionPolicyError(f"{message} (or RECSTREAM_REDIS__ALLOW_EVICTION=true)")
    log.warning("%s; starting anyway (RECSTREAM_REDIS__ALLOW_EVICTION=true)", message)
    return policy
