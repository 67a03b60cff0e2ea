"""Redis commands packed by hiredis (C) instead of redis-py's Python packer.

redis-py's asyncio connections build every command's wire bytes in Python,
argument by argument; a recommendation request sends about 70 commands with
about 290 keys and fields, and that packing was the largest part of its CPU.
``hiredis.pack_command`` writes the same bytes (floats as ``repr``, as
redis-py does) in one C call.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import Connection
from redis.typing import EncodableT


class HiredisPackingConnection(Connection):
    """A plain TCP connection whose commands are packed by hiredis."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        name = args[0]
        # "CONFIG GET" and the like: one word per argument
        if (isinstance(name, str) and " " in name) or (isinstance(name, bytes) and b" " in name):
            args = (*name.split(), *args[1:])
        return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # stub: a 1-tuple


def packing_options(url: str) -> dict[str, Any]:
    """``Redis.from_url`` options for ``url``: hiredis packing on plain ``redis://`` URLs
    (TLS and Unix-socket URLs keep their own connection classes)."""
    return {"connection_class": HiredisPackingConnection} if url.startswith("redis://") else {}
