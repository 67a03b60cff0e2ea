"""The environment variable of every setting of the API and the consumer."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from recstream_api.settings import ApiSettings
from recstream_consumer.settings import ConsumerSettings


def _env_names(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}"


def known_settings() -> set[str]:
    """``RECSTREAM_REDIS__URL`` and the like, for every field of both services' settings."""
    return set(_env_names(ApiSettings, "RECSTREAM_")) | set(
        _env_names(ConsumerSettings, "RECSTREAM_")
    )
