"""A command pointed at a Kafka or Redis that does not answer says so in one line and exits 1.

Each command family runs in process (click's CliRunner) against a closed loopback
port: one line on stderr naming the service, the address and the option or setting
that chooses it; no traceback.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from recstream_cli.localstack import free_port
from recstream_cli.main import cli
from recstream_cli.reachability import (
    ServiceUnreachableError,
    check_redis,
    kafka_addresses,
    kafka_problem,
    redis_problem,
)

EVENT = (
    '{"event_id": "e-1", "event_type": "product_view", "user_id": "u-1",'
    ' "occurred_at": "2026-01-01T00:00:00Z", "product_id": "p-1"}\n'
)


@pytest.fixture
def closed() -> str:
    """``127.0.0.1:<port>`` where nothing listens."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text(EVENT)
    return path


@pytest.fixture(autouse=True)
def no_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    """``recstream consumer`` / ``api`` replace the process once their check passed: never here."""

    def refuse(*_: object) -> None:
        raise AssertionError("the command went on to exec the service")

    monkeypatch.setattr(os, "execv", refuse)
    for name in [n for n in os.environ if n.startswith("RECSTREAM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RECSTREAM_ENVIRONMENT", "dev")  # the defaults are valid in dev only


def assert_one_line(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Error: cannot reach "), line
    for fragment in fragments:
        assert fragment in line, line
    assert "Traceback" not in result.output
    return line


def test_replay_to_kafka(events: Path, closed: str) -> None:
    result = CliRunner().invoke(
        cli, ["replay", str(events), "--to", "kafka", "--bootstrap-servers", closed]
    )
    assert_one_line(
        result, f"Kafka at {closed}", "connection refused", "--bootstrap-servers",
        "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS",
    )  # fmt: skip


def test_replay_to_kafka_with_the_settings_address(
    events: Path, closed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECSTREAM_KAFKA__BOOTSTRAP_SERVERS", closed)
    result = CliRunner().invoke(cli, ["replay", str(events), "--to", "kafka"])
    assert_one_line(result, f"Kafka at {closed}")


def test_replay_to_redis(events: Path, closed: str) -> None:
    url = f"redis://:secret-pw@{closed}/0"
    result = CliRunner().invoke(cli, ["replay", str(events), "--to", "redis", "--redis-url", url])
    line = assert_one_line(result, f"Redis at redis://:***@{closed}/0", "--redis-url")
    assert "RECSTREAM_REDIS__URL" in line
    assert "secret-pw" not in line


def test_demo_generate(events: Path, closed: str) -> None:
    args = ["--dataset", str(events), "--bootstrap-servers", closed, "--connect-timeout", "0"]
    result = CliRunner().invoke(cli, ["demo-generate", *args])
    assert_one_line(result, f"Kafka at {closed}", "--bootstrap-servers")


def test_eval_on_redis(events: Path, closed: str, tmp_path: Path) -> None:
    url = f"redis://{closed}/0"
    args = ["--train", str(events), "--backend", "redis", "--redis-url", url]
    result = CliRunner().invoke(cli, ["eval", *args, "--out", str(tmp_path / "out")])
    assert_one_line(result, f"Redis at {url}", "--redis-url")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("command", "service"), [("consumer", "Redis"), ("consumer", "Kafka"), ("api", "Redis")]
)
def test_foreground_services(
    command: str, service: str, closed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as listening:  # the other service answers
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        answering = f"127.0.0.1:{listening.getsockname()[1]}"
        redis, kafka = (closed, answering) if service == "Redis" else (answering, closed)
        monkeypatch.setenv("RECSTREAM_REDIS__URL", f"redis://{redis}/0")
        monkeypatch.setenv("RECSTREAM_KAFKA__BOOTSTRAP_SERVERS", kafka)
        result = CliRunner().invoke(cli, [command])
    setting = "RECSTREAM_REDIS__URL" if service == "Redis" else "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS"
    assert_one_line(result, f"{service} at ", closed, setting)


def test_the_api_starts_without_kafka_with_a_warning(
    closed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as listening:  # Redis answers
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        monkeypatch.setenv(
            "RECSTREAM_REDIS__URL", f"redis://127.0.0.1:{listening.getsockname()[1]}/0"
        )
        monkeypatch.setenv("RECSTREAM_KAFKA__BOOTSTRAP_SERVERS", closed)
        result = CliRunner().invoke(cli, ["api"])
    assert isinstance(result.exception, AssertionError)  # it went on to exec the API
    assert "Warning: cannot reach Kafka" in result.output
    assert "tracking answers 503" in result.output


@pytest.mark.parametrize("service", ["Redis", "Kafka"])
def test_the_dev_stack_with_a_configured_service(
    service: str, closed: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    setting = "RECSTREAM_REDIS__URL" if service == "Redis" else "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS"
    monkeypatch.setenv(setting, f"redis://{closed}/0" if service == "Redis" else closed)
    result = CliRunner().invoke(cli, ["run", "--log-dir", str(tmp_path / "logs")])
    assert_one_line(result, f"{service} at ", closed, setting, "unset it")
    assert not (tmp_path / "logs").exists()  # nothing was started


def test_kafka_bootstrap_lists_are_parsed() -> None:
    assert kafka_addresses("a:1, b:2,PLAINTEXT://c:3") == [("a", 1), ("b", 2), ("c", 3)]
    assert kafka_addresses("[::1]:9093,broker") == [("::1", 9093), ("broker", 9092)]


def test_one_answering_bootstrap_server_is_enough(closed: str) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        answering = f"127.0.0.1:{listening.getsockname()[1]}"
        assert kafka_problem(f"{closed},{answering}") is None
    assert kafka_problem(closed) == "connection refused"


def test_redis_urls_of_every_kind(tmp_path: Path, closed: str) -> None:
    assert redis_problem(f"redis://{closed}/0") == "connection refused"
    assert redis_problem("http://127.0.0.1:6379") is not None
    path = tmp_path / "redis.sock"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        listening.listen()
        assert redis_problem(f"unix://{path}") is None
    with pytest.raises(ServiceUnreachableError, match="unix://"):
        check_redis(f"unix://{tmp_path / 'none.sock'}")
    # a sentinel or cluster URL: one of its hosts answering is enough
    with socket.create_server(("127.0.0.1", 0)) as answering:
        up = f"127.0.0.1:{answering.getsockname()[1]}"
        for scheme, what, tail in (
            ("sentinel", "sentinel", "/mymaster"),
            ("cluster", "cluster node", ""),
        ):
            assert redis_problem(f"redis+{scheme}://{closed},{up}{tail}") is None
            problem = redis_problem(f"redis+{scheme}://{closed}{tail}")
            assert problem == f"no {what} answers: connection refused", problem
    assert redis_problem("redis+cluster://127.0.0.1:x") is not None  # a port that is no number


@pytest.fixture
def impostor() -> Iterator[str]:
    """``127.0.0.1:<port>`` that accepts connections and closes them: neither Kafka nor Redis."""
    listening = socket.create_server(("127.0.0.1", 0))
    listening.settimeout(0.1)
    stop = threading.Event()

    def refuse() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                connection, _ = listening.accept()
                connection.close()

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listening.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listening.close()


@pytest.mark.parametrize("target", ["kafka", "redis"])
def test_replay_to_something_else_than_the_service_fails_without_a_traceback(
    events: Path, impostor: str, target: str
) -> None:
    where = (
        ["--bootstrap-servers", impostor]
        if target == "kafka"
        else ["--redis-url", f"redis://{impostor}/0", "--no-erasure-log"]
    )
    result = CliRunner().invoke(cli, ["replay", str(events), "--to", target, *where])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    service = "Kafka" if target == "kafka" else "Redis"
    assert result.stderr.splitlines()[-1].startswith(f"Error: cannot reach {service} at ")
