"""Building the records of a send: who, what, when (now, after a delay, at a scheduled time)
and until when (expiry). The routes of `manage/send*` share it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from api.context import AppContext
from api.scheduling_schemas import SendDelayedRequest, SendScheduledRequest
from api.schemas import SendBulkRequest, SendRequest, _SendBody
from api.timing_schemas import ExpiryFields
from shared.domain import Status
from shared.errors import ValidationFailed
from shared.ids import new_id
from shared.records import NotificationRecord
from shared.scheduling import ScheduleError, check_window, resolve_scheduled_at
from shared.timefmt import iso_z


@dataclass(frozen=True, slots=True)
class When:
    """When a record is due and until when it may be sent."""

    status: Status = Status.QUEUED
    deliver_at: datetime | None = None
    expires_at: datetime | None = None


def expiry(body: ExpiryFields, *, due: datetime) -> datetime | None:
    """`expires_at` from `expiresAt`, or `ttlSeconds` counted from when the record is due."""
    if body.ttlSeconds is not None:
        return due + timedelta(seconds=body.ttlSeconds)
    expires_at = body.expires_at
    if expires_at is not None and expires_at <= due:
        raise ValidationFailed(
            [f"expiresAt must be after the time the notification is due ({iso_z(due)})"]
        )
    return expires_at


def scheduled_instant(
    written: datetime, *, timezone: str | None, subscriber_timezone: str | None, now: datetime
) -> datetime:
    """The UTC instant a `scheduledAt` names, checked against the window; 400 otherwise."""
    try:
        when = resolve_scheduled_at(
            written, timezone=timezone, subscriber_timezone=subscriber_timezone
        )
        return check_window(when, now=now)
    except ScheduleError as exc:
        raise ValidationFailed([f"scheduledAt {exc}"]) from None


def needs_subscriber_zone(written: datetime, timezone: str | None) -> bool:
    """A naive `scheduledAt` with no `timezone` is the subscriber's local time."""
    return timezone is None and written.tzinfo is None


def record_for(
    body: _SendBody,
    *,
    tenant_id: str,
    recipient: str,
    transaction_id: str,
    correlation_id: str | None,
    source: str,
    idempotency_key: str | None,
    when: When,
    environment: str,
) -> NotificationRecord:
    """One recipient's record of a `manage/send*` body, sent from the key's environment."""
    return NotificationRecord.new(
        tenant_id=tenant_id,
        channel=body.channel_enum,
        recipient=recipient,
        category=body.category,
        priority=body.priority,
        transaction_id=transaction_id,
        correlation_id=correlation_id,
        source=source,
        content=body.content.to_record(),
        idempotency_key=idempotency_key,
        status=when.status,
        deliver_at=when.deliver_at,
        expires_at=when.expires_at,
        environment=environment,
    )


def single_record(
    body: SendRequest | SendDelayedRequest | SendScheduledRequest,
    *,
    tenant_id: str,
    correlation_id: str | None,
    source: str,
    when: When,
    environment: str,
) -> NotificationRecord:
    """The record of a one-recipient send, in a transaction of its own; its idempotency key is
    shared by `send`, `send-delayed` and `send-scheduled`."""
    return record_for(
        body,
        tenant_id=tenant_id,
        recipient=body.userId,
        transaction_id=new_id("txn"),
        correlation_id=correlation_id,
        source=source,
        idempotency_key=f"send:{body.idempotencyKey}" if body.idempotencyKey else None,
        when=when,
        environment=environment,
    )


async def bulk_when(
    ctx: AppContext, body: SendBulkRequest, *, tenant_id: str, user_ids: list[str], now: datetime
) -> dict[str, When]:
    """Each recipient's timing: now, after `delaySeconds`, or at `scheduledAt` (a naive time
    with no `timezone` is each recipient's own local time: one read of their profiles)."""
    due: dict[str, datetime] = {}
    status = Status.QUEUED
    if body.delaySeconds is not None:
        status = Status.DELAYED
        due = dict.fromkeys(user_ids, now + timedelta(seconds=body.delaySeconds))
    written = body.scheduled_at
    if written is not None:
        status = Status.SCHEDULED
        zones: dict[str, str | None] = dict.fromkeys(user_ids)
        if needs_subscriber_zone(written, body.timezone):
            found = await ctx.db.subscribers.get_many(tenant_id=tenant_id, subscriber_ids=user_ids)
            zones = {u: (found.get(u) or {}).get("timezone") for u in user_ids}
        problems: dict[str, list[str]] = {}
        for user_id in user_ids:
            try:
                due[user_id] = scheduled_instant(
                    written, timezone=body.timezone, subscriber_timezone=zones[user_id], now=now
                )
            except ValidationFailed as exc:
                problems.setdefault(exc.details[0], []).append(user_id)
        if problems:
            raise ValidationFailed(
                [f"{rule} for userIds {', '.join(users)}" for rule, users in problems.items()]
            )
    return {
        u: When(
            status=status,
            deliver_at=due.get(u),
            expires_at=expiry(body, due=due.get(u, now)),
        )
        for u in user_ids
    }


def timing_view(records: list[NotificationRecord]) -> dict[str, Any]:
    """`scheduledFor` (the earliest due time) and, when recipients differ, each one's."""
    times = {r.recipient: r.deliver_at for r in records if r.deliver_at is not None}
    if not times:
        return {}
    view: dict[str, Any] = {"scheduledFor": iso_z(min(times.values()))}
    if len(set(times.values())) > 1:
        view["scheduledForByUser"] = {u: iso_z(t) for u, t in times.items()}
    return view
