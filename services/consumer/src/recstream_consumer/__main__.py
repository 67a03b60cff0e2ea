"""The consumer's composition root: ``recstream-consumer`` or ``python -m recstream_consumer``.

Reads :class:`~recstream_consumer.settings.ConsumerSettings` from the
environment, runs one consumer-group member until SIGTERM or SIGINT, then
finishes (or abandons whole) the in-flight batch, commits what was applied
and exits.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pydantic import ValidationError

from recstream_consumer.service import serve
from recstream_consumer.settings import ConsumerSettings

T = TypeVar("T")


def event_loop_runner(choice: str) -> Callable[[Coroutine[Any, Any, T]], T]:
    """``uvloop.run`` (faster event loop) when chosen or installed, else ``asyncio.run``."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            return uvloop.run
    return asyncio.run


def main() -> int:
    try:
        settings = ConsumerSettings()
    except ValidationError as exc:
        print(f"recstream-consumer: invalid settings\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.consumer.log_level,
        format=f"%(asctime)s %(levelname)s [{settings.consumer.instance_id}] %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    counters = event_loop_runner(settings.consumer.event_loop)(serve(settings))
    logging.getLogger("recstream_consumer").info("stopped: %s", counters.as_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
