"""Who is calling, and which user a request may be about.

Two kinds of credentials:

- an OAuth2 bearer JWT (``Authorization: Bearer <token>``), checked as RFC 8725
  asks: the one configured algorithm is pinned (HS256 with a secret, or RS256
  with a PEM public key or the keys of a JWKS URL, see :mod:`recstream_api.jwks`);
  ``none`` and every other algorithm are refused, so an HS256 token signed with
  the RS256 public key does not verify. ``exp`` and ``sub`` are required; ``exp``,
  ``nbf`` and ``iat`` (not in the future) are checked with the configured leeway;
  ``iss`` and ``aud`` are required and checked when configured (a token with an
  ``aud`` is refused when none is configured). With a JWKS the token must name
  its key (``kid``). ``sub`` is the user id; the user is an admin when the role
  claim (``roles`` list or ``scope`` string) holds the admin role. A token that
  passed is remembered (:mod:`recstream_api.verified_tokens`) until its ``exp``,
  at most :data:`TOKEN_CACHE_SECONDS` (and no longer than a JWKS key set is
  cached), so a client's repeated requests skip the signature check. A refused
  token's 401 says what is wrong in the API's words (:func:`refusal`); PyJWT's own
  reason goes to the log only.
- an API key (``X-API-Key``) for server-side producers, hashed (SHA-256) and
  compared in constant time against every configured hash. Scope ``track`` may
  only track events (for any user); scope ``identify`` may merge an anonymous id into a
  user (a shop's backend that saw the sign-in); scope ``admin`` may do everything.

- an anonymous token, for a shopper who has not signed in: an HS256 JWT the API signs
  itself (:meth:`Authenticator.anonymous_token`, ``POST /anonymous``) with a key of its
  own and the header ``kid`` :data:`ANONYMOUS_KID`, for a user id that starts with
  ``anon-`` (:data:`recstream.contract.events.ANONYMOUS_PREFIX`). It may read and track
  that id's data like a user token. An identity provider's token whose ``sub`` starts
  with the prefix is refused, so nobody signs in as an anonymous shopper.

When both are sent, the bearer token is used. Nothing here knows about HTTP:
:mod:`recstream_api.deps` reads the headers and :mod:`recstream_api.errors`
maps the errors.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.types import Options

from recstream.contract.events import ANONYMOUS_PREFIX
from recstream_api.exceptions import (
    InvalidRequestError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
)
from recstream_api.identifiers import checked_id, is_valid_id
from recstream_api.jwks import JwksKeys
from recstream_api.settings import ApiSettings, AuthSettings
from recstream_api.verified_tokens import VerifiedTokens

log = logging.getLogger(__name__)

READ = "read"
TRACK = "track"
IDENTIFY = "identify"  # an API key that may merge anonymous ids into users (POST /identify)
ADMIN = "admin"
USER_SCOPES = frozenset({READ, TRACK})
ALL_SCOPES = frozenset({READ, TRACK, IDENTIFY, ADMIN})
TOKEN_CACHE_SIZE = 4096  # verified tokens remembered per process (a few MiB at most)
TOKEN_CACHE_SECONDS = 60.0
ANONYMOUS_KID = "recstream-anonymous"  # the header that routes a token to the API's own key
ANONYMOUS_ISSUER = "recstream-anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: a user (``user_id`` set) or an API key (``user_id`` None)."""

    subject: str
    user_id: str | None
    is_admin: bool
    scopes: frozenset[str]
    anonymous: bool = False  # an anonymous token's shopper (``anon-...``)


def _roles(claims: dict[str, Any], claim: str) -> set[str]:
    value = claims.get(claim)
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return set()


def _load_key(auth: AuthSettings) -> RSAPublicKey | bytes:
    if auth.jwt_algorithm == "HS256":
        return auth.jwt_secret.get_secret_value().encode()
    key = load_pem_public_key(auth.verification_key().encode())
    if not isinstance(key, RSAPublicKey):
        raise ValueError("auth.jwt_public_key is not an RSA public key")
    return key


def _jwks(auth: AuthSettings) -> JwksKeys | None:
    if auth.jwks_url is None:
        return None
    return JwksKeys(
        auth.jwks_url,
        algorithm=auth.jwt_algorithm,
        cache_seconds=auth.jwks_cache_seconds,
        timeout_seconds=auth.jwks_timeout_seconds,
        refresh_cooldown_seconds=auth.jwks_refresh_cooldown_seconds,
    )


# What a caller is told about a token that does not verify, in the API's words, most
# specific first (InvalidSignatureError is a DecodeError). PyJWT's own message stays in
# the log: it can quote decoder internals ("Invalid header string: 'utf-8' codec can't
# decode byte ...") or the server's key ("The HMAC key is 16 bytes long ...").
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not yet valid (its nbf or iat is in the future)"),
    (jwt.InvalidIssuedAtError, "the token's issue time (iat) is not a number"),
    (jwt.InvalidAudienceError, "the token's audience (aud) is not accepted"),
    (jwt.InvalidIssuerError, "the token's issuer (iss) is not accepted"),
    (jwt.exceptions.InvalidSubjectError, "the token's subject (sub) is not a string"),
    (jwt.InvalidAlgorithmError, "the token's signing algorithm (alg) is not accepted"),
    (jwt.InvalidKeyError, "the token cannot be verified with the configured key"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.DecodeError, "the bearer token is not a valid JWT"),
)


