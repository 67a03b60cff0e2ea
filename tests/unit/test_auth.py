"""Credentials of the query API: JWT verification, API keys, who may read and track what."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from recstream_api.auth import (
    Authenticator,
    Principal,
    authorize_track,
    issue_token,
    resolve_user,
)
from recstream_api.exceptions import (
    InvalidRequestError,
    NotAuthenticatedError,
    PermissionDeniedError,
)
from recstream_api.settings import (
    DEV_JWT_SECRET,
    ApiKeyEntry,
    ApiSettings,
    AuthSettings,
    hash_api_key,
)

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
NOW = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


def hs_settings(**auth: Any) -> ApiSettings:
    return ApiSettings(auth=AuthSettings(jwt_secret=SECRET, **auth))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token signed by hand (PyJWT refuses to make some of these)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), "sha256").digest()
    return f"{signing_input}.{_b64(signature)}"


def future_claims(**extra: Any) -> dict[str, Any]:
    exp = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
    return {"sub": "u-1", "exp": exp, **extra}


# --- tokens ---------------------------------------------------------------------------


async def test_valid_token_names_the_user() -> None:
    settings = hs_settings()
    principal = await Authenticator(settings.auth).verify_token(issue_token(settings, "u-1"))
    assert principal == Principal("user:u-1", "u-1", False, frozenset({"read", "track"}))


async def test_admin_role_from_roles_list() -> None:
    settings = hs_settings()
    principal = await Authenticator(settings.auth).verify_token(
        issue_token(settings, "ops", admin=True)
    )
    assert principal.is_admin
    assert "admin" in principal.scopes


async def test_admin_role_from_scope_string() -> None:
    settings = hs_settings(role_claim="scope", admin_role="recstream:admin")
    authenticator = Authenticator(settings.auth)
    token = jwt.encode(future_claims(scope="openid recstream:admin profile"), SECRET, "HS256")
    assert (await authenticator.verify_token(token)).is_admin
    plain = jwt.encode(future_claims(scope="openid admin"), SECRET, "HS256")
    assert not (await authenticator.verify_token(plain)).is_admin


async def test_roles_claim_does_not_count_when_scope_is_configured() -> None:
    settings = hs_settings(role_claim="scope")
    token = jwt.encode(future_claims(roles=["admin"]), SECRET, "HS256")
    assert not (await Authenticator(settings.auth).verify_token(token)).is_admin


async def test_expired_token_is_refused() -> None:
    settings = hs_settings(leeway_seconds=10)
    token = issue_token(
        settings, "u-1", ttl=timedelta(minutes=1), now=datetime.now(UTC) - timedelta(minutes=2)
    )
    with pytest.raises(NotAuthenticatedError, match="expired"):
        await Authenticator(settings.auth).verify_token(token)


async def test_expiry_within_leeway_is_accepted() -> None:
    settings = hs_settings(leeway_seconds=30)
    token = issue_token(
        settings, "u-1", ttl=timedelta(seconds=50), now=datetime.now(UTC) - timedelta(seconds=60)
    )
    assert (await Authenticator(settings.auth).verify_token(token)).user_id == "u-1"


def _at(seconds: float) -> int:
    return int(datetime.now(UTC).timestamp() + seconds)


async def test_token_not_yet_valid_is_refused_beyond_the_leeway() -> None:
    authenticator = Authenticator(hs_settings(leeway_seconds=10).auth)
    early = jwt.encode(future_claims(nbf=_at(60)), SECRET, "HS256")
    with pytest.raises(NotAuthenticatedError, match="not yet valid"):
        await authenticator.verify_token(early)
    almost = jwt.encode(future_claims(nbf=_at(5)), SECRET, "HS256")
    assert (await authenticator.verify_token(almost)).user_id == "u-1"


async def test_token_issued_in_the_future_is_refused_beyond_the_leeway() -> None:
    authenticator = Authenticator(hs_settings(leeway_seconds=10).auth)
    future = jwt.encode(future_claims(iat=_at(120)), SECRET, "HS256")
    with pytest.raises(NotAuthenticatedError, match="iat"):
        await authenticator.verify_token(future)
    skewed = jwt.encode(future_claims(iat=_at(5)), SECRET, "HS256")
    assert (await authenticator.verify_token(skewed)).user_id == "u-1"


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
async def test_time_claims_must_be_numbers(claim: str) -> None:
    token = jwt.encode({**future_claims(), claim: "tomorrow"}, SECRET, "HS256")
    with pytest.raises(NotAuthenticatedError):
        await Authenticator(hs_settings().auth).verify_token(token)


async def test_a_short_hmac_secret_verifies_nothing() -> None:
    short = "short-dev-secret"  # accepted by the dev settings, refused by PyJWT's key check
    settings = ApiSettings(auth=AuthSettings(jwt_secret=short))
    token = forge({"alg": "HS256", "typ": "JWT"}, future_claims(), short.encode())
    with pytest.raises(NotAuthenticatedError, match=r"(?i)key"):
        await Authenticator(settings.auth).verify_token(token)


async def test_a_weak_rsa_key_verifies_nothing() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = ApiSettings(auth=AuthSettings(jwt_algorithm="RS256", jwt_public_key=public))
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.warns(jwt.InsecureKeyLengthWarning):  # PyJWT warns when it signs
        token = jwt.encode(future_claims(), private, "RS256")
    with pytest.raises(NotAuthenticatedError, match=r"(?i)key"):
        await Authenticator(settings.auth).verify_token(token)


@pytest.mark.parametrize("missing", ["exp", "sub"])
async def test_required_claims(missing: str) -> None:
    claims = future_claims()
    del claims[missing]
    token = jwt.encode(claims, SECRET, "HS256")
    with pytest.raises(NotAuthenticatedError, match=missing):
        await Authenticator(hs_settings().auth).verify_token(token)


@pytest.mark.parametrize("sub", ["", "has space", "{u:x}", "x" * 129])
async def test_subject_must_be_a_valid_user_id(sub: str) -> None:
    token = jwt.encode(future_claims(sub=sub), SECRET, "HS256")
    with pytest.raises(NotAuthenticatedError):
        await Authenticator(hs_settings().auth).verify_token(token)


async def test_bad_signature_is_refused() -> None:
    token = jwt.encode(future_claims(), "another-secret-that-is-also-long-enough-42", "HS256")
    with pytest.raises(NotAuthenticatedError, match="signature does not verify"):
        await Authenticator(hs_settings().auth).verify_token(token)


async def test_tampered_payload_is_refused() -> None:
    header, _, signature = jwt.encode(future_claims(), SECRET, "HS256").split(".")
    forged_payload = _b64(json.dumps(future_claims(sub="u-2")).encode())
    with pytest.raises(NotAuthenticatedError):
        await Authenticator(hs_settings().auth).verify_token(
            f"{header}.{forged_payload}.{signature}"
        )


async def test_alg_none_is_refused() -> None:
    token = forge({"alg": "none", "typ": "JWT"}, future_claims(roles=["admin"]), None)
    with pytest.raises(NotAuthenticatedError, match="alg"):
        await Authenticator(hs_settings().auth).verify_token(token)


async def test_other_hmac_algorithm_is_refused() -> None:
    token = jwt.encode(future_claims(), SECRET * 2, "HS512")
    with pytest.raises(NotAuthenticatedError, match="alg"):
        await Authenticator(hs_settings().auth).verify_token(token)


async def test_rs256_token_verifies_with_the_public_key(rsa_pems: tuple[str, str]) -> None:
    private, public = rsa_pems
    settings = ApiSettings(auth=AuthSettings(jwt_algorithm="RS256", jwt_public_key=public))
    token = issue_token(settings, "u-9", admin=True, private_key=private)
    principal = await Authenticator(settings.auth).verify_token(token)
    assert (principal.user_id, principal.is_admin) == ("u-9", True)


async def test_hs256_token_signed_with_the_rsa_public_key_is_refused(
    rsa_pems: tuple[str, str],
) -> None:
    _, public = rsa_pems
    settings = ApiSettings(auth=AuthSettings(jwt_algorithm="RS256", jwt_public_key=public))
    token = forge({"alg": "HS256", "typ": "JWT"}, future_claims(), public.encode())
    with pytest.raises(NotAuthenticatedError, match="alg"):
        await Authenticator(settings.auth).verify_token(token)


async def test_rs256_token_is_refused_when_hs256_is_configured(rsa_pems: tuple[str, str]) -> None:
    private, _ = rsa_pems
    token = jwt.encode(future_claims(), private, "RS256")
    with pytest.raises(NotAuthenticatedError, match="alg"):
        await Authenticator(hs_settings().auth).verify_token(token)


def test_rs256_issue_needs_the_private_key(rsa_pems: tuple[str, str]) -> None:
    settings = ApiSettings(auth=AuthSettings(jwt_algorithm="RS256", jwt_public_key=rsa_pems[1]))
    with pytest.raises(ValueError, match="private key"):
        issue_token(settings, "u-1")


IDP = "https://idp.example"


async def test_audience_and_issuer_pass_when_they_match() -> None:
    settings = hs_settings(audience="recstream", issuer=IDP)
    token = issue_token(settings, "u-1")
    assert (await Authenticator(settings.auth).verify_token(token)).user_id == "u-1"


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"aud": "other", "iss": IDP}, "(?i)audience"),
        ({"iss": IDP}, "aud"),
        ({"aud": "recstream", "iss": "https://evil.example"}, r"(?i)issuer"),
        ({"aud": "recstream"}, "iss"),
    ],
)
async def test_wrong_or_missing_audience_or_issuer(claims: dict[str, str], problem: str) -> None:
    settings = hs_settings(audience="recstream", issuer=IDP)
    token = jwt.encode(future_claims(**claims), SECRET, "HS256")
    with pytest.raises(NotAuthenticatedError, match=problem):
        await Authenticator(settings.auth).verify_token(token)


async def test_token_with_an_audience_is_refused_when_none_is_configured() -> None:
    token = jwt.encode(future_claims(aud="someone-else"), SECRET, "HS256")
    with pytest.raises(NotAuthenticatedError, match=r"(?i)audience"):
        await Authenticator(hs_settings().auth).verify_token(token)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "a.b"])
async def test_malformed_tokens(token: str) -> None:
    authenticator = Authenticator(hs_settings().auth)
    with pytest.raises(NotAuthenticatedError):
        await authenticator.authenticate(token or None, None)


GARBAGE = [
    "not-a-jwt",  # Not enough segments
    "a.b.c",  # Invalid header padding
    _b64(b"{}") + ".x.y",  # Invalid payload padding
    _b64(b"\xff\xfe") + ".e30.sig",  # a header that is no JSON
    _b64(b"[1]") + ".e30.sig",  # a header that is no JSON object
    # signed, but the payload is no JSON: "Invalid payload string: Expecting value: ..."
    jwt.api_jws.encode(b"not json", SECRET, algorithm="HS256"),
    jwt.api_jws.encode(b"\xc3\x28", SECRET, algorithm="HS256"),  # a codec error
]


@pytest.mark.parametrize("token", GARBAGE)
async def test_a_garbage_token_is_refused_in_the_api_s_words(
    token: str, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = Authenticator(hs_settings().auth)
    with (
        caplog.at_level(logging.INFO, logger="recstream_api.auth"),
        pytest.raises(NotAuthenticatedError) as caught,
    ):
        await authenticator.verify_token(token)
    message = caught.value.message
    assert message == "invalid token: the bearer token is not a valid JWT"
    (record,) = caplog.records
    assert record.getMessage().startswith("bearer token refused: ")
    cause = str(caught.value.__cause__)
    assert cause in record.getMessage()  # the library's reason is in the log only
    assert cause not in message


async def test_a_short_secret_is_not_told_to_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    short = "short-dev-secret"
    settings = ApiSettings(auth=AuthSettings(jwt_secret=short))
    token = forge({"alg": "HS256", "typ": "JWT"}, future_claims(), short.encode())
    with pytest.raises(NotAuthenticatedError) as caught:
        await Authenticator(settings.auth).verify_token(token)
    assert "16 bytes" not in caught.value.message
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "16 bytes" in caplog.records[0].getMessage()


# --- API keys -------------------------------------------------------------------------


def key_settings() -> ApiSettings:
    return hs_settings(
        api_keys=(
            ApiKeyEntry(sha256=hash_api_key("track-key"), scopes=frozenset({"track"}), name="web"),
            ApiKeyEntry(sha256=hash_api_key("admin-key"), scopes=frozenset({"admin"}), name="ops"),
        )
    )


async def test_track_api_key_can_only_track() -> None:
    principal = await Authenticator(key_settings().auth).authenticate(None, "track-key")
    assert principal == Principal("api-key:web", None, False, frozenset({"track"}))
    authorize_track(principal, ["u-1", "u-2"])
    with pytest.raises(PermissionDeniedError):
        resolve_user(principal, "u-1")


async def test_admin_api_key_can_do_everything() -> None:
    principal = await Authenticator(key_settings().auth).authenticate(None, "admin-key")
    assert principal.is_admin
    assert principal.user_id is None
    assert resolve_user(principal, "u-7") == "u-7"
    authorize_track(principal, ["u-7"])
    with pytest.raises(InvalidRequestError, match="user_id is required"):
        resolve_user(principal, None)


@pytest.mark.parametrize("key", ["wrong", "track-key ", "TRACK-KEY", hash_api_key("track-key")])
async def test_unknown_api_key_is_refused(key: str) -> None:
    with pytest.raises(NotAuthenticatedError, match="API key"):
        await Authenticator(key_settings().auth).authenticate(None, key)


def test_keys_are_stored_hashed() -> None:
    assert hash_api_key("track-key") == hashlib.sha256(b"track-key").hexdigest()
    with pytest.raises(ValidationError):
        ApiKeyEntry(sha256="track-key")
    with pytest.raises(ValidationError):
        ApiKeyEntry(sha256=hash_api_key("k"), scopes=frozenset({"read"}))  # not a scope


def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The presented key's hash is compared with every configured hash, with no early exit."""
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("recstream_api.auth.hmac.compare_digest", spy)
    authenticator = Authenticator(key_settings().auth)
    assert authenticator.verify_api_key("track-key").subject == "api-key:web"  # the first key
    presented = hash_api_key("track-key")
    assert compared == [(presented, e.sha256) for e in key_settings().auth.api_keys]


