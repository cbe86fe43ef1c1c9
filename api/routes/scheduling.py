"""Seed 000's time RPCs: `manage/send-delayed`, `manage/send-scheduled`, `manage/cancel`.

A delayed or scheduled record is stored DELAYED / SCHEDULED with `deliver_at` and its message
parked in the delay levels until then; the worker's claim takes it once due, and the
maintenance sweep re-publishes it if the parked message was lost. The rules for time zones,
DST and limits are in docs/scheduling.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request

from api.deps import AdminDep, CtxDep
from api.digest_status import cancel_digest_event
from api.openapi import COMMON, errors
from api.responses import JsonResponse
from api.scheduling_schemas import SendDelayedRequest, SendScheduledRequest
from api.schemas import TransactionRequest
from api.sends import When, expiry, needs_subscriber_zone, scheduled_instant, single_record
from shared.db.base import utcnow
from shared.domain import Status
from shared.errors import NotFound
from shared.providers.novu_jobs import queue_novu_cancel
from shared.records import NotificationRecord
from shared.timefmt import iso_z

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["scheduling"], responses=COMMON)


def _answer(stored: NotificationRecord) -> dict[str, Any]:
    return {
        "transactionId": stored.transaction_id,
        "scheduledFor": iso_z(stored.deliver_at),
        "expiresAt": iso_z(stored.expires_at),
    }


@router.post("/send-delayed", summary="Send after a delay (1-86,400 s)")
async def send_delayed(
    body: SendDelayedRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """`manage/send` delivered `delaySeconds` from now; answers `scheduledFor` (UTC)."""
    due = utcnow() + timedelta(seconds=body.delaySeconds)
    record = single_record(
        body,
        tenant_id=principal.tenant_id,
        environment=principal.environment,
        correlation_id=request.state.correlation_id,
        source="manage.send-delayed",
        when=When(Status.DELAYED, deliver_at=due, expires_at=expiry(body, due=due)),
    )
    stored, _ = await ctx.pipeline.submit_one(record)
    return _answer(stored)


@router.post("/send-scheduled", summary="Send at a time (wall-clock in a time zone, or absolute)")
async def send_scheduled(
    body: SendScheduledRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """`manage/send` delivered at `scheduledAt`; answers the resolved `scheduledFor` (UTC)."""
    written = body.scheduled_at
    subscriber_zone = None
    if needs_subscriber_zone(written, body.timezone):
        subscriber = await ctx.db.subscribers.get(
            tenant_id=principal.tenant_id, subscriber_id=body.userId
        )
        subscriber_zone = (subscriber or {}).get("timezone")
    due = scheduled_instant(
        written, timezone=body.timezone, subscriber_timezone=subscriber_zone, now=utcnow()
    )
    record = single_record(
        body,
        tenant_id=principal.tenant_id,
        environment=principal.environment,
        correlation_id=request.state.correlation_id,
        source="manage.send-scheduled",
        when=When(Status.SCHEDULED, deliver_at=due, expires_at=expiry(body, due=due)),
    )
    stored, _ = await ctx.pipeline.submit_one(record)
    return _answer(stored)


@router.post(
    "/cancel",
    summary="Cancel what has not started delivery",
    responses=errors(404, 409),
    response_model=None,
)
async def cancel(
    body: TransactionRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any] | JsonResponse:
    """Every record of the transaction still DELAYED, SCHEDULED, QUEUED or RETRYING becomes
    CANCELLED; records in flight or final are left as they are. Nothing cancelled: 409.

    Records a Novu route handled are also cancelled at Novu (it may still hold delayed or
    digested steps), through the events worker's queue: a 503 then means the local cancel
    may have happened and the Novu one was not queued; calling cancel again queues it.
    """
    records, cancelled = await ctx.db.notifications.cancel_transaction(
        tenant_id=principal.tenant_id, transaction_id=body.transactionId
    )
    if records:
        await queue_novu_cancel(
            providers=ctx.db.providers,
            broker=ctx.broker,
            tenant_id=principal.tenant_id,
            records=records,
        )
    if not records:
        # A digest event's transaction has no record of its own: take it out of its digest.
        event = await ctx.db.digests.find_by_event(
            tenant_id=principal.tenant_id, transaction_id=body.transactionId
        )
        if event is None:
            raise NotFound(f"transaction {body.transactionId} does not exist")
        await cancel_digest_event(
            ctx, tenant_id=principal.tenant_id, transaction_id=body.transactionId
        )
        return {"transactionId": body.transactionId, "cancelled": 1, "notCancelled": []}
    not_cancelled = [
        {"notificationId": r.id, "userId": r.recipient, "result": r.status.result}
        for r in records
        if r.id not in cancelled
    ]
    answer = {
        "transactionId": body.transactionId,
        "cancelled": len(cancelled),
        "notCancelled": not_cancelled,
    }
    if cancelled:
        return answer
    return JsonResponse(
        {
            "success": False,
            "message": "Conflict",
            "error": [
                f"transaction {body.transactionId} has nothing left to cancel",
                *(f"{row['notificationId']}: {row['result']}" for row in not_cancelled),
            ],
            "data": answer,
        },
        status_code=409,
    )