def refusal(exc: jwt.PyJWTError) -> NotAuthenticatedError:
    """The 401 for a token PyJWT refused; the library's message is logged, not returned."""
    if isinstance(exc, jwt.InvalidKeyError):  # the server's key, not the caller's token
        log.warning("bearer token not verifiable with the configured key: %s", exc)
    else:
        log.info("bearer token refused: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return NotAuthenticatedError(f"invalid token: the '{exc.claim}' claim is missing")
    message = next((m for kind, m in _REFUSALS if isinstance(exc, kind)), "it does not verify")
    return NotAuthenticatedError(f"invalid token: {message}")


def _key_id(token: str) -> object:
    try:
        return jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise refusal(exc) from exc


def is_anonymous_id(user_id: str) -> bool:
    return user_id.startswith(ANONYMOUS_PREFIX)


def new_anonymous_id() -> str:
    return f"{ANONYMOUS_PREFIX}{secrets.token_hex(16)}"


class Authenticator:
    """Verifies credentials against one :class:`AuthSettings` (a configured key is parsed
    once; JWKS keys are fetched on first use and cached)."""

    def __init__(self, auth: AuthSettings) -> None:
        self._auth = auth
        self._jwks = _jwks(auth)
        self._key = _load_key(auth) if self._jwks is None else None
        required = ["exp", "sub"]
        required += ["iss"] if auth.issuer else []
        required += ["aud"] if auth.audience else []
        self._options: Options = {
            "require": required,
            "verify_signature": True,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "verify_aud": True,
            "verify_iss": True,
            "verify_sub": True,
            "enforce_minimum_key_length": True,  # HMAC secrets >= 32 bytes, RSA >= 2048 bits
        }
        max_age = TOKEN_CACHE_SECONDS
        if self._jwks is not None:
            max_age = min(max_age, auth.jwks_cache_seconds)
        self._verified: VerifiedTokens[Principal] = VerifiedTokens(TOKEN_CACHE_SIZE, max_age)
        self._anonymous_key = auth.anonymous_key()

    async def authenticate(self, bearer: str | None, api_key: str | None) -> Principal:
        if bearer:
            return await self.verify_token(bearer)
        if api_key:
            return self.verify_api_key(api_key)
        raise NotAuthenticatedError("missing credentials: send a bearer token or an X-API-Key")

    async def verify_token(self, token: str) -> Principal:
        principal = self._verified.get(token)
        if principal is not None:
            return principal
        kid = _key_id(token)
        if kid == ANONYMOUS_KID:
            claims = self._anonymous_claims(token)
            principal = _anonymous_principal(claims["sub"])
        else:
            key = self._key if self._jwks is None else await self._jwks.key_for(kid)
            claims = self._claims(token, key)
            principal = self._principal(claims)
        self._verified.put(token, principal, float(claims["exp"]))
        return principal

    def _claims(self, token: str, key: Any) -> dict[str, Any]:
        auth = self._auth
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[auth.jwt_algorithm],
                audience=auth.audience,
                issuer=auth.issuer,
                leeway=auth.leeway_seconds,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            raise refusal(exc) from exc
        return claims

    def _anonymous_claims(self, token: str) -> dict[str, Any]:
        if self._anonymous_key is None:
            raise NotAuthenticatedError("invalid token: anonymous tokens are not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._anonymous_key,
                algorithms=["HS256"],
                issuer=ANONYMOUS_ISSUER,
                leeway=self._auth.leeway_seconds,
                options={**self._options, "require": ["exp", "sub", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise refusal(exc) from exc
        user_id = claims["sub"]
        if not is_valid_id(user_id) or not is_anonymous_id(user_id):
            raise NotAuthenticatedError("invalid token: 'sub' is not an anonymous id")
        return claims

    @property
    def anonymous_enabled(self) -> bool:
        return self._anonymous_key is not None

    def anonymous_token(
        self, anonymous_id: str, now: datetime | None = None
    ) -> tuple[str, datetime]:
        """A token for ``anonymous_id`` (``anon-...``) and when it expires."""
        if self._anonymous_key is None:
            raise NotFoundError(
                "anonymous tokens are off: set auth.anonymous.enabled (and, with RS256, "
                "auth.anonymous.secret)"
            )
        if not is_anonymous_id(anonymous_id):
            raise InvalidRequestError(f"an anonymous id starts with {ANONYMOUS_PREFIX!r}")
        issued = now or datetime.now(UTC)
        expires = issued + timedelta(hours=self._auth.anonymous.ttl_hours)
        claims = {"sub": anonymous_id, "iss": ANONYMOUS_ISSUER, "iat": issued, "exp": expires}
        token = jwt.encode(
            claims, self._anonymous_key, algorithm="HS256", headers={"kid": ANONYMOUS_KID}
        )
        return token, expires

    def _principal(self, claims: dict[str, Any]) -> Principal:
        auth = self._auth
        user_id = claims["sub"]
        if not is_valid_id(user_id):
            raise NotAuthenticatedError("invalid token: 'sub' is not a valid user id")
        if is_anonymous_id(user_id):
            raise NotAuthenticatedError(
                f"invalid token: a 'sub' starting with {ANONYMOUS_PREFIX!r} is reserved for "
                "anonymous ids"
            )
        is_admin = auth.admin_role in _roles(claims, auth.role_claim)
        return Principal(
            subject=f"user:{user_id}",
            user_id=user_id,
            is_admin=is_admin,
            scopes=ALL_SCOPES if is_admin else USER_SCOPES,
        )

    def verify_api_key(self, key: str) -> Principal:
        presented = hashlib.sha256(key.encode()).hexdigest()
        match = None
        for entry in self._auth.api_keys:  # no early exit: the time does not tell which key
            if hmac.compare_digest(presented, entry.sha256):
                match = entry
        if match is None:
            raise NotAuthenticatedError("invalid API key")
        is_admin = ADMIN in match.scopes
        return Principal(
            subject=f"api-key:{match.name}",
            user_id=None,
            is_admin=is_admin,
            scopes=ALL_SCOPES if is_admin else frozenset(match.scopes),
        )


def _anonymous_principal(user_id: str) -> Principal:
    return Principal(
        subject=f"anonymous:{user_id}",
        user_id=user_id,
        is_admin=False,
        scopes=USER_SCOPES,
        anonymous=True,
    )


def resolve_user(principal: Principal, requested: str | None) -> str:
    """The user a read request is about: one's own, or anyone's for an admin."""
    if READ not in principal.scopes:
        raise PermissionDeniedError("this credential may only track events")
    requested = checked_id(requested, "user_id")
    if requested is None or requested == principal.user_id:
        if principal.user_id is None:
            raise InvalidRequestError("user_id is required when calling with an API key")
        return principal.user_id
    if principal.is_admin:
        return requested
    raise PermissionDeniedError("a user may only read their own data")


def require_read(principal: Principal) -> None:
    """Reads of nobody's data (similar items, trending): any credential that may read."""
    if READ not in principal.scopes:
        raise PermissionDeniedError("this credential may only track events")


def require_admin(principal: Principal, what: str) -> None:
    """Only an admin (token with the admin role, or an ``admin`` API key) may do ``what``."""
    if not principal.is_admin:
        raise PermissionDeniedError(f"only an admin may {what}")


def authorize_erasure(principal: Principal, user_id: str) -> str:
    """A user may erase themselves; an admin may erase anyone. Returns the checked id."""
    checked = checked_id(user_id, "user_id")
    assert checked is not None
    if principal.is_admin or (principal.user_id is not None and principal.user_id == checked):
        return checked
    raise PermissionDeniedError("a user may only erase their own data")


def authorize_weight_override(
    principal: Principal, overridden: bool, allowed_for_everyone: bool
) -> None:
    """Blend weights may be overridden by admins, or by anyone when the setting allows it."""
    if overridden and not (principal.is_admin or allowed_for_everyone):
        raise PermissionDeniedError(
            "only an admin may override the blend weights",
            details={"setting": "allow_weight_override"},
        )


def authorize_track(principal: Principal, user_ids: Iterable[str]) -> None:
    """A user token tracks only its own events; track and admin API keys track anyone's."""
    if TRACK not in principal.scopes:
        raise PermissionDeniedError("this credential may not track events")
    if principal.is_admin or principal.user_id is None:
        return
    others = sorted({u for u in user_ids if u != principal.user_id})
    if others:
        raise PermissionDeniedError(
            "a user token may only track its own events", details={"user_ids": others}
        )


def issue_token(
    settings: ApiSettings,
    user_id: str,
    admin: bool = False,
    ttl: timedelta = timedelta(hours=1),
    *,
    now: datetime | None = None,
    private_key: str | None = None,
) -> str:
    """Mint a token the API accepts (development and tests; production tokens come from an IdP).

    HS256 signs with the configured secret; RS256 needs ``private_key`` (PEM).
    """
    auth = settings.auth
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {"sub": user_id, "iat": issued, "exp": issued + ttl}
    if auth.issuer:
        claims["iss"] = auth.issuer
    if auth.audience:
        claims["aud"] = auth.audience
    if admin:
        roles = [auth.admin_role]
        claims[auth.role_claim] = roles if auth.role_claim == "roles" else " ".join(roles)
    if auth.jwt_algorithm == "RS256":
        if private_key is None:
            raise ValueError("issuing an RS256 token needs the private key")
        return jwt.encode(claims, private_key, algorithm="RS256")
    return jwt.encode(claims, auth.jwt_secret.get_secret_value(), algorithm="HS256")
