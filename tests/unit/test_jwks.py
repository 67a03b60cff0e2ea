"""RS256 keys from a JWKS URL, served by a tiny HTTP server on loopback.

The server counts its requests, so the tests can tell a cache hit from a fetch.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from recstream_api.auth import Authenticator
from recstream_api.exceptions import KeysUnavailableError, NotAuthenticatedError
from recstream_api.settings import ApiSettings, AuthSettings
from tests.unit.test_auth import forge

KEY_A = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_B = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", **extra}


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def token(key: rsa.RSAPrivateKey, kid: str | None, **claims: Any) -> str:
    body = {"sub": "u-1", "exp": datetime.now(UTC) + timedelta(minutes=5), **claims}
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(body, pem(key), algorithm="RS256", headers=headers)


class JwksServer:
    """Serves ``self.body`` at ``/jwks``, after ``self.delay`` seconds; counts requests."""

    def __init__(self) -> None:
        self.body: bytes = b""
        self.delay = 0.0
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                time.sleep(outer.delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def serve(self, *keys: dict[str, Any]) -> None:
        self.body = json.dumps({"keys": list(keys)}).encode()

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[JwksServer]:
    with JwksServer() as running:
        running.serve(public_jwk(KEY_A, "a"))
        yield running


def authenticator(url: str, **auth: Any) -> Authenticator:
    settings = AuthSettings(jwt_algorithm="RS256", jwks_url=url, **auth)
    return Authenticator(settings)


async def test_token_verifies_with_the_key_of_its_kid_fetched_once(server: JwksServer) -> None:
    auth = authenticator(server.url)
    assert server.requests == 0  # fetched lazily, not at start
    for user in ("u-1", "u-2", "u-3"):
        principal = await auth.verify_token(token(KEY_A, "a", sub=user))
        assert principal.user_id == user
    assert server.requests == 1


async def test_a_token_without_kid_is_refused(server: JwksServer) -> None:
    with pytest.raises(NotAuthenticatedError, match="kid"):
        await authenticator(server.url).verify_token(token(KEY_A, None))
    assert server.requests == 0


async def test_a_token_signed_by_another_key_is_refused(server: JwksServer) -> None:
    with pytest.raises(NotAuthenticatedError, match="signature"):
        await authenticator(server.url).verify_token(token(KEY_B, "a"))


async def test_unknown_kid_refreshes_at_most_once_per_cooldown(server: JwksServer) -> None:
    auth = authenticator(server.url, jwks_refresh_cooldown_seconds=60)
    await auth.verify_token(token(KEY_A, "a"))
    for attempt in range(5):
        with pytest.raises(NotAuthenticatedError, match="unknown key id"):
            await auth.verify_token(token(KEY_B, f"made-up-{attempt}"))
    assert server.requests == 1  # the first fetch started the cooldown


async def test_a_rotated_key_is_found_by_a_refresh(server: JwksServer) -> None:
    auth = authenticator(server.url, jwks_refresh_cooldown_seconds=0)
    await auth.verify_token(token(KEY_A, "a"))
    server.serve(public_jwk(KEY_A, "a"), public_jwk(KEY_B, "b"))
    principal = await auth.verify_token(token(KEY_B, "b", sub="u-9"))
    assert principal.user_id == "u-9"
    assert server.requests == 2
    await auth.verify_token(token(KEY_B, "b"))  # now cached
    assert server.requests == 2


async def test_the_key_set_expires_after_its_lifetime(server: JwksServer) -> None:
    auth = authenticator(server.url, jwks_cache_seconds=0.2)
    await auth.verify_token(token(KEY_A, "a"))
    await auth.verify_token(token(KEY_A, "a"))
    assert server.requests == 1
    await asyncio.sleep(0.3)
    await auth.verify_token(token(KEY_A, "a"))
    assert server.requests == 2


@pytest.mark.parametrize(
    "jwk",
    [
        public_jwk(KEY_A, "a", alg="RS512"),  # a key for another algorithm
        public_jwk(KEY_A, "a", use="enc"),  # an encryption key
    ],
)
async def test_keys_that_do_not_fit_the_pinned_algorithm_are_not_used(
    server: JwksServer, jwk: dict[str, Any]
) -> None:
    server.serve(jwk)
    with pytest.raises(NotAuthenticatedError):
        await authenticator(server.url).verify_token(token(KEY_A, "a"))


async def test_an_hmac_key_in_the_set_is_not_used(server: JwksServer) -> None:
    secret = b"s" * 32
    oct_key = {"kty": "oct", "kid": "h", "k": jwt.utils.base64url_encode(secret).decode()}
    server.serve(public_jwk(KEY_A, "a"), oct_key)
    hs_token = jwt.encode({"sub": "u-1", "exp": 2**40}, secret, "HS256", headers={"kid": "h"})
    with pytest.raises(NotAuthenticatedError, match="is for HS256, not RS256"):
        await authenticator(server.url).verify_token(hs_token)


async def test_hs256_signed_with_the_public_key_is_refused(server: JwksServer) -> None:
    public = KEY_A.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    exp = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
    forged = forge({"alg": "HS256", "kid": "a"}, {"sub": "u-1", "exp": exp}, public)
    with pytest.raises(NotAuthenticatedError, match="alg"):
        await authenticator(server.url).verify_token(forged)


async def test_alg_none_with_a_known_kid_is_refused(server: JwksServer) -> None:
    exp = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
    forged = forge({"alg": "none", "kid": "a"}, {"sub": "u-1", "exp": exp}, None)
    with pytest.raises(NotAuthenticatedError, match="alg"):
        await authenticator(server.url).verify_token(forged)


async def test_an_unreachable_key_set_is_unavailable_not_a_bad_token() -> None:
    with JwksServer() as closed:
        url = closed.url
    with pytest.raises(KeysUnavailableError, match="cannot be fetched"):
        await authenticator(url).verify_token(token(KEY_A, "a"))


async def test_a_slow_key_set_times_out(server: JwksServer) -> None:
    server.delay = 2.0
    started = time.monotonic()
    with pytest.raises(KeysUnavailableError):
        await authenticator(server.url, jwks_timeout_seconds=0.3).verify_token(token(KEY_A, "a"))
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("body", [b"<html>not json</html>", b"[]", b'{"keys": []}'])
async def test_a_broken_key_set_is_unavailable(server: JwksServer, body: bytes) -> None:
    server.body = body
    with pytest.raises(KeysUnavailableError):
        await authenticator(server.url).verify_token(token(KEY_A, "a"))


def test_jwks_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="RS256"):
        AuthSettings(jwks_url="https://idp.example/jwks")  # HS256 by default
    with pytest.raises(ValidationError, match="not both"):
        AuthSettings(jwt_algorithm="RS256", jwks_url="https://idp.example/jwks", jwt_public_key="x")
    with pytest.raises(ValidationError, match="jwks_url"):
        AuthSettings(jwt_algorithm="RS256", jwks_url="file:///etc/passwd")
    plain = AuthSettings(jwt_algorithm="RS256", jwks_url="http://idp.internal/jwks")
    assert ApiSettings(environment="dev", auth=plain).auth.jwks_url == "http://idp.internal/jwks"
    with pytest.raises(ValidationError, match="https"):
        ApiSettings(environment="prod", auth=plain)
    secure = AuthSettings(jwt_algorithm="RS256", jwks_url="https://idp.example/jwks")
    assert ApiSettings(environment="prod", auth=secure).auth.jwks_url
