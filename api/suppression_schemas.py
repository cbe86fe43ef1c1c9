"""Request bodies of the suppression-list RPCs (our extension, camelCase like seed 000)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SuppressibleChannel = Literal["EMAIL", "SMS"]


class ListSuppressionsRequest(BaseModel):
    """`manage/list-suppressions`: a page, optionally of one channel."""

    model_config = ConfigDict(strict=True, extra="ignore")

    channel: SuppressibleChannel | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    pageSize: int = Field(default=50, ge=1, le=500)


class RemoveSuppressionRequest(BaseModel):
    """`manage/remove-suppression`: an operator fixed or vouched for the address."""

    model_config = ConfigDict(strict=True, extra="ignore")

    channel: SuppressibleChannel
    address: Annotated[str, StringConstraints(min_length=1, max_length=320, strip_whitespace=True)]
