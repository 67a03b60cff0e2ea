"""Log lines: logfmt and JSON formatters, secrets kept out, batch lines carry their position."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator, Sequence

import pytest
from aiokafka.errors import KafkaConnectionError

from recstream.apply.batch import DeadLetter, RawRecord
from recstream.model.config import CoreConfig
from recstream.platform.logs import JsonFormatter, LogfmtFormatter, configure_logging, mask_secrets
from recstream.store.memory import MemoryStore
from recstream_consumer.handler import BatchHandler, RetryPolicy

STATIC = {"service": "recstream-consumer", "instance": "host-1"}


def make_record(
    msg: str, *args: object, extra: dict[str, object] | None = None, exc: bool = False
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.getLogger("recstream_consumer.handler").makeRecord(
        "recstream_consumer.handler", logging.WARNING, __file__, 1, msg, args, exc_info
    )
    for name, value in (extra or {}).items():
        setattr(record, name, value)
    return record


def parse_logfmt(line: str) -> dict[str, str]:
    """A small logfmt reader (quoted values with backslash escapes)."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(line):
        eq = line.index("=", i)
        key = line[i:eq]
        i = eq + 1
        if i < len(line) and line[i] == '"':
            i += 1
            value = []
            while line[i] != '"':
                if line[i] == "\\":
                    i += 1
                    value.append({"n": "\n"}.get(line[i], line[i]))
                else:
                    value.append(line[i])
                i += 1
            i += 1
            fields[key] = "".join(value)
        else:
            end = line.find(" ", i)
            end = len(line) if end < 0 else end
            fields[key] = line[i:end]
            i = end
        i += 1 if i < len(line) and line[i] == " " else 0
    return fields


def test_logfmt_line_has_the_standard_then_static_then_extra_fields() -> None:
    extra = {"topic": "interactions", "partition": 3, "offsets": "10-250"}
    line = LogfmtFormatter(STATIC).format(make_record("apply of %s failed", "batch", extra=extra))
    fields = parse_logfmt(line)
    assert list(fields) == [
        "ts", "level", "logger", "msg", "service", "instance", "topic", "partition", "offsets",
    ]  # fmt: skip
    assert fields["msg"] == "apply of batch failed"
    assert 'msg="apply of batch failed"' in line
    assert "topic=interactions partition=3 offsets=10-250" in line
    assert fields["level"] == "WARNING"
    assert fields["ts"].endswith("+00:00")


def test_logfmt_quotes_and_escapes_values_that_need_it() -> None:
    line = LogfmtFormatter().format(make_record('say "hi"\\ x=1\nnext', exc=True))
    fields = parse_logfmt(line)
    assert fields["msg"] == 'say "hi"\\ x=1\nnext'
    assert "\n" not in line  # one line per record, tracebacks too
    assert "ValueError: boom" in fields["exc"]
    assert fields["exc"].startswith("Traceback")


def test_json_line_keeps_types_and_the_traceback() -> None:
    extra = {"topic": "interactions", "partition": 3, "offset": 42, "ok": True}
    line = JsonFormatter(STATIC).format(make_record("dead-lettered", extra=extra, exc=True))
    payload = json.loads(line)
    assert payload["msg"] == "dead-lettered"
    assert payload["service"] == "recstream-consumer"
    assert (payload["topic"], payload["partition"], payload["offset"]) == ("interactions", 3, 42)
    assert payload["ok"] is True
    assert "ValueError: boom" in payload["exc"]
    assert "\n" not in line


@pytest.mark.parametrize("formatter", [LogfmtFormatter(), JsonFormatter()])
def test_secrets_never_reach_a_line(formatter: logging.Formatter) -> None:
    extra = {"redis_url": "redis://app:s3cr3t@redis:6379/0", "api_key": "k-123", "token": "abc"}
    line = formatter.format(
        make_record("connecting to %s", "rediss://:hunter2@cache:6380", extra=extra)
    )
    for secret in ("s3cr3t", "hunter2", "k-123", "abc"):
        assert secret not in line
    assert "redis://app:***@redis:6379/0" in line
    assert "rediss://:***@cache:6380" in line


def test_mask_secrets_leaves_plain_addresses_alone() -> None:
    assert mask_secrets("redis://redis:6379/0 kafka:9092") == "redis://redis:6379/0 kafka:9092"
    assert mask_secrets("http://u:p@h/x") == "http://u:***@h/x"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_configure_logging_writes_json_lines_with_the_static_fields() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", STATIC, stream=stream)
    logging.getLogger("recstream_consumer.service").info("started", extra={"group": "g"})
    logging.getLogger("recstream_consumer.service").debug("hidden")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["msg"] == "started"
    assert payload["instance"] == "host-1"
    assert payload["group"] == "g"


class FlakySink:
    """A dead-letter sink that fails once, then works."""

    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        self.calls += 1
        if self.calls == 1:
            raise KafkaConnectionError("broker away")


async def test_every_line_about_a_batch_names_its_topic_partition_and_offsets() -> None:
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(LogfmtFormatter())
    logger = logging.getLogger("recstream_consumer.handler")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        batch = BatchHandler(
            MemoryStore(),
            FlakySink(),
            CoreConfig(),
            RetryPolicy(initial_delay=0.001, max_delay=0.002, budget=5.0),
        )
        records = [
            RawRecord("interactions", 5, offset, 1_790_000_000_000, b"u1", b"{broken")
            for offset in (70, 71, 72)
        ]
        report = await batch.handle(records)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert len(report.dead_letters) == 3
    lines = captured.getvalue().splitlines()
    assert len(lines) >= 3  # the retry, the dead letters, the batch
    for line in lines:
        fields = parse_logfmt(line)
        assert (fields["topic"], fields["partition"], fields["offsets"]) == (
            "interactions", "5", "70-72",
        ), line  # fmt: skip
    assert any("dead-lettered 3 records: invalid_json=3" in line for line in lines)
