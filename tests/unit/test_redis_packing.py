"""The API's Redis connections pack commands with hiredis, byte for byte as redis-py does."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from recstream_api.redis_packing import HiredisPackingConnection, packing_options

COMMANDS = [
    ("PING",),
    ("HMGET", "rs:v1:{u:ü-1}:state", "wm", "st"),
    ("ZADD", "k", 0.1 + 0.2, "member", 1e-300, b"\x00\xffbinary"),
    ("ZREVRANGE", "rs:v1:{s:3}:tr1:p:1", 0, 49, "WITHSCORES"),
    ("EVALSHA", "a" * 40, 2, "k1", "k2", b'["batch"]', 12345678901234567890, -7),
    ("CONFIG GET", "maxmemory"),
    (b"CONFIG SET", "maxmemory", "0"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: str(a[0]))
def test_commands_pack_to_the_same_bytes_as_redis_py(args: tuple[object, ...]) -> None:
    ours = b"".join(HiredisPackingConnection().pack_command(*args))  # type: ignore[arg-type]
    theirs = b"".join(Connection().pack_command(*args))  # type: ignore[arg-type]
    assert ours == theirs


def test_only_plain_tcp_urls_get_the_packing_connection() -> None:
    assert packing_options("redis://127.0.0.1:6379/0") == {
        "connection_class": HiredisPackingConnection
    }
    assert packing_options("rediss://cache.example:6380/0") == {}
    assert packing_options("unix:///run/redis.sock") == {}