def test_api_keys_need_distinct_names_and_hashes() -> None:
    one = ApiKeyEntry(sha256=hash_api_key("k1"), name="shop")
    with pytest.raises(ValidationError, match="of its own"):
        AuthSettings(api_keys=(one, ApiKeyEntry(sha256=hash_api_key("k2"), name="shop")))
    with pytest.raises(ValidationError, match="of its own"):
        AuthSettings(api_keys=(one, ApiKeyEntry(sha256=hash_api_key("k1"), name="web")))


async def test_no_credentials_is_unauthenticated() -> None:
    with pytest.raises(NotAuthenticatedError, match="missing credentials"):
        await Authenticator(key_settings().auth).authenticate(None, None)


async def test_bearer_token_wins_over_api_key() -> None:
    settings = key_settings()
    token = issue_token(settings, "u-3")
    principal = await Authenticator(settings.auth).authenticate(token, "admin-key")
    assert (principal.user_id, principal.is_admin) == ("u-3", False)


# --- who a request is about -----------------------------------------------------------

USER = Principal("user:u-1", "u-1", False, frozenset({"read", "track"}))
ADMIN = Principal("user:ops", "ops", True, frozenset({"read", "track", "admin"}))


def test_user_reads_only_their_own_data() -> None:
    assert resolve_user(USER, None) == "u-1"
    assert resolve_user(USER, "u-1") == "u-1"
    with pytest.raises(PermissionDeniedError):
        resolve_user(USER, "u-2")


