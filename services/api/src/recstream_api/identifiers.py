"""Identifiers in requests follow the event contract's rule for ids
(``recstream.contract.events.IdStr``)."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from recstream.contract.events import IdStr
from recstream_api.exceptions import InvalidRequestError

_ID: TypeAdapter[str] = TypeAdapter(IdStr)


def is_valid_id(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        _ID.validate_python(value)
    except ValidationError:
        return False
    return True


def checked_id(value: str | None, name: str) -> str | None:
    """``value`` unchanged when absent or valid; :class:`InvalidRequestError` otherwise."""
    if value is not None and not is_valid_id(value):
        raise InvalidRequestError(f"{name} is not a valid id", details={"field": name})
    return value
