"""Request bodies of the dead-letter admin RPCs (our extension, camelCase like seed 000)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, Field, field_validator, model_validator

from api.schemas import ApiChannel, NonEmpty, Strict
from shared.dlq.model import DeadLetterFilter
from shared.domain import Channel

IdList = Annotated[list[NonEmpty], Field(min_length=1, max_length=1000)]
# Strict models take no strings for datetimes; these parse ISO-8601 text (see below).
Instant = Annotated[AwareDatetime, Field(strict=False)]


class DeadLetterFilterFields(Strict):
    """Which dead letters: every given field must match (the tenant is the caller's)."""

    channel: ApiChannel | None = None
    reason: NonEmpty | None = None
    failedBefore: Instant | None = None
    failedAfter: Instant | None = None
    transactionIds: IdList | None = None
    notificationIds: IdList | None = None

    @field_validator("failedBefore", "failedAfter", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        # Lax parsing would also take a number as a Unix time; only ISO-8601 text is meant.
        if value is not None and not isinstance(value, str):
            raise ValueError("must be an ISO-8601 date-time string such as 2025-01-31T12:00:00Z")
        return value

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.failedBefore and self.failedAfter and self.failedAfter >= self.failedBefore:
            raise ValueError("failedAfter must be earlier than failedBefore")
        return self

    def to_filter(self, *, tenant_id: str) -> DeadLetterFilter:
        """The ops filter, limited to `tenant_id`."""
        return DeadLetterFilter(
            channels=frozenset([Channel.from_api(self.channel)] if self.channel else Channel),
            tenant_id=tenant_id,
            reason=self.reason,
            failed_before=_utc(self.failedBefore),
            failed_after=_utc(self.failedAfter),
            transaction_ids=frozenset(self.transactionIds or ()),
            notification_ids=frozenset(self.notificationIds or ()),
        )


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


class ListDeadLettersRequest(DeadLetterFilterFields):
    """`manage/list-dead-letters`: the first `limit` matches, oldest first."""

    limit: int = Field(default=100, ge=1, le=1000)


class GetDeadLetterRequest(Strict):
    """`manage/get-dead-letter`: by notification or by transaction (all of a bulk's)."""

    notificationId: NonEmpty | None = None
    transactionId: NonEmpty | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.notificationId is None) == (self.transactionId is None):
            raise ValueError("exactly one of notificationId or transactionId is required")
        return self


class ChangeDeadLettersRequest(DeadLetterFilterFields):
    """`manage/replay-dead-letters` and `manage/purge-dead-letters`.

    One of `transactionIds`, `notificationIds`, `limit` or `all` must say what to take, so no
    call moves everything by accident; `dryRun` reports what would move and moves nothing.
    """

    limit: int | None = Field(default=None, ge=1, le=10_000)
    all: bool = False
    dryRun: bool = False

    @model_validator(mode="after")
    def _selection(self) -> Self:
        if self.all and self.limit is not None:
            raise ValueError("all and limit cannot be combined")
        if not (self.all or self.limit is not None or self.transactionIds or self.notificationIds):
            raise ValueError("one of transactionIds, notificationIds, limit or all is required")
        return self


class ListDeadLetterOperationsRequest(Strict):
    """`manage/list-dead-letter-operations`: the audit trail, newest first."""

    action: Literal["replay", "purge"] | None = None
    limit: int = Field(default=50, ge=1, le=500)
