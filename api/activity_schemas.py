"""Request bodies of the activity and statistics RPCs (camelCase, seed 000 / seed 002)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AwareDatetime, Field, model_validator

from api.schemas import ApiCategory, ApiChannel, ApiResult, NonEmpty, PageRequest, Strict

# JSON carries a time as a string: strict=False lets this strict model parse it.
Time = Annotated[AwareDatetime, Field(strict=False)]


class ActivityRequest(PageRequest):
    """`manage/get-notification-activity`: every filter optional, combined with AND."""

    channels: list[ApiChannel] | None = None
    categories: list[ApiCategory] | None = None
    results: list[ApiResult] | None = None
    userId: NonEmpty | None = None
    transactionId: NonEmpty | None = None
    startTime: Time | None = None
    endTime: Time | None = None

    @model_validator(mode="after")
    def _time_order(self) -> Self:
        if self.startTime and self.endTime and self.endTime < self.startTime:
            raise ValueError("endTime must not be before startTime")
        return self


class StatsRequest(Strict):
    """`manage/get-notification-stats`: the per-day counts cover the last `days` days."""

    days: int = Field(default=30, ge=1, le=365)
