"""The consumer's composition root: ``recstream-consumer`` or ``python -m recstream_consumer``.

Reads :class:`~recstream_consumer.settings.ConsumerSettings` from the
environment, sets up the log lines (logfmt, or JSON with
``RECSTREAM_LOG_FORMAT=json``), runs one consumer-group member until SIGTERM
or SIGINT, then finishes (or abandons whole) the in-flight batch, commits
what was applied and exits.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pydantic import ValidationError

from recstream.platform.logs import configure_logging
from recstream.platform.runtime import tune_gc
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
    configure_logging(
        settings.consumer.log_level,
        settings.log_format,
        {"service": "recstream-consumer", "instance": settings.consumer.instance_id},
    )
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    tune_gc()
    counters = event_loop_runner(settings.consumer.event_loop)(serve(settings))
    logging.getLogger("recstream_consumer").info("stopped: %s", counters.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
