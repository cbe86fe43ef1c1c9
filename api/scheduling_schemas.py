"""Request bodies of the time RPCs: `send-delayed`, `send-scheduled`, `send-with-digest`."""

from __future__ import annotations

from typing import Annotated, Literal, Self

import orjson
from pydantic import AfterValidator, model_validator

from api.schemas import NonEmpty, _OneUser, _SendBody
from api.timing_schemas import (
    DelaySeconds,
    ExpiryFields,
    ScheduleFields,
    StrictFields,
    ZoneName,
    seconds_between,
)
from shared.scheduling import ScheduleError, check_cron

MAX_WINDOW_S = 7 * 86_400
# An event is kept inside its digest until the digest closes; with at most
# `digest_max_events` of them, a digest document stays far below MongoDB's 16 MiB.
MAX_DIGEST_EVENT_BYTES = 12_000


def _cron(value: str) -> str:
    try:
        return check_cron(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


WindowSeconds = Annotated[int, seconds_between(1, MAX_WINDOW_S)]
CronExpression = Annotated[str, AfterValidator(_cron)]


class SendDelayedRequest(_SendBody, ExpiryFields, _OneUser):
    """`manage/send-delayed`: `manage/send` plus `delaySeconds` (1-86,400)."""

    delaySeconds: DelaySeconds


class SendScheduledRequest(_SendBody, ExpiryFields, ScheduleFields, _OneUser):
    """`manage/send-scheduled`: `manage/send` plus `scheduledAt` and an optional `timezone`."""


class DigestConfig(StrictFields):
    """How events of one key are grouped; `templateCode` (our extension) renders the digest."""

    strategy: Literal["REGULAR", "LOOK_BACK", "SCHEDULED"]
    digestKey: NonEmpty
    windowSeconds: WindowSeconds | None = None
    lookBackSeconds: WindowSeconds | None = None
    cronExpression: CronExpression | None = None
    timezone: ZoneName | None = None
    templateCode: NonEmpty | None = None


class SendWithDigestRequest(_SendBody, _OneUser):
    """`manage/send-with-digest`: `manage/send` plus `digestConfig`."""

    digestConfig: DigestConfig

    @model_validator(mode="after")
    def _strategy_needs(self) -> Self:
        config = self.digestConfig
        if config.strategy in ("REGULAR", "LOOK_BACK") and config.windowSeconds is None:
            raise ValueError(f"digestConfig.windowSeconds is required for {config.strategy}")
        if config.strategy == "SCHEDULED" and config.cronExpression is None:
            raise ValueError("digestConfig.cronExpression is required for SCHEDULED")
        size = len(orjson.dumps(self.content.model_dump(exclude_none=True)))
        if size > MAX_DIGEST_EVENT_BYTES:
            raise ValueError(
                f"content must be at most {MAX_DIGEST_EVENT_BYTES} bytes as JSON for a digest "
                f"event (it is {size})"
            )
        return self
