"""Log lines for the services: logfmt (``key=value``) or JSON lines, with the standard library only.

Every line carries ``ts`` (UTC, ISO 8601), ``level``, ``logger`` and ``msg``,
then the process's static fields (``service``, ``instance``), then whatever
the call passed with ``extra=`` (``topic``, ``partition``, ``offset``,
``offsets``, ``request_id``, ...), then ``exc`` with the traceback. Secrets
stay out: credentials in URLs (``redis://user:password@host``) are masked
in the message and in every field, and fields whose name says secret
(``password``, ``token``, ``secret``, ``authorization``, ``api_key``) are
replaced by ``***``.

A service calls :func:`configure_logging` once, in its composition root.

Why a ``logging.Formatter`` and not structlog: most lines come from libraries that log
through the standard library (aiokafka, faust, uvicorn, redis-py); one formatter on the
root handler gives all of them the same fields and the same secret masking, which a
structlog pipeline would only reach through this same standard-library bridge.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["logfmt", "json"]

MASK = "***"
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@"
)
_SECRET_NAME = re.compile(r"pass(word)?|secret|token|authori[sz]ation|api_?key|credential", re.I)
_BARE = re.compile(r"^[^\s=\"\\]+$")
# attributes every LogRecord has; anything else on a record came from ``extra=``
_STANDARD = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def mask_secrets(text: str) -> str:
    """``redis://user:pw@host`` -> ``redis://user:***@host``."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def record_fields(record: logging.LogRecord, static: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of one line, in order, secrets masked."""
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "msg": record.getMessage(),
        **static,
    }
    for name, value in record.__dict__.items():
        if name not in _STANDARD and not name.startswith("_"):
            fields[name] = value
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    elif record.exc_text:
        fields["exc"] = record.exc_text
    return {name: _clean(name, value) for name, value in fields.items()}


def _clean(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if _SECRET_NAME.search(name):
        return MASK
    return mask_secrets(value if isinstance(value, str) else str(value))


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=INFO logger=x msg="batch applied" topic=interactions partition=3``."""

    def __init__(self, static: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record, self._static)
        return " ".join(f"{name}={_logfmt_value(value)}" for name, value in fields.items())


def _logfmt_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if _BARE.match(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the same fields as :class:`LogfmtFormatter`."""

    def __init__(self, static: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record, self._static), ensure_ascii=False, default=str)


def formatter_for(
    log_format: LogFormat, static: Mapping[str, Any] | None = None
) -> logging.Formatter:
    return JsonFormatter(static) if log_format == "json" else LogfmtFormatter(static)


def configure_logging(
    level: str,
    log_format: LogFormat,
    static: Mapping[str, Any] | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log line to ``stream`` (stderr) in ``log_format``; replaces earlier handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(log_format, static))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
