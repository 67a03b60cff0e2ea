"""``recstream run``: the dev stack (Redis, the broker, the consumer, the API) in one terminal."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import click

from recstream.platform.kafka import SECURITY_ENV_PREFIX
from recstream.platform.logs import mask_secrets
from recstream_cli.kafka import create_topics
from recstream_cli.localstack import LocalStackError, start_redis, start_tansu
from recstream_cli.reachability import KAFKA_SETTING, REDIS_SETTING, check_kafka, check_redis
from recstream_cli.stack import (
    StackError,
    Supervisor,
    api_argv,
    consumer_argv,
    port_or_free,
    stop_signals,
    wait_http_ok,
)
from recstream_cli.tokens import TokenError, dev_token

API_PREFIX = "/api/behavioral-ml"
DEFAULT_API_PORT = 8000
DEFAULT_REDIS_PORT = 16379
DEFAULT_BROKER_PORT = 19092
DEFAULT_USER = "u-1001"  # the user of the README's examples
ADMIN_USER = "dev-admin"
TOKEN_TTL_SECONDS = 86_400

# Consumer-group timing for the local Tansu broker, which holds a group join for
# about half the session timeout; production (Apache Kafka) keeps the defaults.
TANSU_CONSUMER_ENV = {
    "RECSTREAM_CONSUMER__SESSION_TIMEOUT_MS": "3000",
    "RECSTREAM_CONSUMER__HEARTBEAT_INTERVAL_MS": "300",
}


@click.command()
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
    default=DEFAULT_REDIS_PORT,
    show_default=True,
    help=f"Port of the local Redis (a free one when taken); unused with {REDIS_SETTING}.",
)
@click.option(
    "--broker-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_BROKER_PORT,
    show_default=True,
    help=f"Port of the local Tansu broker (a free one when taken); unused with {KAFKA_SETTING}.",
)
@click.option(
    "--user",
    default=DEFAULT_USER,
    show_default=True,
    help="User of the printed TOKEN (the README's examples use u-1001).",
)
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
    env = dict(os.environ)
    env.setdefault("RECSTREAM_ENVIRONMENT", "dev")  # the services default to prod
    check_configured_services(env)
    api_port = port if port is not None else port_or_free(DEFAULT_API_PORT)
    with stop_signals() as stop, Supervisor() as supervisor:
        try:
            _start_backing_services(env, supervisor, redis_port, broker_port, log_dir)
            if stop.is_set():
                raise StackError("stopped during start-up")
            supervisor.spawn("consumer", consumer_argv(), env)
            supervisor.spawn("api", api_argv(host, api_port), env)
            base = f"http://{_client_host(host)}:{api_port}"
            wait_http_ok(f"{base}{API_PREFIX}/health", start_timeout, supervisor, stop)
            click.echo(banner(base, env, supervisor, user))
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


def security_key(name: str) -> str:
    return f"{SECURITY_ENV_PREFIX}{name}"


def check_configured_services(env: Mapping[str, str]) -> None:
    """A Redis or broker given by the environment must answer before anything starts; TLS
    or SASL settings need the broker they are for (the local one is plaintext)."""
    security = sorted(k for k, v in env.items() if k.startswith(SECURITY_ENV_PREFIX) and v)
    if (
        security
        and not env.get(KAFKA_SETTING)
        and env.get(security_key("PROTOCOL"), "") != ("PLAINTEXT")
    ):
        raise click.ClickException(
            f"{', '.join(security)} set without {KAFKA_SETTING}: the local broker "
            f"speaks plaintext only; point {KAFKA_SETTING} at the broker they are for, or "
            "unset them"
        )
    if url := env.get(REDIS_SETTING):
        check_redis(
            url,
            options=(),
            advice=f"start it, point {REDIS_SETTING} at a running Redis, "
            "or unset it to start a local one",
        )
    if bootstrap := env.get(KAFKA_SETTING):
        check_kafka(
            bootstrap,
            options=(),
            advice=f"start it, point {KAFKA_SETTING} at a running broker, "
            "or unset it to start a local one",
        )


def _start_backing_services(
    env: dict[str, str], supervisor: Supervisor, redis_port: int, broker_port: int, log_dir: Path
) -> None:
    """A local Redis and broker for whichever address the environment does not give."""
    if not env.get(REDIS_SETTING):
        log_dir.mkdir(parents=True, exist_ok=True)
        redis = start_redis(port_or_free(redis_port), log_dir)
        supervisor.adopt(redis)
        env[REDIS_SETTING] = redis.address
    if not env.get(KAFKA_SETTING):
        log_dir.mkdir(parents=True, exist_ok=True)
        tansu = start_tansu(port_or_free(broker_port), log_dir)
        supervisor.adopt(tansu)
        env[KAFKA_SETTING] = tansu.address
        for name, value in TANSU_CONSUMER_ENV.items():
            env.setdefault(name, value)
        create_topics(tansu.address)


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def banner(base: str, env: Mapping[str, str], supervisor: Supervisor, user: str) -> str:
    """What is running where, and ``export`` lines to paste into another shell."""
    pids = {m.name: m.pid for m in supervisor.processes}
    admin = dev_token(ADMIN_USER, admin=True, ttl_seconds=TOKEN_TTL_SECONDS)
    user_token = dev_token(user, admin=False, ttl_seconds=TOKEN_TTL_SECONDS)
    hours = TOKEN_TTL_SECONDS // 3600

    def pid(name: str) -> str:
        return f"(pid {pids[name]})" if name in pids else "(external)"

    lines = [
        "recstream dev stack is up",
        f"  API        {base}{API_PREFIX}  {pid('api')}",
        f"  API docs   {base}{API_PREFIX}/docs",
        f"  demo       {base}/demo  (environment dev)",
        f"  metrics    {base}/metrics",
        f"  consumer   {pid('consumer')}",
        f"  Redis      {mask_secrets(env[REDIS_SETTING])}  {pid('redis')}",
        f"  broker     {env[KAFKA_SETTING]}  {pid('tansu')}",
        "",
        f"In another shell, paste these lines (the tokens last {hours} h: TOKEN is user "
        f"{user}, ADMIN is {ADMIN_USER} with the admin role); the README's examples then "
        "work as printed:",
        f"  export API={base}{API_PREFIX}",
        f"  export TOKEN={user_token}",
        f"  export ADMIN={admin}",
        '  curl -s -H "Authorization: Bearer $TOKEN" "$API/user-profile/behavioral"',
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)
