"""Reading a whole keyspace back from Redis: every key under a prefix, its type, value and TTL.

Shared by the shard-operation tests and the replay parity test. Scores are parsed with
``float()`` from the text Redis sends (17 significant digits), so they compare exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace


@dataclass(frozen=True, slots=True)
class Stored:
    """One key: ``type`` as ``TYPE`` names it; ``value`` a dict member -> score (zset), a
    dict field -> bytes (hash) or bytes (string); ``ttl`` in seconds, -1 when none."""

    type: str
    value: Any
    ttl: int


async def read_keyspace(redis: Redis, prefix: str, *, chunk: int = 1000) -> dict[str, Stored]:
    """Every key whose name starts with ``prefix``, found with ``SCAN`` (then read in
    pipelines of ``chunk`` keys: ``TYPE`` of each, then its value and ``TTL``), but a Redis
    Cluster's slot markers (bookkeeping of the consumer, not state built from the log)."""
    found = [_text(k) async for k in redis.scan_iter(match=f"{_escaped(prefix)}*", count=1000)]
    keys = sorted(k for k in found if not Keyspace.is_slot_marker(k))
    stored: dict[str, Stored] = {}
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        async with redis.pipeline(transaction=False) as pipe:
            for key in part:
                pipe.type(key)
            kinds = [_text(kind) for kind in await pipe.execute()]
        async with redis.pipeline(transaction=False) as pipe:
            for key, kind in zip(part, kinds, strict=True):
                if kind == "zset":
                    pipe.execute_command("ZRANGE", key, 0, -1, "WITHSCORES")
                elif kind == "hash":
                    pipe.hgetall(key)
                elif kind == "string":
                    pipe.get(key)
                else:
                    raise AssertionError(f"{key} is a {kind}: the keyspace has no such key")
                pipe.ttl(key)
            replies = await pipe.execute()
        for i, (key, kind) in enumerate(zip(part, kinds, strict=True)):
            raw, ttl = replies[2 * i], replies[2 * i + 1]
            value: Any
            if kind == "zset":
                value = _scores(raw)
            elif kind == "hash":
                value = {_text(f): v for f, v in raw.items()}
            else:
                value = raw
            stored[key] = Stored(kind, value, ttl)
    return stored


def _scores(reply: list[Any]) -> dict[str, float]:
    """member -> score from a RESP3 reply (``[[member, score], ...]``) or a RESP2 one
    (``[member, score, ...]``, the score as text)."""
    if reply and isinstance(reply[0], list):
        return {_text(member): float(score) for member, score in reply}
    flat = iter(reply)
    return {_text(member): float(score) for member, score in zip(flat, flat, strict=True)}


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _escaped(prefix: str) -> str:
    """``prefix`` as a literal in a ``SCAN MATCH`` pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix)


def as_typed(stored: dict[str, Stored]) -> dict[str, tuple[str, Any]]:
    """key -> (type, value) with hash values and strings as text."""
    typed: dict[str, tuple[str, Any]] = {}
    for key, s in stored.items():
        if s.type == "hash":
            typed[key] = (s.type, {f: _text(v) for f, v in s.value.items()})
        elif s.type == "string":
            typed[key] = (s.type, _text(s.value))
        else:
            typed[key] = (s.type, s.value)
    return typed