def test_admin_reads_anyone() -> None:
    assert resolve_user(ADMIN, "u-2") == "u-2"
    assert resolve_user(ADMIN, None) == "ops"


def test_user_tracks_only_their_own_events() -> None:
    authorize_track(USER, ["u-1", "u-1"])
    with pytest.raises(PermissionDeniedError) as caught:
        authorize_track(USER, ["u-1", "u-2"])
    assert caught.value.details == {"user_ids": ["u-2"]}
    authorize_track(ADMIN, ["u-1", "u-2"])


# --- settings guard -------------------------------------------------------------------


def test_dev_accepts_the_placeholder_secret() -> None:
    settings = ApiSettings(environment="dev")
    assert settings.auth.jwt_secret.get_secret_value() == DEV_JWT_SECRET


def test_prod_refuses_the_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        ApiSettings(environment="prod")


def test_prod_refuses_a_short_secret() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        ApiSettings(environment="prod", auth=AuthSettings(jwt_secret="short"))


def test_prod_accepts_a_real_secret_or_rs256(rsa_pems: tuple[str, str]) -> None:
    assert ApiSettings(environment="prod", auth=AuthSettings(jwt_secret=SECRET))
    rs = AuthSettings(jwt_algorithm="RS256", jwt_public_key=rsa_pems[1])
    assert ApiSettings(environment="prod", auth=rs).auth.jwt_algorithm == "RS256"


