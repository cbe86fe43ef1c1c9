"""Seed 000's send RPCs: `manage/send`, `manage/send-bulk`, `manage/get-delivery-status`.

The delayed and scheduled sends and cancel are in `scheduling.py`, digests in `digests.py`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import AdminDep, CtxDep
from api.digest_status import digest_event_status
from api.openapi import COMMON, errors
from api.presenters import delivery_status_view
from api.schemas import SendBulkRequest, SendRequest, TransactionRequest
from api.sends import When, bulk_when, expiry, record_for, single_record, timing_view
from api.topic_views import fanout_status_view
from api.workflow_presenters import workflow_status_view
from shared.db.base import utcnow
from shared.errors import NotFound, ValidationFailed
from shared.ids import new_id

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["sending"], responses=COMMON)


@router.post("/send", summary="Send immediately")
async def send(
    body: SendRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """One recipient, one channel; `idempotencyKey` returns the first transaction again."""
    record = single_record(
        body,
        tenant_id=principal.tenant_id,
        correlation_id=request.state.correlation_id,
        source="manage.send",
        when=When(expires_at=expiry(body, due=utcnow())),
        environment=principal.environment,
    )
    stored, _ = await ctx.pipeline.submit_one(record)
    return {"transactionId": stored.transaction_id}


@router.post("/send-bulk", summary="Fan out to up to 100 users")
async def send_bulk(
    body: SendBulkRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """One record per recipient, written in one batch, published with pipelined confirms;
    now, after `delaySeconds`, or at `scheduledAt` (a naive time: each recipient's own)."""
    limit = ctx.settings.bulk_max_recipients
    if len(body.userIds) > limit:
        raise ValidationFailed([f"userIds must contain at most {limit} items"])
    user_ids = list(dict.fromkeys(body.userIds))  # duplicates would notify a user twice
    transaction_id = new_id("txn")
    timing = await bulk_when(
        ctx, body, tenant_id=principal.tenant_id, user_ids=user_ids, now=utcnow()
    )
    records = [
        record_for(
            body,
            tenant_id=principal.tenant_id,
            recipient=user_id,
            transaction_id=transaction_id,
            correlation_id=request.state.correlation_id,
            source="manage.send-bulk",
            environment=principal.environment,
            idempotency_key=(
                f"bulk:{body.idempotencyKey}:{user_id}" if body.idempotencyKey else None
            ),
            when=timing[user_id],
        )
        for user_id in user_ids
    ]
    stored = await ctx.pipeline.submit_many(records)
    return {
        "transactionId": stored[0].transaction_id,
        "recipientCount": len(stored),
        **timing_view(stored),
    }


@router.post("/get-delivery-status", summary="Track a transaction", responses=errors(404))
async def get_delivery_status(
    body: TransactionRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """The seed's shape; a bulk transaction adds `summary` and `recipients`, a topic send
    `summary` (counts per result; the rows are in `list-transaction-recipients`), a workflow
    trigger `steps` (each step's notifications); a digest event's transaction reads SENT
    until its digest is sent, then the digest's result."""
    fanout = await ctx.db.fanouts.get(tenant_id=principal.tenant_id, fanout_id=body.transactionId)
    if fanout is not None:  # a topic send: counts, never a million rows
        counts = await ctx.db.notifications.count_transaction(
            tenant_id=principal.tenant_id, transaction_id=body.transactionId
        )
        return fanout_status_view(fanout, counts)
    records = await ctx.db.notifications.find_by_transaction(
        tenant_id=principal.tenant_id, transaction_id=body.transactionId
    )
    if not records:
        event_view = await digest_event_status(
            ctx, tenant_id=principal.tenant_id, transaction_id=body.transactionId
        )
        if event_view is not None:
            return event_view
        raise NotFound(f"transaction {body.transactionId} does not exist")
    if records[0].workflow is not None:
        return workflow_status_view(records)
    return delivery_status_view(records)
