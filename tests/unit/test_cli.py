"""The recstream command line: help texts, start-up cost, dev tokens, the dev stack's banner,
process supervision."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import jwt
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from recstream_api.settings import DEV_JWT_SECRET, ApiSettings
from recstream_cli.devstack import ADMIN_USER, DEFAULT_USER, banner
from recstream_cli.main import LAZY_COMMANDS, cli
from recstream_cli.stack import Supervisor, port_or_free, stop_process

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
SECRET = "unit-test-secret-0123456789abcdef0123456789"
ROOT = Path(__file__).resolve().parents[2]
COMMANDS = (
    "api", "bench", "consumer", "demo-generate", "eval", "faults", "model", "replay", "run",
    "token", "train",
)  # fmt: skip
# packages `recstream token` has no use for, each 50 ms to 1 s to import
HEAVY_MODULES = (
    "aiokafka", "redis", "faust", "matplotlib", "rich.progress", "numpy", "uvicorn", "fastapi",
    "recstream.offline.evaluation", "recstream_consumer",
)  # fmt: skip


def test_the_group_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert cli.list_commands(click.Context(cli)) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        summary = command.get_short_help_str(limit=30).removesuffix("...")
        assert re.search(rf"^  {re.escape(name)} +{re.escape(summary)}", result.output, re.M)


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_a_lazy_command_is_the_command_of_its_name(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert command.name == name


def test_the_token_command_imports_no_heavy_package() -> None:
    """``recstream token`` resolves and runs without importing Kafka, Redis, rich's progress
    bars, numpy, matplotlib, faust, the evaluation or the services (a lazy group)."""
    code = f"""
import json, sys
from recstream_cli.main import cli
cli.main(["token", "--user", "u-1"], prog_name="recstream", standalone_mode=False)
print(json.dumps([m for m in {list(HEAVY_MODULES)!r} if m in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", "RECSTREAM_AUTH__JWT_SECRET": SECRET},
    )
    token, imported = done.stdout.strip().splitlines()
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "u-1"
    assert json.loads(imported) == []


HARNESSES = ("bench", "faults")  # run as python -m, in a process of their own


@pytest.mark.parametrize("name", [c for c in COMMANDS if c not in HARNESSES])
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {name}" in result.output or f"Usage: recstream {name}" in result.output


@pytest.mark.parametrize("name", HARNESSES)
def test_the_harness_commands_run_the_repositorys_harness(name: str) -> None:
    code = f"from recstream_cli.main import cli; cli(['{name}', '--help'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"Usage: recstream {name} [OPTIONS]" in done.stdout
    assert "--out" in done.stdout
    assert "--quick" in done.stdout


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


def test_token_signs_with_the_dev_secret_unless_the_environment_says_prod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RECSTREAM_ENVIRONMENT", raising=False)
    monkeypatch.delenv("RECSTREAM_AUTH__JWT_SECRET", raising=False)
    dev = CliRunner().invoke(cli, ["token", "--user", "u-dev"])
    assert dev.exit_code == 0, dev.output
    assert jwt.decode(dev.output.strip(), DEV_JWT_SECRET, algorithms=["HS256"])["sub"] == "u-dev"
    monkeypatch.setenv("RECSTREAM_ENVIRONMENT", "prod")
    prod = CliRunner().invoke(cli, ["token", "--user", "u-dev"])
    assert prod.exit_code == 1
    assert "placeholder" in prod.output


def test_the_api_settings_default_to_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECSTREAM_ENVIRONMENT", raising=False)
    monkeypatch.setenv("RECSTREAM_AUTH__JWT_SECRET", SECRET)
    assert ApiSettings().environment == "prod"
    monkeypatch.delenv("RECSTREAM_AUTH__JWT_SECRET")
    with pytest.raises(ValidationError, match="placeholder"):
        ApiSettings()  # the published development secret is refused


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


def test_the_run_banner_prints_export_lines_for_the_readme_examples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECSTREAM_AUTH__JWT_SECRET", SECRET)
    env = {
        "RECSTREAM_REDIS__URL": "redis://:hunter2@127.0.0.1:16379/0",
        "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:19092",
    }
    with Supervisor() as supervisor:
        text = banner("http://127.0.0.1:8000", env, supervisor, DEFAULT_USER)
    exports = dict(re.findall(r"^  export (API|TOKEN|ADMIN)=(\S+)$", text, re.M))
    assert exports["API"] == "http://127.0.0.1:8000/api/behavioral-ml"
    user = jwt.decode(exports["TOKEN"], SECRET, algorithms=["HS256"])
    assert user["sub"] == "u-1001"
    assert "roles" not in user
    admin = jwt.decode(exports["ADMIN"], SECRET, algorithms=["HS256"])
    assert (admin["sub"], admin["roles"]) == (ADMIN_USER, ["admin"])
    assert '"Authorization: Bearer $TOKEN" "$API/' in text
    assert "hunter2" not in text
    assert text.endswith("Press Ctrl-C to stop.")
    readme = (ROOT / "README.md").read_text()  # the examples the exports are for
    assert "API=http://127.0.0.1:8000/api/behavioral-ml" in readme
    assert f"TOKEN=$(uv run recstream token --user {DEFAULT_USER})" in readme
    assert f"[default: {DEFAULT_USER}]" in CliRunner().invoke(cli, ["run", "--help"]).output


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


def test_run_refuses_kafka_security_settings_meant_for_another_broker() -> None:
    from recstream_cli.devstack import check_configured_services

    sasl = {"RECSTREAM_KAFKA__SECURITY__PROTOCOL": "SASL_SSL"}
    with pytest.raises(click.ClickException, match="the local broker speaks plaintext only"):
        check_configured_services(sasl)
    check_configured_services({"RECSTREAM_KAFKA__SECURITY__PROTOCOL": "PLAINTEXT"})
    check_configured_services({})


def test_train_keeps_the_window_it_is_given_and_says_so(datasets: Path, tmp_path: Path) -> None:
    """The OTTO sample is too small for a model: training refuses, after the window."""
    otto = datasets / "otto-sample" / "train.jsonl"
    args = ["train", "--train", str(otto), "--window-days", "1", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    said = re.search(r"([\d,]+) of ([\d,]+) events in the last 1 days", result.output)
    assert said is not None, result.output
    kept, read = (int(n.replace(",", "")) for n in said.groups())
    assert 0 < kept < read
    assert "a model needs at least 200" in result.output


def test_train_takes_the_configs_ranker_options_and_the_command_line_wins(
    datasets: Path, tmp_path: Path
) -> None:
    otto = datasets / "otto-sample" / "train.jsonl"
    config = tmp_path / "config.json"
    ranker = {"min_groups": 10, "later_label": 0.5, "rounds": 3, "num_leaves": 7}
    config.write_text(json.dumps({"ranker": ranker}))
    out = tmp_path / "model"
    args = ["train", "--train", str(otto), "--config", str(config), "--rounds", "5",
            "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    params = json.loads((out / "report.json").read_text())["params"]
    assert params["label_gain"][1] == pytest.approx(2**0.5 - 1)  # from the file
    assert params["num_leaves"] == 7  # from the file, no flag for it
    assert params["rounds"] == 5  # the command line over the file's 3
