"""Development tokens: a JWT the API accepts, signed with the configured secret."""

from __future__ import annotations

import os
from datetime import timedelta

from pydantic import ValidationError

from recstream_api.auth import issue_token
from recstream_api.settings import ApiSettings


class TokenError(RuntimeError):
    """No token can be issued with the current settings."""


def dev_token(user_id: str, *, admin: bool, ttl_seconds: int) -> str:
    """A token for ``user_id`` built from the API settings in the environment (in the dev
    environment unless RECSTREAM_ENVIRONMENT says otherwise: dev tokens are its purpose)."""
    try:
        if "RECSTREAM_ENVIRONMENT" in os.environ:
            settings = ApiSettings()
        else:
            settings = ApiSettings(environment="dev")
    except ValidationError as exc:
        raise TokenError(f"invalid API settings: {exc}") from exc
    try:
        return issue_token(settings, user_id, admin=admin, ttl=timedelta(seconds=ttl_seconds))
    except ValueError as exc:
        raise TokenError(str(exc)) from exc
