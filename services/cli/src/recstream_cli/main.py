"""The ``recstream`` command: the dev stack, single services, dev tokens, and the tools.

Start-up stays fast (``recstream token`` imports no Kafka, Redis, rich or numpy
package): the subcommands whose modules import heavy packages are named in
:data:`LAZY_COMMANDS` and imported only when they run (:class:`LazyGroup`), and the
commands defined here import what they need inside their function.
"""

from __future__ import annotations

import os

import click

from recstream_cli.lazy_group import LazyGroup

DAY_SECONDS = 86_400
DEFAULT_API_PORT = 8000

LAZY_COMMANDS = {
    "run": "recstream_cli.devstack:run",
    "replay": "recstream_cli.replay:replay",
    "eval": "recstream_cli.evaluate:evaluate",
    "train": "recstream_cli.train:train",
    "model": "recstream_cli.train:model",
    "faults": "recstream_cli.harness:faults",
    "bench": "recstream_cli.harness:bench",
    "demo-generate": "recstream_cli.demo_generator:demo_generate",
}


@click.group(
    cls=LazyGroup,
    lazy_subcommands=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="recstream-cli", prog_name="recstream")
def cli() -> None:
    """recstream: real-time behavioural features over Kafka and Redis.

    Settings come from RECSTREAM_* environment variables (see .env.example).
    """


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
    from recstream_cli.tokens import TokenError, dev_token

    try:
        click.echo(dev_token(user_id, admin=admin, ttl_seconds=ttl))
    except TokenError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
def consumer() -> None:
    """Run the stream consumer in the foreground (python -m recstream_consumer).

    Exits at once, with one line, when the configured Redis or Kafka does not answer.
    """
    from pydantic import ValidationError

    from recstream_cli.reachability import check_kafka, check_redis
    from recstream_cli.stack import consumer_argv
    from recstream_consumer.settings import ConsumerSettings

    try:
        settings = ConsumerSettings()
    except ValidationError:
        pass  # the consumer itself says what is wrong with the settings
    else:
        check_redis(settings.redis.url, options=())
        check_kafka(settings.kafka.bootstrap_servers, options=())
    argv = consumer_argv()
    os.execv(argv[0], argv)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_API_PORT, show_default=True)
def api(host: str, port: int) -> None:
    """Run the query API in the foreground (uvicorn recstream_api.main:create_app).

    Exits at once, with one line, when the configured Redis does not answer. Without
    Kafka it starts with a warning: reads serve, tracking answers 503 until Kafka answers.
    """
    from pydantic import ValidationError

    from recstream_api.settings import ApiSettings
    from recstream_cli.reachability import ServiceUnreachableError, check_kafka, check_redis
    from recstream_cli.stack import api_argv

    try:
        settings = ApiSettings()
    except ValidationError:
        pass  # the API itself says what is wrong with the settings
    else:
        check_redis(settings.redis.url, options=())
        try:
            check_kafka(settings.kafka.bootstrap_servers, options=())
        except ServiceUnreachableError as exc:
            click.echo(
                f"Warning: {exc.format_message()}; reads serve, tracking answers 503", err=True
            )
    argv = api_argv(host, port)
    os.execv(argv[0], argv)