def test_rs256_requires_a_public_key() -> None:
    with pytest.raises(ValidationError, match="jwt_public_key"):
        AuthSettings(jwt_algorithm="RS256")


def test_a_public_key_that_is_not_rsa_is_refused() -> None:
    ec_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValueError, match="not an RSA public key"):
        Authenticator(AuthSettings(jwt_algorithm="RS256", jwt_public_key=ec_public))
    with pytest.raises(ValueError, match="PEM"):
        Authenticator(AuthSettings(jwt_algorithm="RS256", jwt_public_key="not a pem"))


async def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSTREAM_ENVIRONMENT", "prod")
    monkeypatch.setenv("RECSTREAM_AUTH__JWT_SECRET", SECRET)
    monkeypatch.setenv("RECSTREAM_AUTH__AUDIENCE", "recstream")
    entry = {"sha256": hash_api_key("k1"), "scopes": ["track"], "name": "shop"}
    monkeypatch.setenv("RECSTREAM_AUTH__API_KEYS", json.dumps([entry]))
    monkeypatch.setenv("RECSTREAM_REDIS__KEY_PREFIX", "envtest")
    settings = ApiSettings()
    assert settings.auth.audience == "recstream"
    assert settings.auth.api_keys[0].name == "shop"
    assert settings.redis.key_prefix == "envtest"
    principal = await Authenticator(settings.auth).authenticate(None, "k1")
    assert principal.subject == "api-key:shop"
    monkeypatch.delenv("RECSTREAM_AUTH__JWT_SECRET")
    with pytest.raises(ValidationError, match="placeholder"):
        ApiSettings()


