"""The recstream command line: help texts, dev tokens, process supervision."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import jwt
import pytest
from click.testing import CliRunner

from recstream_cli.main import cli
from recstream_cli.stack import Supervisor, port_or_free, stop_process

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
SECRET = "unit-test-secret-0123456789abcdef0123456789"


def test_the_group_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ("run", "token", "consumer", "api"):
        assert name in cli.commands
        assert f"  {name} " in result.output


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {name}" in result.output or f"Usage: recstream {name}" in result.output


def test_run_help_names_its_options() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    for option in ("--port", "--redis-port", "--broker-port", "--log-dir"):
        assert option in result.output


def test_token_is_a_jwt_for_the_configured_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSTREAM_AUTH__JWT_SECRET", SECRET)
    result = CliRunner().invoke(cli, ["token", "--user", "u-42", "--ttl", "120"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "u-42"
    assert 119 <= claims["exp"] - claims["iat"] <= 121
    assert "admin" not in claims.get("roles", [])


def test_admin_token_carries_the_admin_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSTREAM_AUTH__JWT_SECRET", SECRET)
    result = CliRunner().invoke(cli, ["token", "--user", "ops", "--admin"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "ops"
    assert claims["roles"] == ["admin"]


def test_token_refuses_invalid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSTREAM_ENVIRONMENT", "prod")
    monkeypatch.delenv("RECSTREAM_AUTH__JWT_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["token", "--user", "u"])
    assert result.exit_code != 0
    assert "placeholder" in result.output


def test_port_or_free_keeps_a_free_port_and_replaces_a_taken_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = port_or_free(port)
        assert other != port
    assert port_or_free(other) == other


def test_supervisor_stops_processes_last_started_first() -> None:
    stopped: list[str] = []
    with Supervisor(stop_timeout=5) as supervisor:
        for name in ("redis", "broker", "api"):
            managed = supervisor.spawn(name, SLEEPER, {})

            def stop(name: str = name, process: subprocess.Popen[bytes] = managed.process) -> None:
                stopped.append(name)
                stop_process(process, 5)

            managed.stop = stop
        assert supervisor.first_exited() is None
        processes = [m.process for m in supervisor.processes]
    assert stopped == ["api", "broker", "redis"]
    assert all(p.poll() is not None for p in processes)


def test_supervisor_reports_a_child_that_exited() -> None:
    with Supervisor(stop_timeout=5) as supervisor:
        supervisor.spawn("sleeper", SLEEPER, {})
        quitter = supervisor.spawn("quitter", [sys.executable, "-c", "raise SystemExit(3)"], {})
        deadline = time.monotonic() + 10
        while supervisor.first_exited() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert supervisor.first_exited() is quitter
        assert quitter.process.returncode == 3
    assert not supervisor.processes


def test_stop_process_kills_a_child_that_ignores_sigterm() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None
    with process.stdout:
        process.stdout.readline()  # the handler is installed
        started = time.monotonic()
        stop_process(process, timeout=0.5)
    assert process.returncode == -9
    assert time.monotonic() - started < 5
