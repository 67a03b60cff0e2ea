"""Anonymous tokens: signed by the API with a key of its own, for ``anon-`` ids only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import ValidationError

from recstream_api.auth import (
    ANONYMOUS_KID,
    Authenticator,
    authorize_track,
    issue_token,
    new_anonymous_id,
    resolve_user,
)
from recstream_api.exceptions import (
    InvalidRequestError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
)
from recstream_api.settings import AnonymousSettings, ApiSettings, AuthSettings
from tests.unit.test_auth import SECRET, forge, hs_settings


async def test_an_anonymous_token_is_a_user_token_for_its_anonymous_id() -> None:
    authenticator = Authenticator(hs_settings().auth)
    anonymous_id = new_anonymous_id()
    token, expires = authenticator.anonymous_token(anonymous_id)
    principal = await authenticator.verify_token(token)
    assert (principal.user_id, principal.anonymous, principal.is_admin) == (
        anonymous_id,
        True,
        False,
    )
    assert principal.subject == f"anonymous:{anonymous_id}"
    assert resolve_user(principal, None) == anonymous_id
    authorize_track(principal, [anonymous_id])
    with pytest.raises(PermissionDeniedError):
        resolve_user(principal, "u-1")
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    assert anonymous_id.startswith("anon-")
    assert len(anonymous_id) == 37


async def test_the_anonymous_key_is_not_the_identity_providers_key() -> None:
    """An anonymous token signed with the JWT secret itself, or a user token carrying the
    anonymous kid, does not verify: the two keys differ."""
    authenticator = Authenticator(hs_settings().auth)
    exp = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
    claims = {"sub": "anon-1", "exp": exp, "iss": "recstream-anonymous"}
    header = {"alg": "HS256", "typ": "JWT", "kid": ANONYMOUS_KID}
    with pytest.raises(NotAuthenticatedError, match="signature"):
        await authenticator.verify_token(forge(header, claims, SECRET.encode()))
    user_token = issue_token(hs_settings(), "u-1", admin=True)
    payload = jwt.decode(user_token, options={"verify_signature": False})
    with pytest.raises(NotAuthenticatedError):
        await authenticator.verify_token(forge(header, payload, SECRET.encode()))


async def test_an_identity_provider_cannot_sign_in_an_anonymous_id() -> None:
    authenticator = Authenticator(hs_settings().auth)
    with pytest.raises(NotAuthenticatedError, match="reserved for anonymous ids"):
        await authenticator.verify_token(issue_token(hs_settings(), "anon-123"))


async def test_an_anonymous_token_for_a_known_user_id_is_refused() -> None:
    authenticator = Authenticator(hs_settings().auth)
    with pytest.raises(InvalidRequestError):
        authenticator.anonymous_token("u-1")
    key = hs_settings().auth.anonymous_key()
    assert key is not None
    exp = datetime.now(UTC) + timedelta(minutes=5)
    claims = {"sub": "u-1", "exp": exp, "iss": "recstream-anonymous"}
    token = jwt.encode(claims, key, algorithm="HS256", headers={"kid": ANONYMOUS_KID})
    with pytest.raises(NotAuthenticatedError, match="not an anonymous id"):
        await authenticator.verify_token(token)


async def test_an_expired_anonymous_token_is_refused() -> None:
    authenticator = Authenticator(hs_settings().auth)
    token, _ = authenticator.anonymous_token(
        new_anonymous_id(), datetime.now(UTC) - timedelta(days=2)
    )
    with pytest.raises(NotAuthenticatedError, match="expired"):
        await authenticator.verify_token(token)


async def test_anonymous_tokens_can_be_turned_off() -> None:
    auth = AuthSettings(jwt_secret=SECRET, anonymous=AnonymousSettings(enabled=False))
    authenticator = Authenticator(auth)
    on = Authenticator(hs_settings().auth)
    token, _ = on.anonymous_token(new_anonymous_id())
    assert not authenticator.anonymous_enabled
    with pytest.raises(NotFoundError):
        authenticator.anonymous_token(new_anonymous_id())
    with pytest.raises(NotAuthenticatedError, match="not accepted"):
        await authenticator.verify_token(token)


async def test_rs256_needs_its_own_anonymous_secret(rsa_pems: tuple[str, str]) -> None:
    _, public = rsa_pems
    without = AuthSettings(jwt_algorithm="RS256", jwt_public_key=public)
    assert without.anonymous_key() is None
    secret = "an-anonymous-token-secret-0123456789abcdef"
    with_secret = AuthSettings(
        jwt_algorithm="RS256", jwt_public_key=public, anonymous=AnonymousSettings(secret=secret)
    )
    authenticator = Authenticator(with_secret)
    token, _ = authenticator.anonymous_token("anon-rs")
    assert (await authenticator.verify_token(token)).user_id == "anon-rs"
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        AuthSettings(anonymous=AnonymousSettings(secret="short"))


def test_replicas_with_the_same_secret_share_the_anonymous_key() -> None:
    assert hs_settings().auth.anonymous_key() == hs_settings().auth.anonymous_key()
    other = ApiSettings(auth=AuthSettings(jwt_secret="another-secret-long-enough-0123456789abc"))
    assert other.auth.anonymous_key() != hs_settings().auth.anonymous_key()