# --- no secret in logs -----------------------------------------------------------------


def test_settings_never_show_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    secret = "a-production-secret-nobody-may-see-0123456789"
    settings = ApiSettings(
        environment="prod",
        auth=AuthSettings(
            jwt_secret=secret,
            api_keys=(ApiKeyEntry(sha256=hash_api_key("clear-api-key"), name="shop"),),
        ),
    )
    logging.getLogger("recstream.test").warning("settings: %s / %r", settings, settings)
    shown = [
        repr(settings),
        str(settings),
        repr(settings.auth),
        settings.model_dump_json(),
        json.dumps(settings.model_dump(mode="json")),
        caplog.text,
    ]
    for text in shown:
        assert secret not in text
        assert "clear-api-key" not in text
    assert "**********" in caplog.text
    assert settings.auth.jwt_secret.get_secret_value() == secret


async def test_refused_credentials_do_not_echo_secrets(caplog: pytest.LogCaptureFixture) -> None:
    settings = key_settings()
    authenticator = Authenticator(settings.auth)
    wrong = jwt.encode(future_claims(), "x" * 40, "HS256")
    for bearer, key in [(wrong, None), (None, "not-a-configured-key")]:
        with pytest.raises(NotAuthenticatedError) as caught:
            await authenticator.authenticate(bearer, key)
        assert SECRET not in caught.value.message
        assert "not-a-configured-key" not in caught.value.message
    assert SECRET not in caplog.text
