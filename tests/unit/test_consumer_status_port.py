"""The consumer's status port listens on loopback unless its settings say otherwise."""

from __future__ import annotations

import pytest

from recstream_consumer.metrics import ConsumerMetrics
from recstream_consumer.settings import ConsumerSettings
from recstream_consumer.web import Readiness, StatusServer


def test_the_status_host_is_loopback_by_default_and_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RECSTREAM_CONSUMER__HTTP_HOST", raising=False)
    assert ConsumerSettings().consumer.http_host == "127.0.0.1"
    monkeypatch.setenv("RECSTREAM_CONSUMER__HTTP_HOST", "0.0.0.0")
    assert ConsumerSettings().consumer.http_host == "0.0.0.0"


async def test_the_default_status_port_answers_on_loopback_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RECSTREAM_CONSUMER__HTTP_HOST", raising=False)
    host = ConsumerSettings().consumer.http_host
    server = StatusServer(ConsumerMetrics(), lambda: Readiness(False, 0, None))
    try:
        port = await server.start(host, 0)
        assert port
        runner = server._runner
        assert runner is not None
        assert {address[0] for address in runner.addresses} == {"127.0.0.1"}
    finally:
        await server.stop()
