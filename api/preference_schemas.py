"""Request bodies for preferences (seed 000 `update-preferences` and our admin twins) and for
a subscriber's quiet hours (`subscriberData.quietHours`)."""

from __future__ import annotations

from typing import Annotated, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.domain import Category, Channel
from shared.preferences import CHANNEL_ORDER, SWITCHABLE
from shared.quiet_hours import DAYS, parse_hhmm, zone

_CHANNELS = [c.api_name for c in CHANNEL_ORDER]
_CATEGORIES = [c.value for c in SWITCHABLE]


def _channel(value: str) -> str:
    if value not in _CHANNELS:
        raise ValueError(f"must be one of {', '.join(_CHANNELS)}: {value!r} is not a channel")
    return value


def _category(value: str) -> str:
    if value == Category.SYSTEM.value:
        raise ValueError("SYSTEM cannot be turned off: SYSTEM notifications bypass preferences")
    if value not in _CATEGORIES:
        raise ValueError(f"must be one of {', '.join(_CATEGORIES)}: {value!r} is not a category")
    return value


# Plain strings checked by hand, so the 400 names the unknown value (a Literal would not);
# the OpenAPI document still lists the values.
PrefChannel = Annotated[str, Field(json_schema_extra={"enum": _CHANNELS}), AfterValidator(_channel)]
PrefCategory = Annotated[
    str, Field(json_schema_extra={"enum": _CATEGORIES}), AfterValidator(_category)
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class UpdatePreferencesRequest(_Strict):
    """`update-preferences`: with `category`, that switch on the channel; without, the channel."""

    channel: PrefChannel
    category: PrefCategory | None = None
    enabled: bool

    @property
    def channel_enum(self) -> Channel:
        """The internal channel."""
        return Channel.from_api(self.channel)


class SubscriberPreferencesRequest(_Strict):
    """`manage/get-subscriber-preferences`."""

    userId: Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]


# The subscriber comes first in error messages (pydantic orders fields from the last base).
class UpdateSubscriberPreferencesRequest(UpdatePreferencesRequest, SubscriberPreferencesRequest):
    """`manage/update-subscriber-preferences`: `update-preferences` for `userId`."""


def _hhmm(value: str) -> str:
    if parse_hhmm(value) is None:
        raise ValueError("must be a time HH:MM from 00:00 to 23:59")
    return value


HhMm = Annotated[str, AfterValidator(_hhmm)]
Day = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
assert get_args(Day) == DAYS


class QuietHoursData(_Strict):
    """`subscriberData.quietHours`: PUSH / EMAIL / SMS inside it wait until it ends."""

    model_config = ConfigDict(strict=True, extra="forbid")

    start: HhMm
    end: HhMm
    # Defaults to the subscriber's `timezone`, else UTC (read at delivery time).
    timezone: str | None = None
    # The days a window starts on; absent: every day.
    days: list[Day] | None = Field(default=None, min_length=1, max_length=7)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and zone(value) is None:
            raise ValueError("must be an IANA time zone such as America/New_York")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("must not start and end at the same time")
        return self

    def to_document(self) -> dict[str, object]:
        """The stored form (`quiet_hours` on the subscriber); absent fields are not stored."""
        stored: dict[str, object] = {"start": self.start, "end": self.end}
        if self.timezone is not None:
            stored["timezone"] = self.timezone
        if self.days is not None:
            stored["days"] = list(dict.fromkeys(self.days))
        return stored
