"""Request bodies of the API key RPCs (`manage/create-api-key` and friends), camelCase."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator

from api.schemas import NonEmpty, Strict
from shared.db.base import utcnow

Scope = Literal["admin", "send", "read"]
Environment = Literal["development", "production"]
KeyId = Annotated[str, Field(pattern=r"^key_[0-9a-f]{16}$", examples=["key_3f9a0c1b2d4e5f60"])]

DEFAULT_GRACE_S = 24 * 3600
MAX_GRACE_S = 30 * 24 * 3600


class CreateApiKeyRequest(Strict):
    """`manage/create-api-key`: the key is in the answer, once."""

    name: NonEmpty = Field(max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    environment: Environment = "development"
    expiresAt: AwareDatetime | None = Field(default=None, strict=False)
    # Requests per rate-limit window (NOTIFY_RATE_LIMIT_WINDOW_S); none: the default budget.
    rateLimit: int | None = Field(default=None, ge=1, le=10_000_000)

    @field_validator("scopes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("expiresAt")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= utcnow():
            raise ValueError("must be in the future")
        return value


class ListApiKeysRequest(Strict):
    """`manage/list-api-keys`: usable keys; with `includeInactive`, revoked and expired too."""

    includeInactive: bool = False


class KeyIdRequest(Strict):
    """`manage/revoke-api-key`."""

    keyId: KeyId


class RotateApiKeyRequest(Strict):
    """`manage/rotate-api-key`: a successor now; the old key works for the grace period."""

    keyId: KeyId
    gracePeriodSeconds: int = Field(default=DEFAULT_GRACE_S, ge=0, le=MAX_GRACE_S)
