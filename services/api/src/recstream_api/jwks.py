"""Token verification keys from an identity provider's JWKS endpoint.

PyJWT's :class:`~jwt.PyJWKClient` fetches the key set and caches it for
``cache_seconds``. The key set is fetched lazily, on the first token that
needs it, with a short timeout; a token whose ``kid`` is not in the cached set
forces one refresh (key rotation), at most once per ``refresh_cooldown_seconds``,
so tokens with made-up ``kid`` values cannot make the API hammer the provider.

A lookup that finds the key in a fresh cache does no I/O and stays on the event
loop; a fetch runs in a worker thread (the client is blocking), one at a time.

Per RFC 8725 the key must fit the one pinned algorithm: an RSA key, for
signatures (``use`` absent or ``sig``), whose ``alg`` (when the JWK names one)
is the configured algorithm.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWTError

from recstream_api.exceptions import KeysUnavailableError, NotAuthenticatedError

MAX_KID_LENGTH = 256


class JwksKeys:
    """The verification key of a token's ``kid``, from a JWKS URL."""

    def __init__(
        self,
        url: str,
        *,
        algorithm: str,
        cache_seconds: float,
        timeout_seconds: float,
        refresh_cooldown_seconds: float,
    ) -> None:
        self._algorithm = algorithm
        self._client = PyJWKClient(
            url,
            cache_keys=False,  # the key set cache below expires; the per-kid one would not
            cache_jwk_set=True,
            lifespan=cache_seconds,
            timeout=timeout_seconds,
            cooldown_duration=refresh_cooldown_seconds,
        )
        self._fetching = asyncio.Lock()

    def _cached(self, kid: str) -> PyJWK | None:
        cache = self._client.jwk_set_cache
        key_set = cache.get() if cache is not None else None  # None when expired
        if key_set is None:
            return None
        signing = (k for k in key_set.keys if k.public_key_use in ("sig", None))
        return next((k for k in signing if k.key_id == kid), None)

    async def key_for(self, kid: object) -> Any:
        """The public key for ``kid``: :class:`NotAuthenticatedError` when there is none,
        :class:`KeysUnavailableError` when the key set cannot be fetched."""
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
            raise NotAuthenticatedError("invalid token: a 'kid' header is required")
        jwk = self._cached(kid)
        if jwk is None:
            async with self._fetching:
                jwk = await self._fetch(kid)
        return self._checked(jwk)

    async def _fetch(self, kid: str) -> PyJWK:
        try:
            jwk = await asyncio.to_thread(self._lookup, kid)
        except PyJWKClientConnectionError as exc:
            raise KeysUnavailableError(f"the token signing keys cannot be fetched: {exc}") from exc
        except (PyJWTError, ValueError, OSError) as exc:  # not a key set, no usable key, I/O
            raise KeysUnavailableError(f"the token signing keys are unusable: {exc}") from exc
        if jwk is None:
            raise NotAuthenticatedError(f"invalid token: unknown key id {kid!r}")
        return jwk

    def _lookup(self, kid: str) -> PyJWK | None:
        """In a worker thread: the key set (fetched when the cache is empty or expired; every
        error here means the set is unavailable), then the key of ``kid`` in it, after one
        refresh unless cooling down (None when there is none)."""
        self._client.get_jwk_set()
        try:
            return self._client.get_signing_key(kid)
        except PyJWKClientConnectionError:
            raise
        except PyJWKClientError:
            return None

    def _checked(self, jwk: PyJWK) -> Any:
        # the JWK's own "alg", else the algorithm its key type implies (RSA: RS256, EC: ES256...)
        if jwk.algorithm_name != self._algorithm:
            raise NotAuthenticatedError(
                f"invalid token: key {jwk.key_id!r} is for {jwk.algorithm_name}, "
                f"not {self._algorithm}"
            )
        if not isinstance(jwk.key, RSAPublicKey):
            raise NotAuthenticatedError(f"invalid token: key {jwk.key_id!r} is no RSA public key")
        return jwk.key
