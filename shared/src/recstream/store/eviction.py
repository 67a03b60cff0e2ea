"""Redis must not evict: an evicted key is state lost without a trace (a user's profile, a
statistic, a watermark that lets a batch apply twice). Consumer and API check the server's
``maxmemory-policy`` when they start and refuse any other than ``noeviction``, unless the
operator says ``allow_eviction`` (then they warn on every start).

The policy is read from ``INFO memory``, which managed Redis services answer even where
they disable ``CONFIG GET``; on a Redis Cluster from every primary (the first one that
may evict is reported).
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio.cluster import RedisCluster

from recstream.store.redis import UNAVAILABLE, RedisClient

log = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"


class EvictionPolicyError(RuntimeError):
    """Redis may evict keys and the operator did not allow it."""


async def eviction_policy(redis: RedisClient) -> str | None:
    """The server's ``maxmemory_policy`` (on a cluster, the first primary's that is not
    ``noeviction``, else ``noeviction``); None when Redis does not answer (or says
    nothing)."""
    try:
        if isinstance(redis, RedisCluster):
            infos: list[Any] = list(
                (await redis.info("memory", target_nodes=RedisCluster.PRIMARIES)).values()
            )
        else:
            infos = [await redis.info("memory")]
    except UNAVAILABLE:
        return None
    policies = [str(p) for p in (i.get("maxmemory_policy") for i in infos) if p is not None]
    unsafe = [p for p in policies if p != SAFE_POLICY]
    return unsafe[0] if unsafe else (policies[0] if policies else None)


async def check_eviction(redis: RedisClient, *, allow_eviction: bool) -> str | None:
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
