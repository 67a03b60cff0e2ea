"""The connection options every aiokafka client of the project is built with.

``client_options(security)`` turns :class:`KafkaSecurity` into the keyword arguments
that ``AIOKafkaConsumer``, ``AIOKafkaProducer`` and ``AIOKafkaAdminClient`` share
(``security_protocol``, ``ssl_context``, ``sasl_*``), so the consumer (both runtimes),
the API's publisher, replay, training from the topic, the demo generator and the topic
initialiser connect the same way. Files are read when the options are built: a missing
CA or key fails at start with the file's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from pydantic import SecretStr, ValidationError

from recstream.platform.settings import KafkaSecurity

SECURITY_ENV_PREFIX = "RECSTREAM_KAFKA__SECURITY__"
TLS_PROBE_SECONDS = 3.0


class KafkaSecurityError(ValueError):
    """The security settings name a file or a provider that cannot be used."""


class KafkaConnectError(ConnectionError):
    """A Kafka client could not start: the broker's address, TLS or SASL login failed."""


def client_options(security: KafkaSecurity) -> dict[str, Any]:
    """aiokafka keyword arguments for ``security`` (``{"security_protocol": "PLAINTEXT"}``
    when nothing is configured)."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.uses_tls:
        options["ssl_context"] = ssl_context(security)
    if security.uses_sasl:
        options["sasl_mechanism"] = security.sasl_mechanism
        if security.sasl_mechanism == "OAUTHBEARER":
            options["sasl_oauth_token_provider"] = token_provider(security)
        else:
            password = security.sasl_password
            options["sasl_plain_username"] = security.sasl_username
            options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def security_from_environ(environ: Mapping[str, str] | None = None) -> KafkaSecurity:
    """``RECSTREAM_KAFKA__SECURITY__*`` of the environment, for the tools that take the
    broker's address as an option and read no service settings (the demo generator,
    ``recstream train --from-topic``). Empty values count as unset."""
    environ = os.environ if environ is None else environ
    values = {
        name.removeprefix(SECURITY_ENV_PREFIX).lower(): value
        for name, value in environ.items()
        if name.startswith(SECURITY_ENV_PREFIX) and value != ""
    }
    try:
        return KafkaSecurity.model_validate(values)
    except ValidationError as exc:
        raise KafkaSecurityError(f"invalid {SECURITY_ENV_PREFIX}* settings: {exc}") from exc


def security_environ(security: KafkaSecurity) -> dict[str, str]:
    """The environment variables that give a child process ``security`` (secrets in
    clear: a settings dump would mask them); the inverse of :func:`security_from_environ`."""
    environ: dict[str, str] = {}
    for name in KafkaSecurity.model_fields:
        value = getattr(security, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        environ[f"{SECURITY_ENV_PREFIX}{name.upper()}"] = str(value)
    return environ


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """A client TLS context: the CA file (else the system's trust store), the client
    certificate when one is set, hostname checks unless switched off."""
    cafile = _readable(security.ca_file, "ca_file") if security.ca_file else None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except ssl.SSLError as exc:
        raise KafkaSecurityError(f"ca_file {cafile} is not a PEM certificate: {exc}") from exc
    context.check_hostname = security.check_hostname
    if security.cert_file is not None and security.key_file is not None:
        password = security.key_password.get_secret_value() if security.key_password else None
        try:
            context.load_cert_chain(
                _readable(security.cert_file, "cert_file"),
                _readable(security.key_file, "key_file"),
                password=password,
            )
        except ssl.SSLError as exc:
            raise KafkaSecurityError(
                f"cert_file {security.cert_file} / key_file {security.key_file}: {exc}"
            ) from exc
    return context


class FileTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # aiokafka is untyped
    """An OAUTHBEARER token read from a file at every login, so a rotated token is used
    by the next connection without a restart."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def token(self) -> str:
        try:
            token = self._path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KafkaSecurityError(f"cannot read oauth_token_file {self._path}: {exc}") from exc
        if not token:
            raise KafkaSecurityError(f"oauth_token_file {self._path} is empty")
        return token


def token_provider(security: KafkaSecurity) -> AbstractTokenProvider:
    if security.oauth_token_file is not None:
        return FileTokenProvider(_readable_path(security.oauth_token_file, "oauth_token_file"))
    spec = security.oauth_token_provider or ""
    module_name, _, attribute = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise KafkaSecurityError(f"oauth_token_provider {spec!r} cannot be loaded: {exc}") from exc
    provider = (
        target() if callable(target) and not isinstance(target, AbstractTokenProvider) else target
    )
    if not isinstance(provider, AbstractTokenProvider):
        raise KafkaSecurityError(
            f"oauth_token_provider {spec!r} gave {type(provider).__name__}, "
            "not an aiokafka.abc.AbstractTokenProvider"
        )
    return provider


async def start_client(client: Any, bootstrap_servers: str, security: KafkaSecurity) -> None:
    """Start an aiokafka consumer, producer or admin client; a failure (an unreachable
    broker, a refused certificate, a refused login) is a :class:`KafkaConnectError` that
    names the address, the protocol and the reason, and the client is closed."""
    try:
        await client.start()
    except Exception as exc:
        with contextlib.suppress(Exception):
            await (client.close() if hasattr(client, "close") else client.stop())
        reason = failure_reason(exc, security)
        if isinstance(exc, KafkaConnectionError) and security.uses_tls:
            # aiokafka only logs why a bootstrap connection failed; a TLS problem is
            # found again by a handshake of our own, so the error can name it
            reason = await tls_problem(bootstrap_servers, ssl_context(security)) or reason
        raise KafkaConnectError(
            f"cannot connect to Kafka at {bootstrap_servers} ({describe(security)}): {reason}"
        ) from exc


async def tls_problem(bootstrap_servers: str, context: ssl.SSLContext) -> str | None:
    """Why a TLS connection to the first bootstrap server fails, or None when the
    handshake succeeds and the server keeps the connection open."""
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    try:
        async with asyncio.timeout(TLS_PROBE_SECONDS):
            reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    except ssl.SSLError as exc:
        return f"TLS handshake failed: {exc}"
    except (OSError, TimeoutError, ValueError):
        return None
    try:
        # a server that wants a client certificate ends a TLS 1.3 session right after
        # the handshake; reading shows it
        async with asyncio.timeout(0.5):
            data = await reader.read(1)
    except ssl.SSLError as exc:
        return f"the broker ended the TLS session: {exc}"
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if data == b"":
        return "the broker closed the TLS connection (does it require a client certificate?)"
    return None


def failure_reason(exc: BaseException, security: KafkaSecurity) -> str:
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"the broker does not offer SASL {security.sasl_mechanism}: {exc}"
    if isinstance(exc, (SaslAuthenticationFailed, AuthenticationFailedError)):
        return f"the broker refused the login: {exc}"
    if isinstance(exc, KeyError) and security.sasl_mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        # aiokafka's SCRAM client reads the server's signature ("v="); a broker that
        # refuses the user or the password answers with an error ("e=") instead
        return "the broker refused the SCRAM login (unknown user or wrong password)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc}"
    text = str(exc)
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def describe(security: KafkaSecurity) -> str:
    """How the clients connect, for logs and error messages (never a secret)."""
    parts: list[str] = [security.protocol]
    if security.uses_sasl:
        who = f" as {security.sasl_username}" if security.sasl_username else ""
        parts.append(f"{security.sasl_mechanism}{who}")
    if security.uses_tls:
        parts.append(f"CA {security.ca_file}" if security.ca_file else "system CAs")
        if security.cert_file:
            parts.append(f"client certificate {security.cert_file}")
    return ", ".join(parts)


def _readable(path: Path, name: str) -> str:
    return str(_readable_path(path, name))


def _readable_path(path: Path, name: str) -> Path:
    if not path.is_file():
        raise KafkaSecurityError(f"{name} {path} does not exist or is not a file")
    return path
