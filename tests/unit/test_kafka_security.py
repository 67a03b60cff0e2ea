"""The Kafka security settings: what is refused at start, and what every client gets."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from recstream.platform.kafka import (
    FileTokenProvider,
    KafkaSecurityError,
    client_options,
    describe,
    security_environ,
    security_from_environ,
    token_provider,
)
from recstream.platform.settings import KafkaSecurity
from recstream_consumer.faust_source import faust_credentials
from recstream_consumer.settings import ConsumerSettings

from ..pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class StaticToken(FileTokenProvider):
    """An importable provider factory for the ``module:factory`` setting."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent"))

    async def token(self) -> str:
        return "static-token"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"protocol": "PLAINTEXT", "ca_file": "/ca.pem"}, "TLS files are set but protocol"),
        ({"protocol": "SSL", "cert_file": "/c.pem"}, "cert_file and key_file go together"),
        ({"protocol": "SSL", "sasl_mechanism": "PLAIN"}, "SASL settings are set but protocol"),
        ({"protocol": "SASL_SSL"}, "needs sasl_mechanism"),
        ({"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512"}, "needs sasl_username"),
        ({"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER"}, "exactly one of"),
        ({"protocol": "SSLv3"}, "Input should be"),
        ({"protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "Input should be"),
    ],
)
def test_contradictory_settings_are_refused_at_start(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSecurity.model_validate(values)


def test_the_environment_configures_every_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "PROTOCOL": "SASL_SSL",
        "CA_FILE": str(tmp_path / "ca.pem"),
        "SASL_MECHANISM": "SCRAM-SHA-256",
        "SASL_USERNAME": "svc-recstream",
        "SASL_PASSWORD": "s3cret",
        "CHECK_HOSTNAME": "false",
    }.items():
        monkeypatch.setenv(f"RECSTREAM_KAFKA__SECURITY__{name}", value)
    security = ConsumerSettings().kafka.security
    assert security.protocol == "SASL_SSL"
    assert security.sasl_password is not None
    assert security.sasl_password.get_secret_value() == "s3cret"
    assert security.check_hostname is False
    assert "s3cret" not in repr(security)
    assert "s3cret" not in describe(security)
    assert describe(security) == f"SASL_SSL, SCRAM-SHA-256 as svc-recstream, CA {tmp_path}/ca.pem"


def test_plaintext_gives_the_clients_nothing_but_the_protocol() -> None:
    assert client_options(KafkaSecurity()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_a_verifying_context_with_the_client_certificate(pki: Pki) -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL",
        ca_file=pki.ca,
        cert_file=pki.client_cert,
        key_file=pki.client_key,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password="p",  # type: ignore[arg-type]
    )
    options = client_options(security)
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "recstream test CA"),),)
    ]


def test_a_missing_or_bad_file_is_named(tmp_path: Path, pki: Pki) -> None:
    missing = KafkaSecurity(protocol="SSL", ca_file=tmp_path / "nope.pem")
    with pytest.raises(KafkaSecurityError, match=r"ca_file .*nope\.pem does not exist"):
        client_options(missing)
    (tmp_path / "garbage.pem").write_text("not a certificate")
    with pytest.raises(KafkaSecurityError, match=r"garbage\.pem is not a PEM certificate"):
        client_options(KafkaSecurity(protocol="SSL", ca_file=tmp_path / "garbage.pem"))
    swapped = KafkaSecurity(protocol="SSL", cert_file=pki.client_key, key_file=pki.client_cert)
    with pytest.raises(KafkaSecurityError, match=r"cert_file .*client\.key"):
        client_options(swapped)


async def test_the_oauth_token_file_is_read_again_at_every_login(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    security = KafkaSecurity(
        protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER", oauth_token_file=token_file
    )
    provider = client_options(security)["sasl_oauth_token_provider"]
    assert await provider.token() == "first"
    token_file.write_text("rotated")
    assert await provider.token() == "rotated"
    token_file.write_text("")
    with pytest.raises(KafkaSecurityError, match="is empty"):
        await provider.token()


async def test_an_oauth_token_provider_is_loaded_by_name() -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        oauth_token_provider=f"{__name__}:StaticToken",
    )
    assert await token_provider(security).token() == "static-token"
    unknown = security.model_copy(update={"oauth_token_provider": f"{__name__}:Nothing"})
    with pytest.raises(KafkaSecurityError, match="cannot be loaded"):
        token_provider(unknown)
    not_a_provider = security.model_copy(update={"oauth_token_provider": "pathlib:Path"})
    with pytest.raises(KafkaSecurityError, match=r"not an aiokafka\.abc\.AbstractTokenProvider"):
        token_provider(not_a_provider)


def test_faust_gets_the_same_login_and_context(pki: Pki) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    assert faust_credentials(KafkaSecurity()) is None
    cases = [
        KafkaSecurity(protocol="SSL", ca_file=pki.ca),
        KafkaSecurity(
            protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_username="u",
            sasl_password="p",  # type: ignore[arg-type]
        ),
        KafkaSecurity(
            protocol="SASL_SSL",
            ca_file=pki.ca,
            sasl_mechanism="OAUTHBEARER",
            oauth_token_provider=f"{__name__}:StaticToken",
        ),
    ]
    for security in cases:
        ours = client_options(security)
        theirs = credentials_to_aiokafka_auth(faust_credentials(security))
        assert theirs["security_protocol"] == ours["security_protocol"] == security.protocol
        assert theirs.get("sasl_mechanism") == ours.get("sasl_mechanism")
        assert theirs.get("sasl_plain_username") == ours.get("sasl_plain_username")
        assert theirs.get("sasl_plain_password") == ours.get("sasl_plain_password")
        assert (theirs.get("ssl_context") is None) == (ours.get("ssl_context") is None)


def test_tools_without_service_settings_read_the_same_variables(tmp_path: Path) -> None:
    environ = {
        "RECSTREAM_KAFKA__SECURITY__PROTOCOL": "SSL",
        "RECSTREAM_KAFKA__SECURITY__CA_FILE": str(tmp_path / "ca.pem"),
        "RECSTREAM_KAFKA__SECURITY__KEY_PASSWORD": "",  # empty: unset
        "RECSTREAM_KAFKA__BOOTSTRAP_SERVERS": "b:9093",  # not a security setting
    }
    assert security_from_environ(environ) == KafkaSecurity(
        protocol="SSL", ca_file=tmp_path / "ca.pem"
    )
    assert security_from_environ({}) == KafkaSecurity()
    with pytest.raises(KafkaSecurityError, match="RECSTREAM_KAFKA__SECURITY__"):
        security_from_environ({"RECSTREAM_KAFKA__SECURITY__PROTOCOL": "SASL_SSL"})


def test_a_child_process_gets_the_settings_with_their_secrets(tmp_path: Path) -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL",
        ca_file=tmp_path / "ca.pem",
        check_hostname=False,
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="svc",
        sasl_password="s3cret",  # type: ignore[arg-type]
    )
    environ = security_environ(security)
    assert environ["RECSTREAM_KAFKA__SECURITY__SASL_PASSWORD"] == "s3cret"
    assert environ["RECSTREAM_KAFKA__SECURITY__CHECK_HOSTNAME"] == "false"
    assert security_from_environ(environ) == security
