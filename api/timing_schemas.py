"""Fields that say when a notification goes and until when it may: delays, schedules, expiry.

Kept apart from `api/schemas.py` (which mixes them into `manage/send` and `send-bulk`) so
the send schemas and the scheduling schemas can both use them. Every rule names its field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from shared.scheduling import ScheduleError, parse_datetime, zone_named

MAX_DELAY_S = 86_400  # seed 000: 1-86,400 seconds
MAX_TTL_S = 366 * 86_400


def seconds_between(low: int, high: int) -> AfterValidator:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high} seconds")
        return value

    return AfterValidator(check)


def _datetime(value: str) -> str:
    try:
        parse_datetime(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None
    return value


def _aware_datetime(value: str) -> str:
    if _datetime(value) and parse_datetime(value).tzinfo is None:
        raise ValueError("must include a time zone offset or Z, e.g. 2026-03-20T09:00:00Z")
    return value


def _zone(value: str) -> str:
    try:
        zone_named(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None
    return value


DelaySeconds = Annotated[int, seconds_between(1, MAX_DELAY_S)]
TtlSeconds = Annotated[int, seconds_between(1, MAX_TTL_S)]
DateTimeText = Annotated[str, AfterValidator(_datetime)]
AwareDateTimeText = Annotated[str, AfterValidator(_aware_datetime)]
ZoneName = Annotated[str, AfterValidator(_zone)]


class StrictFields(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class ExpiryFields(StrictFields):
    """`expiresAt` (an instant) or `ttlSeconds` (counted from when the notification is due)."""

    expiresAt: AwareDateTimeText | None = None
    ttlSeconds: TtlSeconds | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> Self:
        if self.expiresAt is not None and self.ttlSeconds is not None:
            raise ValueError("give expiresAt or ttlSeconds, not both")
        return self

    @property
    def expires_at(self) -> datetime | None:
        """`expiresAt` parsed (aware)."""
        return parse_datetime(self.expiresAt) if self.expiresAt is not None else None


class ScheduleFields(StrictFields):
    """`scheduledAt` and its optional `timezone` (see docs/scheduling.md for the rules)."""

    scheduledAt: DateTimeText
    timezone: ZoneName | None = None

    @property
    def scheduled_at(self) -> datetime:
        """`scheduledAt` as written (naive when it has no offset)."""
        return parse_datetime(self.scheduledAt)


class BulkTimingFields(StrictFields):
    """`send-bulk`'s optional timing: a delay, or a schedule (a naive time is each recipient's
    own local time), never both."""

    delaySeconds: DelaySeconds | None = None
    scheduledAt: DateTimeText | None = None
    timezone: ZoneName | None = None

    @model_validator(mode="after")
    def _one_timing(self) -> Self:
        if self.delaySeconds is not None and self.scheduledAt is not None:
            raise ValueError("give delaySeconds or scheduledAt, not both")
        if self.timezone is not None and self.scheduledAt is None:
            raise ValueError("timezone is only meaningful with scheduledAt")
        return self

    @property
    def scheduled_at(self) -> datetime | None:
        """`scheduledAt` as written, if given."""
        return parse_datetime(self.scheduledAt) if self.scheduledAt is not None else None
