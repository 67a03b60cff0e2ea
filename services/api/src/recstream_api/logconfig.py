"""The API process's log lines: the core's logfmt or JSON lines (:mod:`recstream.platform.logs`),
with the request id of the request being served, uvicorn's lines included.

uvicorn sets up its own handlers before it calls the app factory;
:func:`configure_api_logging` (called by ``create_app()``, the composition root)
then sends the ``uvicorn`` and ``uvicorn.error`` loggers through the root handler
and turns uvicorn's access log off, as ``--no-access-log`` does: the access
line of :class:`~recstream_api.requestlog.RequestLog` is the one line per request.
The Kafka client (``aiokafka``) logs warnings and errors only, as in the consumer.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TextIO

from recstream.platform.logs import configure_logging
from recstream_api.requestlog import RequestIdFilter
from recstream_api.settings import ApiSettings

SERVICE = "recstream-api"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
UVICORN_ACCESS_LOGGER = "uvicorn.access"


def instance_name() -> str:
    """``<hostname>-<pid>``, like the consumer's default instance id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def configure_api_logging(settings: ApiSettings, stream: TextIO | None = None) -> logging.Handler:
    """Every line of the process to ``stream`` (stderr) in ``settings.log_format`` at
    ``settings.log_level``; replaces earlier root handlers and returns the new one."""
    handler = configure_logging(
        settings.log_level,
        settings.log_format,
        {"service": SERVICE, "instance": instance_name()},
        stream,
    )
    handler.addFilter(RequestIdFilter())
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        _drop_handlers(logger)
        logger.setLevel(logging.NOTSET)  # the root level decides
        logger.propagate = True
    access = logging.getLogger(UVICORN_ACCESS_LOGGER)
    # uvicorn writes its access line only when this logger has a handler, here or above
    _drop_handlers(access)
    access.propagate = False
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    return handler


def _drop_handlers(logger: logging.Logger) -> None:
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
