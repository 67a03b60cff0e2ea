"""Verified bearer tokens are remembered until their expiry, boundedly; failures never are."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from recstream_api.auth import Authenticator, issue_token
from recstream_api.exceptions import NotAuthenticatedError
from recstream_api.settings import ApiSettings, AuthSettings
from recstream_api.verified_tokens import VerifiedTokens

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_until_the_token_expires() -> None:
    clock = Clock()
    tokens: VerifiedTokens[str] = VerifiedTokens(10, max_age=60.0, clock=clock)
    tokens.put("t", "alice", expires_at=1_010.0)
    clock.now = 1_009.9
    assert tokens.get("t") == "alice"
    clock.now = 1_010.0
    assert tokens.get("t") is None
    assert len(tokens) == 0


def test_an_entry_lives_at_most_max_age() -> None:
    clock = Clock()
    tokens: VerifiedTokens[str] = VerifiedTokens(10, max_age=60.0, clock=clock)
    tokens.put("t", "alice", expires_at=5_000.0)
    clock.now = 1_059.0
    assert tokens.get("t") == "alice"
    clock.now = 1_060.0
    assert tokens.get("t") is None


def test_the_least_recently_used_entries_go_first() -> None:
    tokens: VerifiedTokens[int] = VerifiedTokens(3, max_age=60.0, clock=Clock())
    for n in range(3):
        tokens.put(f"t{n}", n, expires_at=2_000.0)
    assert tokens.get("t0") == 0  # t1 is now the least recently used
    tokens.put("t3", 3, expires_at=2_000.0)
    assert len(tokens) == 3
    assert tokens.get("t1") is None
    assert [tokens.get(t) for t in ("t0", "t2", "t3")] == [0, 2, 3]


def test_size_zero_remembers_nothing() -> None:
    tokens: VerifiedTokens[int] = VerifiedTokens(0, max_age=60.0, clock=Clock())
    tokens.put("t", 1, expires_at=2_000.0)
    assert tokens.get("t") is None


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    decode = jwt.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return calls


async def test_a_token_is_checked_once_then_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ApiSettings(auth=AuthSettings(jwt_secret=SECRET))
    authenticator = Authenticator(settings.auth)
    calls = count_decodes(monkeypatch)
    token = issue_token(settings, "u-1", admin=True)
    first = await authenticator.verify_token(token)
    second = await authenticator.verify_token(token)
    assert first == second
    assert second.user_id == "u-1"
    assert second.is_admin
    assert calls[0] == 1
    other = issue_token(settings, "u-2", ttl=timedelta(minutes=5))
    assert (await authenticator.verify_token(other)).user_id == "u-2"
    assert calls[0] == 2, "another token is checked in full"


async def test_a_refused_token_is_refused_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ApiSettings(auth=AuthSettings(jwt_secret=SECRET))
    authenticator = Authenticator(settings.auth)
    calls = count_decodes(monkeypatch)
    forged = issue_token(ApiSettings(auth=AuthSettings(jwt_secret=SECRET[::-1])), "u-1")
    for attempt in range(3):
        with pytest.raises(NotAuthenticatedError, match="signature does not verify"):
            await authenticator.verify_token(forged)
        assert calls[0] == attempt + 1


async def test_a_remembered_token_is_refused_once_it_expires() -> None:
    settings = ApiSettings(auth=AuthSettings(jwt_secret=SECRET, leeway_seconds=0))
    authenticator = Authenticator(settings.auth)
    exp = int(time.time()) + 1
    claims = {"sub": "u-1", "iat": exp - 60, "exp": exp}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert (await authenticator.verify_token(token)).user_id == "u-1"
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(NotAuthenticatedError, match="expired"):
        await authenticator.verify_token(token)


async def test_a_token_within_the_leeway_is_still_checked_in_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ApiSettings(auth=AuthSettings(jwt_secret=SECRET, leeway_seconds=30))
    authenticator = Authenticator(settings.auth)
    calls = count_decodes(monkeypatch)
    issued = datetime.now(UTC) - timedelta(minutes=10)
    token = issue_token(
        settings, "u-1", ttl=timedelta(minutes=10) - timedelta(seconds=5), now=issued
    )
    for attempt in range(2):
        assert (await authenticator.verify_token(token)).user_id == "u-1"
        assert calls[0] == attempt + 1, "past exp nothing is remembered"


def test_put_ignores_an_entry_that_has_already_expired() -> None:
    tokens: VerifiedTokens[int] = VerifiedTokens(10, max_age=60.0, clock=Clock())
    tokens.put("t", 1, expires_at=999.0)
    assert len(tokens) == 0
