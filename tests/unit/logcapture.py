"""The API's log lines captured in memory, with the process's logging put back afterwards."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from recstream_api.logconfig import UVICORN_ACCESS_LOGGER, UVICORN_LOGGERS, configure_api_logging
from recstream_api.requestlog import ACCESS_LOGGER
from recstream_api.settings import ApiSettings
from tests.unit.test_logging import parse_logfmt

_TOUCHED = ("", *UVICORN_LOGGERS, UVICORN_ACCESS_LOGGER, "aiokafka")


@dataclass
class CapturedLog:
    stream: io.StringIO
    log_format: str

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        """Every line as a dict (JSON parsed, or logfmt read: values are strings)."""
        if self.log_format == "json":
            return [json.loads(line) for line in self.lines()]
        return [dict(parse_logfmt(line)) for line in self.lines()]

    def api_records(self) -> list[dict[str, Any]]:
        """The lines of the API's own loggers (not httpx's, say)."""
        return [r for r in self.records() if r["logger"].startswith("recstream_api")]

    def access(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["logger"] == ACCESS_LOGGER]


@contextmanager
def saved_logging() -> Iterator[None]:
    """Restores the handlers, levels and propagation of the root, uvicorn and aiokafka
    loggers on exit."""
    saved = [
        (logger, list(logger.handlers), logger.level, logger.propagate)
        for logger in (logging.getLogger(name or None) for name in _TOUCHED)
    ]
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            for handler in handlers:
                logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


@contextmanager
def captured_api_log(settings: ApiSettings) -> Iterator[CapturedLog]:
    """:func:`configure_api_logging` writing to memory, the process's logging restored on
    exit."""
    stream = io.StringIO()
    with saved_logging():
        configure_api_logging(settings, stream)
        yield CapturedLog(stream, settings.log_format)
