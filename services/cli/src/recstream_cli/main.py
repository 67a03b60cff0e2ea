"""The ``recstream`` command: the dev stack, single services, dev tokens."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from recstream_cli.bench import bench
from recstream_cli.demo_generator import demo_generate
from recstream_cli.evaluate import evaluate
from recstream_cli.faults import faults
from recstream_cli.kafka import create_topics
from recstream_cli.localstack import LocalStackError, start_redis, start_tansu
from recstream_cli.replay import replay
from recstream_cli.stack import StackError, Supervisor, port_or_free, stop_signals, wait_http_ok
from recstream_cli.tokens import TokenError, dev_token

REDIS_ENV = "RECSTREAM_REDIS__URL"
KAFKA_ENV = "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS"
API_PREFIX = "/api/behavioral-ml"
DEFAULT_API_PORT = 8000
DAY_SECONDS = 86_400

# Consumer-group timing for the local Tansu broker, which holds a group join for
# about half the session timeout; production (Apache Kafka) keeps the defaults.
TANSU_CONSUMER_ENV = {
    "RECSTREAM_CONSUMER__SESSION_TIMEOUT_MS": "3000",
    "RECSTREAM_CONSUMER__HEARTBEAT_INTERVAL_MS": "300",
}


def consumer_argv() -> list[str]:
    return [sys.executable, "-m", "recstream_consumer"]


def api_argv(host: str, port: int) -> list[str]:
    """uvicorn with the API's factory, which sets up the log lines (RECSTREAM_LOG_FORMAT,
    RECSTREAM_LOG_LEVEL) and writes the one access line per request itself."""
    return [
        sys.executable, "-m", "uvicorn", "recstream_api.main:create_app", "--factory",
        "--host", host, "--port", str(port), "--no-access-log",
    ]  # fmt: skip


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="recstream-cli", prog_name="recstream")
def cli() -> None:
    """recstream: real-time behavioural features over Kafka and Redis.

    Settings come from RECSTREAM_* environment variables (see .env.example).
    """


cli.add_command(replay)
cli.add_command(evaluate)
cli.add_command(faults)
cli.add_command(bench)
cli.add_command(demo_generate)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the API binds.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help=f"API port [default: {DEFAULT_API_PORT}, or a free port when that one is taken].",
)
@click.option(
    "--redis-port",
    type=click.IntRange(1, 65535),
    default=16379,
    show_default=True,
    help="Port of the local Redis (a free one when taken); unused with RECSTREAM_REDIS__URL.",
)
@click.option(
    "--broker-port",
    type=click.IntRange(1, 65535),
    default=19092,
    show_default=True,
    help=f"Port of the local Tansu broker (a free one when taken); unused with {KAFKA_ENV}.",
)
@click.option("--user", default="dev-user", show_default=True, help="User of the printed token.")
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".stack"),
    show_default=True,
    help="Folder for the local Redis and broker logs.",
)
@click.option(
    "--start-timeout",
    type=click.FloatRange(1, 600),
    default=90.0,
    show_default=True,
    help="Seconds to wait for the API health check to answer 200.",
)
def run(
    host: str,
    port: int | None,
    redis_port: int,
    broker_port: int,
    user: str,
    log_dir: Path,
    start_timeout: float,
) -> None:
    """Start the dev stack: Redis, the broker, the consumer and the API.

    Without RECSTREAM_REDIS__URL / RECSTREAM_KAFKA__BOOTSTRAP_SERVERS a local
    redis-server and a Tansu broker (in memory) start on loopback; with them,
    those services are used. Ctrl-C or SIGTERM stops everything started here,
    in reverse order.
    """
    api_port = port if port is not None else port_or_free(DEFAULT_API_PORT)
    env = dict(os.environ)
    with stop_signals() as stop, Supervisor() as supervisor:
        try:
            _start_backing_services(env, supervisor, redis_port, broker_port, log_dir)
            if stop.is_set():
                raise StackError("stopped during start-up")
            supervisor.spawn("consumer", consumer_argv(), env)
            supervisor.spawn("api", api_argv(host, api_port), env)
            base = f"http://{_client_host(host)}:{api_port}"
            wait_http_ok(f"{base}{API_PREFIX}/health", start_timeout, supervisor, stop)
            _print_banner(base, env, supervisor, user)
            while not stop.wait(0.5):
                exited = supervisor.first_exited()
                if exited is not None:
                    code = exited.process.returncode
                    raise StackError(f"{exited.name} exited with status {code}")
        except (StackError, LocalStackError, TokenError) as exc:
            if not stop.is_set():
                click.echo(f"recstream run: {exc}; stopping", err=True)
                supervisor.stop_all()
                raise SystemExit(1) from exc
        click.echo("recstream run: stopping", err=True)
    click.echo("recstream run: stopped", err=True)


def _start_backing_services(
    env: dict[str, str], supervisor: Supervisor, redis_port: int, broker_port: int, log_dir: Path
) -> None:
    """A local Redis and broker for whichever address the environment does not give."""
    if not env.get(REDIS_ENV):
        log_dir.mkdir(parents=True, exist_ok=True)
        redis = start_redis(port_or_free(redis_port), log_dir)
        supervisor.adopt(redis)
        env[REDIS_ENV] = redis.address
    if not env.get(KAFKA_ENV):
        log_dir.mkdir(parents=True, exist_ok=True)
        tansu = start_tansu(port_or_free(broker_port), log_dir)
        supervisor.adopt(tansu)
        env[KAFKA_ENV] = tansu.address
        for name, value in TANSU_CONSUMER_ENV.items():
            env.setdefault(name, value)
        create_topics(tansu.address)


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _print_banner(base: str, env: Mapping[str, str], supervisor: Supervisor, user: str) -> None:
    pids = {m.name: m.pid for m in supervisor.processes}
    admin = dev_token("dev-admin", admin=True, ttl_seconds=DAY_SECONDS)
    user_token = dev_token(user, admin=False, ttl_seconds=DAY_SECONDS)

    def pid(name: str) -> str:
        return f"(pid {pids[name]})" if name in pids else "(external)"

    lines = [
        "recstream dev stack is up",
        f"  API        {base}{API_PREFIX}  {pid('api')}",
        f"  API docs   {base}{API_PREFIX}/docs",
        f"  demo       {base}/demo  (environment dev)",
        f"  metrics    {base}/metrics",
        f"  consumer   {pid('consumer')}",
        f"  Redis      {env[REDIS_ENV]}  {pid('redis')}",
        f"  broker     {env[KAFKA_ENV]}  {pid('tansu')}",
        f"  admin token (dev-admin):  {admin}",
        f"  user token ({user}):  {user_token}",
        f'  try: curl -H "Authorization: Bearer $TOKEN" {base}{API_PREFIX}/user-profile/behavioral',
        "Press Ctrl-C to stop.",
    ]
    click.echo("\n".join(lines))


@cli.command()
@click.option("--user", "user_id", required=True, help="User id (the token's sub claim).")
@click.option("--admin", is_flag=True, help="Add the admin role (may read any user).")
@click.option(
    "--ttl",
    type=click.IntRange(1, 365 * DAY_SECONDS),
    default=DAY_SECONDS,
    show_default=True,
    help="Lifetime in seconds.",
)
def token(user_id: str, admin: bool, ttl: int) -> None:
    """Print a dev JWT signed with the configured secret (RECSTREAM_AUTH__JWT_SECRET)."""
    try:
        click.echo(dev_token(user_id, admin=admin, ttl_seconds=ttl))
    except TokenError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
def consumer() -> None:
    """Run the stream consumer in the foreground (python -m recstream_consumer)."""
    argv = consumer_argv()
    os.execv(argv[0], argv)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_API_PORT, show_default=True)
def api(host: str, port: int) -> None:
    """Run the query API in the foreground (uvicorn recstream_api.main:create_app)."""
    argv = api_argv(host, port)
    os.execv(argv[0], argv)
