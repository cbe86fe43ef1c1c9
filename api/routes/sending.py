"""Seed 000's send RPCs: `manage/send`, `manage/send-bulk`, `manage/get-delivery-status`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import AdminDep, CtxDep
from api.presenters import delivery_status_view
from api.schemas import SendBulkRequest, SendRequest, TransactionRequest
from api.sending import Sender, new_record
from shared.errors import NotFound, ValidationFailed
from shared.ids import new_id

router = APIRouter(prefix="/api/v1/notifications/manage", tags=["sending"])


def _content(body: SendRequest | SendBulkRequest) -> dict[str, Any]:
    c = body.content
    return {
        "title": c.title,
        "body": c.body,
        "subject": c.subject,
        "data": c.data,
        "deep_link": c.deepLink,
        "image_url": c.imageUrl,
    }


@router.post("/send", summary="Send immediately")
async def send(
    body: SendRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """One recipient, one channel; `idempotencyKey` returns the first transaction again."""
    record = new_record(
        tenant_id=principal.tenant_id,
        channel=body.channel_enum,
        recipient=body.userId,
        category=body.category,
        priority=body.priority,
        transaction_id=new_id("txn"),
        correlation_id=request.state.correlation_id,
        source="manage.send",
        content=_content(body),
        idempotency_key=f"send:{body.idempotencyKey}" if body.idempotencyKey else None,
    )
    stored, _ = await Sender(ctx).submit_one(record)
    return {"transactionId": stored["transaction_id"]}


@router.post("/send-bulk", summary="Fan out to up to 100 users")
async def send_bulk(
    body: SendBulkRequest, ctx: CtxDep, principal: AdminDep, request: Request
) -> dict[str, Any]:
    """One record per recipient, written in one batch, published with pipelined confirms."""
    limit = ctx.settings.bulk_max_recipients
    user_ids = list(dict.fromkeys(body.userIds))  # duplicates would notify a user twice
    if len(body.userIds) > limit:
        raise ValidationFailed([f"userIds must contain at most {limit} items"])
    transaction_id = new_id("txn")
    content = _content(body)
    records = [
        new_record(
            tenant_id=principal.tenant_id,
            channel=body.channel_enum,
            recipient=user_id,
            category=body.category,
            priority=body.priority,
            transaction_id=transaction_id,
            correlation_id=request.state.correlation_id,
            source="manage.send-bulk",
            content=content,
            idempotency_key=f"bulk:{body.idempotencyKey}:{user_id}"
            if body.idempotencyKey
            else None,
        )
        for user_id in user_ids
    ]
    stored = await Sender(ctx).submit_many(records)
    return {"transactionId": stored[0]["transaction_id"], "recipientCount": len(stored)}


@router.post("/get-delivery-status", summary="Track a transaction")
async def get_delivery_status(
    body: TransactionRequest, ctx: CtxDep, principal: AdminDep
) -> dict[str, Any]:
    """The seed's shape; a bulk transaction adds `summary` and `recipients`."""
    docs = await ctx.db.notifications.find_by_transaction(
        tenant_id=principal.tenant_id, transaction_id=body.transactionId
    )
    if not docs:
        raise NotFound(f"transaction {body.transactionId} does not exist")
    return delivery_status_view(docs)
